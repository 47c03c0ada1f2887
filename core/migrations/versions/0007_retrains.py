"""Schema ops: retrains (the retrain wizard's submissions, their training and the promotion
gate's decision) and their photos.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

Written out in full rather than imported from core.retrain.tables, so later changes to
the metadata never rewrite what this revision did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ops"


def upgrade() -> None:
    op.create_table(
        "retrains",
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
        sa.Column("reason", sa.Text()),
        sa.Column("confirm_token", sa.Text(), unique=True),
        sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("'draft'")),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("trainer_model", sa.Text(), nullable=False),
        sa.Column("trainer_version", sa.Text(), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("trigger_word", sa.Text(), nullable=False),
        sa.Column("previous_training_id", sa.Text()),
        sa.Column("previous_version", sa.Text()),
        sa.Column("previous_zip_url", sa.Text()),
        sa.Column(
            "source_zips",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'[]'::jsonb"),
        ),
        sa.Column("training_input", postgresql.JSONB()),
        sa.Column(
            "ignored_inputs",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
        sa.Column("gate", postgresql.JSONB()),
        sa.Column("override_reason", sa.Text()),
        sa.Column("zip_sha256", sa.Text()),
        sa.Column("zip_bytes", sa.BigInteger()),
        sa.Column("zip_url", sa.Text()),
        sa.Column("upload_claimed_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("training_id", sa.Text(), unique=True),
        sa.Column("claimed_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("submitted_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("step", sa.Integer()),
        sa.Column("steps", sa.Integer()),
        sa.Column("heartbeat_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("finished_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("error", sa.Text()),
        sa.Column("new_version", sa.Text()),
        sa.Column("new_weights", sa.Text()),
        sa.Column("comparison_id", sa.BigInteger()),
        sa.Column("decision", sa.Text()),
        sa.Column("decided_by", sa.Text()),
        sa.Column("decided_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("decision_reason", sa.Text()),
        sa.CheckConstraint(
            "status IN ('draft', 'submitting', 'creating', 'starting', 'processing', "
            "'succeeded', 'failed', 'canceled', 'aborted', 'lost')",
            name="ck_retrains_status",
        ),
        sa.CheckConstraint(
            "decision IS NULL OR decision IN ('promoted', 'kept')", name="ck_retrains_decision"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "uq_retrains_one_active_per_user",
        "retrains",
        ["user_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("active"),
    )
    op.create_index("ix_retrains_user", "retrains", ["user_id", "requested_at"], schema=SCHEMA)
    op.create_table(
        "retrain_photos",
        sa.Column(
            "retrain_id",
            sa.BigInteger(),
            sa.ForeignKey("ops.retrains.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("thumbnail", sa.LargeBinary()),
        sa.Column("facts", postgresql.JSONB()),
        sa.Column("verdict", sa.Text()),
        sa.Column(
            "reasons", postgresql.ARRAY(sa.Text()), nullable=False, server_default=sa.text("'{}'")
        ),
        sa.Column("kept", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.PrimaryKeyConstraint("retrain_id", "position", name="pk_retrain_photos"),
        sa.CheckConstraint("source IN ('previous', 'upload')", name="ck_retrain_photos_source"),
        sa.CheckConstraint(
            "verdict IS NULL OR verdict IN ('ok', 'warn', 'reject')",
            name="ck_retrain_photos_verdict",
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("retrain_photos", schema=SCHEMA)
    op.drop_table("retrains", schema=SCHEMA)
