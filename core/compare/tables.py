"""Comparisons and blind review in schema ``ops`` (created by migration 0006), for queries.

``comparisons`` holds one row per comparison: who asked, for which user, the prompt and
seeds, each column's version and exact input, the cost estimate and actual, the verdict.
``comparison_images`` one row per (column, seed): the prediction it claimed and ran, its
status and reason, a preview of the image (kept here because Replicate deletes outputs an
hour after they end) and the image's scores. ``training_photos`` (the identity reference
of comparisons, with the User page's thumbnails) lives with the dataset facts in
``core.ledger.tables``: one reading of a ZIP writes both. ``review_pairs``
are pairs of images of the same user, prompt and seed from two versions, and
``review_votes`` one vote per voter per pair, with the side each image was shown on.
``compare_grants`` are the extra daily budget an admin granted someone (audited).
"""

from __future__ import annotations

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from core.schema import one_of, ops_metadata

COMPARISON_STATUSES = ("queued", "running", "finished", "cancelled")
ACTIVE_COMPARISON = ("queued", "running")
# pending: claimed by nobody yet; creating: a worker claimed it and is sending the create;
# lost: the create's answer was lost (searched for before anything is sent again).
IMAGE_STATUSES = (
    "pending",
    "creating",
    "lost",
    "starting",
    "processing",
    "succeeded",
    "failed",
    "canceled",
    "aborted",
)
IMAGE_ENDED = ("succeeded", "failed", "canceled", "aborted")
VOTE_CHOICES = ("x", "y", "tie", "both_bad")


comparisons = Table(
    "comparisons",
    ops_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("user_id", Text, nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("requested_role", Text, nullable=False),  # the outcome is audited in their name
    Column("requested_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    # One run per confirmation: the page's confirm dialog mints this once.
    Column("confirm_token", Text, nullable=False, unique=True),
    Column("status", Text, nullable=False, server_default=text("'queued'")),
    Column("prompt", Text, nullable=False),
    Column("preset", Text),
    Column("category", Text, nullable=False),
    Column("seeds", ARRAY(Integer), nullable=False),
    Column("columns", JSONB, nullable=False),  # each column: version, style, input, ignored
    Column("repeat_letter", Text),  # the column run twice for the noise floor
    # The user's training ZIPs whose faces are the identity reference, and once read, what
    # they gave ({"photos": n, "faces": n, "problem": text or null}).
    Column("reference_zips", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("reference", JSONB),
    Column("estimate_usd", Numeric(10, 4), nullable=False),
    Column("price_per_image_usd", Numeric(10, 4)),
    # Given back to the budget: the estimate of images that ended without being sent.
    Column("released_usd", Numeric(10, 4), nullable=False, server_default=text("0")),
    Column("actual_usd", Numeric(10, 4)),
    Column("stats", JSONB),
    Column("verdict", JSONB),  # plain sentences
    Column("error", Text),
    Column("heartbeat_at", TIMESTAMP(timezone=True)),
    Column("finished_at", TIMESTAMP(timezone=True)),
    CheckConstraint(one_of("status", COMPARISON_STATUSES), name="ck_comparisons_status"),
    Index("ix_comparisons_user", "user_id", "requested_at"),
    Index("ix_comparisons_requested", "requested_by", "requested_at"),
)

comparison_images = Table(
    "comparison_images",
    ops_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "comparison_id",
        BigInteger,
        ForeignKey("ops.comparisons.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("letter", Text, nullable=False),  # A-D, or R: column A again (noise floor)
    Column("seed", Integer, nullable=False),
    Column("version_id", Text, nullable=False),
    Column("input", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("attempt", Integer, nullable=False, server_default=text("1")),
    Column("prediction_id", Text, unique=True),
    Column("earlier_predictions", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("claimed_at", TIMESTAMP(timezone=True)),
    Column("error", Text),
    Column("output_url", Text),
    Column("preview", LargeBinary),  # JPEG, long side <= 512 px
    Column("scores", JSONB),
    Column("predict_time", Float),
    Column("updated_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    # The run sending the prediction create (or searching for a lost one), until when.
    Column("lease_owner", Text),
    Column("lease_expires_at", TIMESTAMP(timezone=True)),
    CheckConstraint(one_of("status", IMAGE_STATUSES), name="ck_comparison_images_status"),
    UniqueConstraint("comparison_id", "letter", "seed", name="uq_comparison_images_cell"),
)

review_pairs = Table(
    "review_pairs",
    ops_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "comparison_id",
        BigInteger,
        ForeignKey("ops.comparisons.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", Text, nullable=False),
    Column(
        "image_x",
        BigInteger,
        ForeignKey("ops.comparison_images.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "image_y",
        BigInteger,
        ForeignKey("ops.comparison_images.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version_x", Text, nullable=False),
    Column("version_y", Text, nullable=False),
    UniqueConstraint("image_x", "image_y", name="uq_review_pairs_images"),
    CheckConstraint("image_x < image_y", name="ck_review_pairs_ordered"),
)

review_votes = Table(
    "review_votes",
    ops_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "pair_id", BigInteger, ForeignKey("ops.review_pairs.id", ondelete="CASCADE"), nullable=False
    ),
    Column("voter", Text, nullable=False),
    Column("choice", Text, nullable=False),  # x, y (the images, not the sides), tie, both_bad
    Column("x_on_left", Boolean, nullable=False),  # sides are randomised: x was shown left
    Column("voted_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(one_of("choice", VOTE_CHOICES), name="ck_review_votes_choice"),
    UniqueConstraint("pair_id", "voter", name="uq_review_votes_one_per_voter"),
)

compare_grants = Table(
    "compare_grants",
    ops_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("email", Text, nullable=False),
    Column("day", Date, nullable=False),  # UTC
    Column("extra_usd", Numeric(10, 4), nullable=False),
    Column("granted_by", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("granted_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("extra_usd > 0", name="ck_compare_grants_positive"),
    Index("ix_compare_grants_email_day", "email", "day"),
)
