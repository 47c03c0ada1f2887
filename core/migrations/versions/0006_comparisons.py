"""Schema ops: comparisons (the side-by-side generator), their images, the training photos
(faces they measure against, thumbnails and verdicts), blind review pairs and votes, and
extra compare budget.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Written out in full rather than imported from core.compare.tables, so later changes to
the metadata never rewrite what this revision did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ops"


def upgrade() -> None:
    op.create_table(
        "comparisons",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("requested_role", sa.Text(), nullable=False),
        sa.Column(
            "requested_at",
            sa.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("confirm_token", sa.Text(), nullable=False, unique=True),
        sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("'queued'")),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("preset", sa.Text()),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("seeds", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("columns", postgresql.JSONB(), nullable=False),
        sa.Column("repeat_letter", sa.Text()),
        sa.Column(
            "reference_zips",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
        sa.Column("reference", postgresql.JSONB()),
        sa.Column("estimate_usd", sa.Numeric(10, 4), nullable=False),
        sa.Column("actual_usd", sa.Numeric(10, 4)),
        sa.Column("stats", postgresql.JSONB()),
        sa.Column("verdict", postgresql.JSONB()),
        sa.Column("error", sa.Text()),
        sa.Column("heartbeat_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("finished_at", sa.TIMESTAMP(timezone=True)),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'finished', 'failed', 'cancelled')",
            name="ck_comparisons_status",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_comparisons_user", "comparisons", ["user_id", "requested_at"], schema=SCHEMA
    )
    op.create_index(
        "ix_comparisons_requested",
        "comparisons",
        ["requested_by", "requested_at"],
        schema=SCHEMA,
    )
    op.create_table(
        "comparison_images",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "comparison_id",
            sa.BigInteger(),
            sa.ForeignKey("ops.comparisons.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("letter", sa.Text(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Text(), nullable=False),
        sa.Column("input", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("'pending'")),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.Column("prediction_id", sa.Text(), unique=True),
        sa.Column(
            "earlier_predictions",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
        sa.Column("claimed_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("error", sa.Text()),
        sa.Column("output_url", sa.Text()),
        sa.Column("preview", sa.LargeBinary()),
        sa.Column("scores", postgresql.JSONB()),
        sa.Column("predict_time", sa.Float()),
        sa.Column(
            "updated_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'creating', 'lost', 'starting', 'processing', 'succeeded', "
            "'failed', 'canceled', 'aborted')",
            name="ck_comparison_images_status",
        ),
        sa.UniqueConstraint("comparison_id", "letter", "seed", name="uq_comparison_images_cell"),
        schema=SCHEMA,
    )
    op.create_table(
        "training_photos",
        sa.Column("zip_url", sa.Text(), nullable=False),
        sa.Column("member", sa.Text(), nullable=False),
        sa.Column("embedding", postgresql.ARRAY(sa.Float())),
        sa.Column("thumbnail", sa.LargeBinary()),
        sa.Column(
            "failing", postgresql.ARRAY(sa.Text()), nullable=False, server_default=sa.text("'{}'")
        ),
        sa.Column("skipped", sa.Text()),
        sa.Column(
            "computed_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("zip_url", "member", name="pk_training_photos"),
        schema=SCHEMA,
    )
    op.create_table(
        "review_pairs",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "comparison_id",
            sa.BigInteger(),
            sa.ForeignKey("ops.comparisons.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column(
            "image_x",
            sa.BigInteger(),
            sa.ForeignKey("ops.comparison_images.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "image_y",
            sa.BigInteger(),
            sa.ForeignKey("ops.comparison_images.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version_x", sa.Text(), nullable=False),
        sa.Column("version_y", sa.Text(), nullable=False),
        sa.UniqueConstraint("image_x", "image_y", name="uq_review_pairs_images"),
        sa.CheckConstraint("image_x < image_y", name="ck_review_pairs_ordered"),
        schema=SCHEMA,
    )
    op.create_table(
        "review_votes",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "pair_id",
            sa.BigInteger(),
            sa.ForeignKey("ops.review_pairs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("voter", sa.Text(), nullable=False),
        sa.Column("choice", sa.Text(), nullable=False),
        sa.Column("x_on_left", sa.Boolean(), nullable=False),
        sa.Column(
            "voted_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "choice IN ('x', 'y', 'tie', 'both_bad')", name="ck_review_votes_choice"
        ),
        sa.UniqueConstraint("pair_id", "voter", name="uq_review_votes_one_per_voter"),
        schema=SCHEMA,
    )
    op.create_table(
        "compare_grants",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("extra_usd", sa.Numeric(10, 4), nullable=False),
        sa.Column("granted_by", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "granted_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("extra_usd > 0", name="ck_compare_grants_positive"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_compare_grants_email_day", "compare_grants", ["email", "day"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("compare_grants", schema=SCHEMA)
    op.drop_table("review_votes", schema=SCHEMA)
    op.drop_table("review_pairs", schema=SCHEMA)
    op.drop_table("training_photos", schema=SCHEMA)
    op.drop_table("comparison_images", schema=SCHEMA)
    op.drop_table("comparisons", schema=SCHEMA)
