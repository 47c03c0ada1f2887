"""The retrain wizard's rows in schema ops (migration 0007).

``retrains`` is one retrain the console ran or is running for a user: who asked and why,
what is sent (trainer pinned, destination, trigger word, the training input and the
inputs the trainer ignores), the dataset gate's result and any override, the uploaded
ZIP, the training, and then the promotion gate's decision. ``active`` marks the one
retrain of a user that may be submitted, trained or waiting for its decision: a partial
unique index makes the database refuse a second one, however many tabs, admins or
workers try at once. ``retrain_photos`` are its photos in order: each one's bytes as
given (an upload, or a member of the previous training's ZIP), its checks and whether
the admin kept it.
"""

from __future__ import annotations

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from core.schema import one_of, ops_metadata

# draft: photos being chosen and checked; submitting: confirmed, the ZIP being built and
# uploaded; creating: the training create claimed (sent, or about to be); starting,
# processing: Replicate's; succeeded, failed, canceled, aborted: ended on Replicate; lost:
# the create's answer was lost and the trainings list does not show it (nothing to follow).
RETRAIN_STATUSES = (
    "draft",
    "submitting",
    "creating",
    "starting",
    "processing",
    "succeeded",
    "failed",
    "canceled",
    "aborted",
    "lost",
)
RETRAIN_RUNNING = ("submitting", "creating", "starting", "processing")
RETRAIN_ENDED = ("succeeded", "failed", "canceled", "aborted", "lost")
DECISIONS = ("promoted", "kept")
PHOTO_SOURCES = ("previous", "upload")


retrains = Table(
    "retrains",
    ops_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("user_id", Text, nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("requested_role", Text, nullable=False),
    Column("requested_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    Column("reason", Text),
    # One submit per confirmation: the page's confirm dialog mints this once.
    Column("confirm_token", Text, unique=True),
    Column("status", Text, nullable=False, server_default=text("'draft'")),
    # The user's one retrain in flight (submitted, training, or awaiting its decision).
    Column("active", Boolean, nullable=False, server_default=text("false")),
    Column("trainer_model", Text, nullable=False),
    Column("trainer_version", Text, nullable=False),
    Column("destination", Text, nullable=False),  # owner/name: the user's existing model
    Column("trigger_word", Text, nullable=False),  # the one the current version learnt
    Column("previous_training_id", Text),  # the succeeded training the gate compares with
    Column("previous_version", Text),  # the version the row stored when the draft began
    Column("previous_zip_url", Text),  # that training's photos: the gate's "before"
    # Every succeeded training's photos offered in the draft: [{"label": "v1", "url": ...}]
    Column("source_zips", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("training_input", JSONB),  # as sent, input_images included once uploaded
    Column("ignored_inputs", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("gate", JSONB),  # the dataset gate's result at confirmation
    Column("override_reason", Text),  # an admin's reason to submit past a blocked gate
    Column("zip_sha256", Text),
    Column("zip_bytes", BigInteger),
    Column("zip_url", Text),  # the files API's URL of the uploaded ZIP
    Column("training_id", Text, unique=True),
    Column("claimed_at", TIMESTAMP(timezone=True)),  # when the create was claimed
    Column("submitted_at", TIMESTAMP(timezone=True)),
    Column("step", Integer),  # "step N/M" from the training's logs
    Column("steps", Integer),
    Column("heartbeat_at", TIMESTAMP(timezone=True)),
    Column("finished_at", TIMESTAMP(timezone=True)),
    Column("error", Text),
    Column("new_version", Text),  # bare 64-hex, verified to be the model's latest
    Column("new_weights", Text),
    Column("comparison_id", BigInteger),  # the promotion gate's comparison
    Column("decision", Text),
    Column("decided_by", Text),
    Column("decided_at", TIMESTAMP(timezone=True)),
    Column("decision_reason", Text),
    # The run building the ZIP or sending the training create, and until when (core.leases).
    Column("lease_owner", Text),
    Column("lease_expires_at", TIMESTAMP(timezone=True)),
    # The trainer's TrainingInput as read when the draft opened (None: it gave none, or it
    # could not be read): the plan is computed from it, never from a page's copy.
    Column("trainer_schema", JSONB),
    # What the confirmation fixed ({destination, trigger_word, trainer_model,
    # trainer_version, photos}): the worker refuses to send anything else.
    Column("confirmed", JSONB),
    # When the promotion gate's comparison ended and was read (or could not run).
    Column("gate_read_at", TIMESTAMP(timezone=True)),
    CheckConstraint(one_of("status", RETRAIN_STATUSES), name="ck_retrains_status"),
    CheckConstraint(
        f"decision IS NULL OR {one_of('decision', DECISIONS)}", name="ck_retrains_decision"
    ),
    Index(
        "uq_retrains_one_active_per_user",
        "user_id",
        unique=True,
        postgresql_where=text("active"),
    ),
    Index("ix_retrains_user", "user_id", "requested_at"),
)

retrain_photos = Table(
    "retrain_photos",
    ops_metadata,
    Column(
        "retrain_id",
        BigInteger,
        ForeignKey("ops.retrains.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("position", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("content", LargeBinary, nullable=False),  # the file as given
    Column("thumbnail", LargeBinary),  # JPEG, 256 px square; None until checked
    # core.retrain.checks.PhotoFacts; None (SQL NULL, never JSON null) until checked
    Column("facts", JSONB(none_as_null=True)),
    Column("verdict", Text),  # ok, warn or reject; None until checked
    Column("reasons", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("kept", Boolean, nullable=False, server_default=text("true")),
    PrimaryKeyConstraint("retrain_id", "position", name="pk_retrain_photos"),
    CheckConstraint(one_of("source", PHOTO_SOURCES), name="ck_retrain_photos_source"),
    CheckConstraint(
        "verdict IS NULL OR verdict IN ('ok', 'warn', 'reject')", name="ck_retrain_photos_verdict"
    ),
)
