"""Schema ops: the job queue (procrastinate) and scans that run as jobs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

- procrastinate's own tables, types and functions, installed in schema ``ops`` (its SQL
  uses unqualified names, so it runs with ``search_path`` set to ops). procrastinate has
  no version table of its own: a later procrastinate upgrade is a later revision here,
  running its ``--migrations-path`` files the same way.
- ``scans`` learns the queue: statuses ``queued`` and ``cancelled``, an explicit
  ``scope`` (``all`` = a fleet scan, ``users`` = some users), a worker heartbeat, the
  phase and its counters, and who cancelled. At most one fleet scan is queued or running:
  a partial unique index, so two requests at the same moment cannot both win.
- ``scan_batches``: the users of a scan in batches, each one job, with the ZIPs its
  users' dataset checks need; ``scan_zips``: the ZIPs a scan waits for, and how each
  ended (a ZIP's photos are read by one job shared by every scan that needs them).

Written out in full rather than imported from core.scan.tables, so later changes to the
metadata never rewrite what this revision did.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ops"
# Everything procrastinate's schema.sql creates, for the downgrade (functions first: the
# triggers and types they use go with the tables and types below).
_PROCRASTINATE_TABLES = (
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_jobs",
    "procrastinate_workers",
)
_PROCRASTINATE_TYPES = (
    "procrastinate_job_to_defer_v1",
    "procrastinate_job_event_type",
    "procrastinate_job_status",
)


def _install_procrastinate() -> None:
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT to_regclass('ops.procrastinate_jobs')")).scalar() is not None:
        return  # installed by hand with `procrastinate schema --apply`
    schema_sql = resources.files("procrastinate.sql").joinpath("schema.sql").read_text()
    op.execute("SET LOCAL search_path TO ops")
    op.execute(schema_sql)
    op.execute("SET LOCAL search_path TO DEFAULT")


def upgrade() -> None:
    _install_procrastinate()
    # Scans left 'running' by the old in-page scan can never finish now.
    op.execute(
        "UPDATE ops.scans SET status = 'failed', finished_at = now(), "
        "error = 'interrupted: the console was upgraded to background scans' "
        "WHERE status = 'running'"
    )
    op.drop_constraint("ck_scans_status", "scans", schema=SCHEMA)
    op.create_check_constraint(
        "ck_scans_status",
        "scans",
        "status IN ('queued', 'running', 'finished', 'failed', 'cancelled')",
        schema=SCHEMA,
    )
    op.alter_column("scans", "status", server_default=sa.text("'queued'"), schema=SCHEMA)
    columns: list[sa.Column[Any]] = [
        sa.Column("scope", sa.Text(), nullable=False, server_default=sa.text("'all'")),
        sa.Column("heartbeat_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("picked_up_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("phase", sa.Text()),
        sa.Column("planned", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("plan_cursor", sa.Text()),
        sa.Column("batches_total", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("batches_done", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("zips_total", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("zips_done", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("ledger_health", postgresql.JSONB()),
        sa.Column("cancelled_by", sa.Text()),
    ]
    for column in columns:
        op.add_column("scans", column, schema=SCHEMA)
    op.execute("UPDATE ops.scans SET scope = 'users' WHERE options->>'scope' = 'users'")
    op.create_check_constraint(
        "ck_scans_scope", "scans", "scope IN ('all', 'users')", schema=SCHEMA
    )
    op.create_index(
        "ux_scans_one_fleet_scan",
        "scans",
        ["scope"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("scope = 'all' AND status IN ('queued', 'running')"),
    )
    op.create_table(
        "scan_batches",
        sa.Column("scan_id", sa.BigInteger(), nullable=False),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        sa.Column("user_ids", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column(
            "zip_urls",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::text[]"),
        ),
        sa.Column("state", sa.Text(), nullable=False, server_default=sa.text("'waiting'")),
        sa.Column("finished_at", sa.TIMESTAMP(timezone=True)),
        sa.ForeignKeyConstraint(
            ["scan_id"], [f"{SCHEMA}.scans.id"], name="fk_scan_batches_scan_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("scan_id", "batch_no", name="pk_scan_batches"),
        sa.CheckConstraint("state IN ('waiting', 'queued', 'done')", name="ck_scan_batches_state"),
        schema=SCHEMA,
    )
    op.create_table(
        "scan_zips",
        sa.Column("scan_id", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False, server_default=sa.text("'pending'")),
        sa.Column("error", sa.Text()),
        sa.ForeignKeyConstraint(
            ["scan_id"], [f"{SCHEMA}.scans.id"], name="fk_scan_zips_scan_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("scan_id", "url", name="pk_scan_zips"),
        sa.CheckConstraint("state IN ('pending', 'done', 'failed')", name="ck_scan_zips_state"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_scan_zips_pending_url",
        "scan_zips",
        ["url"],
        schema=SCHEMA,
        postgresql_where=sa.text("state = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_scan_zips_pending_url", table_name="scan_zips", schema=SCHEMA)
    op.drop_table("scan_zips", schema=SCHEMA)
    op.drop_table("scan_batches", schema=SCHEMA)
    op.drop_index("ux_scans_one_fleet_scan", table_name="scans", schema=SCHEMA)
    op.drop_constraint("ck_scans_scope", "scans", schema=SCHEMA)
    for name in (
        "cancelled_by",
        "ledger_health",
        "zips_done",
        "zips_total",
        "batches_done",
        "batches_total",
        "plan_cursor",
        "planned",
        "phase",
        "picked_up_at",
        "heartbeat_at",
        "scope",
    ):
        op.drop_column("scans", name, schema=SCHEMA)
    op.execute("UPDATE ops.scans SET status = 'failed' WHERE status IN ('queued', 'cancelled')")
    op.drop_constraint("ck_scans_status", "scans", schema=SCHEMA)
    op.create_check_constraint(
        "ck_scans_status", "scans", "status IN ('running', 'finished', 'failed')", schema=SCHEMA
    )
    op.alter_column("scans", "status", server_default=sa.text("'running'"), schema=SCHEMA)
    for table in _PROCRASTINATE_TABLES:
        op.execute(f"DROP TABLE IF EXISTS ops.{table} CASCADE")
    op.execute("""
        DO $$ DECLARE f record; BEGIN
          FOR f IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
                   JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE n.nspname = 'ops' AND p.proname LIKE 'procrastinate\\_%'
          LOOP EXECUTE 'DROP FUNCTION ' || f.signature || ' CASCADE'; END LOOP;
        END $$""")
    for type_name in _PROCRASTINATE_TYPES:
        op.execute(f"DROP TYPE IF EXISTS ops.{type_name} CASCADE")
