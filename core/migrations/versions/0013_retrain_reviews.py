"""Schema ops: the retrain reviews the watch queues.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

- ``retrain_reviews``: one row per training of a user that a watch pass (``core.watch``)
  saw end (succeeded, failed or canceled), the review it queued for that user. Keyed by
  the training id, so two passes or two workers never queue two reviews of one training.
  ``status`` is 'queued' until the review step exists.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ops"


def upgrade() -> None:
    op.create_table(
        "retrain_reviews",
        sa.Column("training_id", sa.Text(), primary_key=True),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("training_status", sa.Text(), nullable=False),
        sa.Column("ended_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("status", sa.Text(), nullable=False, server_default="queued"),
        sa.Column(
            "seen_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("status IN ('queued')", name="ck_retrain_reviews_status"),
        sa.CheckConstraint(
            "training_status IN ('succeeded', 'failed', 'canceled')",
            name="ck_retrain_reviews_training_status",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_retrain_reviews_user_id", "retrain_reviews", ["user_id", "seen_at"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_index("ix_retrain_reviews_user_id", table_name="retrain_reviews", schema=SCHEMA)
    op.drop_table("retrain_reviews", schema=SCHEMA)
