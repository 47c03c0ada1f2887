"""Schema ops: the training ledger, the dataset facts cache and the ledger's bookmarks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-20

The app keeps one ``user_models`` row per user and overwrites it on every retrain, so the
console keeps its own copy of every Replicate training it has seen (``trainings``), what
each training's photos were like (``dataset_facts``, by ZIP URL) and where the last
listing stopped (``ledger_state``). Written out in full rather than imported from
core.ledger.tables, so later changes to the metadata never rewrite what this revision did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ops"


def upgrade() -> None:
    op.create_table(
        "trainings",
        sa.Column("id", sa.Text(), primary_key=True),
        # No FK: schema ops may live in another database (OPS_DATABASE_URL).
        sa.Column("user_id", sa.Text()),
        sa.Column("attached_by", sa.Text()),
        sa.Column("trainer_model", sa.Text(), nullable=False),
        sa.Column("trainer_version", sa.Text(), nullable=False),
        sa.Column("destination", sa.Text()),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column(
            "input", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.Column("output_version", sa.Text()),
        sa.Column("output_weights", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("started_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("completed_at", sa.TIMESTAMP(timezone=True)),
        sa.Column(
            "synced_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "attached_by IN ('training_id', 'output_model', 'trigger_word', 'upload_path')",
            name="ck_trainings_attached_by",
        ),
        sa.CheckConstraint(
            "(user_id IS NULL) = (attached_by IS NULL)",
            name="ck_trainings_attached_with_reason",
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_trainings_user_id", "trainings", ["user_id", "created_at"], schema=SCHEMA)
    op.create_index("ix_trainings_created_at", "trainings", ["created_at"], schema=SCHEMA)
    op.create_table(
        "dataset_facts",
        sa.Column("url", sa.Text(), primary_key=True),
        sa.Column("content_sha256", sa.Text()),
        sa.Column("facts", postgresql.JSONB(), nullable=False),
        sa.Column(
            "computed_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_dataset_facts_content_sha256", "dataset_facts", ["content_sha256"], schema=SCHEMA
    )
    op.create_table(
        "ledger_state",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("value", sa.Text()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("ledger_state", schema=SCHEMA)
    op.drop_index("ix_dataset_facts_content_sha256", table_name="dataset_facts", schema=SCHEMA)
    op.drop_table("dataset_facts", schema=SCHEMA)
    op.drop_index("ix_trainings_created_at", table_name="trainings", schema=SCHEMA)
    op.drop_index("ix_trainings_user_id", table_name="trainings", schema=SCHEMA)
    op.drop_table("trainings", schema=SCHEMA)
