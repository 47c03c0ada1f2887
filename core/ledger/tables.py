"""The ledger's tables in schema ``ops`` (created by migration 0002), for queries.

``trainings`` holds every Replicate training the console has seen, as Replicate last
reported it, and the user it was attached to (``attached_by`` says which rule matched);
``dataset_facts`` caches what each training ZIP held, by URL; ``training_photos`` (migration
0006) each of its photos (the largest face's embedding, the identity reference of
comparisons; a thumbnail; what its checks found), by ZIP URL and member, written by the
same reading; ``ledger_state`` keeps bookmarks such as the newest training id already
listed.
"""

from __future__ import annotations

from sqlalchemy import (
    TIMESTAMP,
    CheckConstraint,
    Column,
    Float,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from core.schema import ops_metadata

ATTACH_REASONS = ("training_id", "output_model", "trigger_word", "upload_path")

trainings = Table(
    "trainings",
    ops_metadata,
    Column("id", Text, primary_key=True),
    # No FK: schema ops may live in another database (OPS_DATABASE_URL).
    Column("user_id", Text),
    Column("attached_by", Text),
    Column("trainer_model", Text, nullable=False),
    Column("trainer_version", Text, nullable=False),
    Column("destination", Text),  # owner/name from output.version; None until success
    Column("status", Text, nullable=False),
    Column("input", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("output_version", Text),  # "owner/name:hash" as Replicate sent it
    Column("output_weights", Text),
    Column("error", Text),
    Column("created_at", TIMESTAMP(timezone=True)),
    Column("started_at", TIMESTAMP(timezone=True)),
    Column("completed_at", TIMESTAMP(timezone=True)),
    Column("synced_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "attached_by IN ('training_id', 'output_model', 'trigger_word', 'upload_path')",
        name="ck_trainings_attached_by",
    ),
    CheckConstraint(
        "(user_id IS NULL) = (attached_by IS NULL)", name="ck_trainings_attached_with_reason"
    ),
    Index("ix_trainings_user_id", "user_id", "created_at"),
    Index("ix_trainings_created_at", "created_at"),
)

# Whose version is this? (core.ledger.sync.version_owner; migration 0005)
Index("ix_trainings_version_hash", func.right(trainings.c.output_version, 64))

dataset_facts = Table(
    "dataset_facts",
    ops_metadata,
    Column("url", Text, primary_key=True),
    Column("content_sha256", Text),  # None when the file could not be downloaded
    Column("facts", JSONB, nullable=False),
    Column("computed_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_dataset_facts_content_sha256", "content_sha256"),
)

# Training ids Replicate answered 404 for (migration 0009): not asked again for a while.
trainings_not_found = Table(
    "trainings_not_found",
    ops_metadata,
    Column("id", Text, primary_key=True),
    Column(
        "first_answered_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()
    ),
    Column("last_answered_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
)

ledger_state = Table(
    "ledger_state",
    ops_metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text),
)

training_photos = Table(
    "training_photos",
    ops_metadata,
    Column("zip_url", Text, nullable=False),
    Column("member", Text, nullable=False),
    Column("embedding", ARRAY(Float)),  # the largest face's; None: no face in that photo
    Column("thumbnail", LargeBinary),  # JPEG, 256 px square; None: skipped unread
    Column("failing", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("skipped", Text),  # why the photo could not be used at all
    Column("facts", JSONB),  # PhotoFacts (migration 0010); None: skipped, or read before
    Column("computed_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("zip_url", "member", name="pk_training_photos"),
)
