"""Schema ops: the audit log and the staff role map.

Revision ID: 0001
Revises:
Create Date: 2025-11-22

Written out in full rather than imported from core.schema, so later changes to the
metadata never rewrite what this revision did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ops"


def upgrade() -> None:
    op.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor_email", sa.Text(), nullable=False),
        sa.Column("actor_role", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target_user_id", sa.Text()),
        sa.Column("before", postgresql.JSONB()),
        sa.Column("after", postgresql.JSONB()),
        sa.Column("reason", sa.Text()),
        sa.Column("details", postgresql.JSONB()),
        schema=SCHEMA,
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], schema=SCHEMA)
    op.create_index(
        "ix_audit_log_target_user_id", "audit_log", ["target_user_id", "id"], schema=SCHEMA
    )
    op.create_index("ix_audit_log_actor_email", "audit_log", ["actor_email", "id"], schema=SCHEMA)
    op.create_index("ix_audit_log_action", "audit_log", ["action", "id"], schema=SCHEMA)
    op.create_table(
        "staff",
        sa.Column("email", sa.Text(), primary_key=True),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column(
            "added_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("role IN ('support', 'product', 'admin')", name="ck_staff_role"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    # The schema itself stays: Alembic's version table lives in it.
    op.drop_table("staff", schema=SCHEMA)
    op.drop_index("ix_audit_log_action", table_name="audit_log", schema=SCHEMA)
    op.drop_index("ix_audit_log_actor_email", table_name="audit_log", schema=SCHEMA)
    op.drop_index("ix_audit_log_target_user_id", table_name="audit_log", schema=SCHEMA)
    op.drop_index("ix_audit_log_at", table_name="audit_log", schema=SCHEMA)
    op.drop_table("audit_log", schema=SCHEMA)
