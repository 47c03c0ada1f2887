"""Schema ops: fleet scans, their findings, and every user each scan looked at.

Revision ID: 0003
Revises: 0002
Create Date: 2026-02-02

A scan (``scans``) runs the drift engine over many users; each finding it raised is a row
of ``scan_findings`` (one per user and code), and each user it looked at a row of
``scan_users``, healthy ones included, so the pages can count, filter and trend without
re-running anything. Written out in full rather than imported from core.scan.tables, so
later changes to the metadata never rewrite what this revision did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ops"


def upgrade() -> None:
    op.create_table(
        "scans",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "started_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("finished_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("'running'")),
        sa.Column("users_total", sa.Integer(), nullable=False),
        sa.Column("users_scanned", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("requested_by", sa.Text()),
        sa.Column(
            "options", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.Column("error", sa.Text()),
        sa.CheckConstraint("status IN ('running', 'finished', 'failed')", name="ck_scans_status"),
        schema=SCHEMA,
    )
    op.create_index("ix_scans_status_id", "scans", ["status", "id"], schema=SCHEMA)
    op.create_table(
        "scan_findings",
        sa.Column("scan_id", sa.BigInteger(), nullable=False),
        # No FK to users: schema ops may live in another database (OPS_DATABASE_URL).
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("evidence", postgresql.JSONB(), nullable=False),
        sa.Column("fix", postgresql.JSONB(), nullable=False),
        sa.ForeignKeyConstraint(
            ["scan_id"], [f"{SCHEMA}.scans.id"], name="fk_scan_findings_scan_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("scan_id", "user_id", "code", name="pk_scan_findings"),
        sa.CheckConstraint(
            "severity IN ('critical', 'warning', 'info')", name="ck_scan_findings_severity"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_scan_findings_scan_code", "scan_findings", ["scan_id", "code"], schema=SCHEMA
    )
    op.create_index(
        "ix_scan_findings_scan_severity", "scan_findings", ["scan_id", "severity"], schema=SCHEMA
    )
    op.create_index("ix_scan_findings_user_id", "scan_findings", ["user_id"], schema=SCHEMA)
    op.create_table(
        "scan_users",
        sa.Column("scan_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("worst_severity", sa.Text()),
        sa.Column("finding_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["scan_id"], [f"{SCHEMA}.scans.id"], name="fk_scan_users_scan_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("scan_id", "user_id", name="pk_scan_users"),
        sa.CheckConstraint(
            "worst_severity IN ('critical', 'warning', 'info')", name="ck_scan_users_worst_severity"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_scan_users_scan_worst", "scan_users", ["scan_id", "worst_severity"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_index("ix_scan_users_scan_worst", table_name="scan_users", schema=SCHEMA)
    op.drop_table("scan_users", schema=SCHEMA)
    op.drop_index("ix_scan_findings_user_id", table_name="scan_findings", schema=SCHEMA)
    op.drop_index("ix_scan_findings_scan_severity", table_name="scan_findings", schema=SCHEMA)
    op.drop_index("ix_scan_findings_scan_code", table_name="scan_findings", schema=SCHEMA)
    op.drop_table("scan_findings", schema=SCHEMA)
    op.drop_index("ix_scans_status_id", table_name="scans", schema=SCHEMA)
    op.drop_table("scans", schema=SCHEMA)
