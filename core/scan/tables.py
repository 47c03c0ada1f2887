"""The fleet scan's tables in schema ``ops`` (created by migration 0003), for queries.

``scans`` holds one row per scan (running, finished or failed, with its options);
``scan_findings`` every finding a scan raised, one per (user, code); ``scan_users`` one row
per user the scan looked at, healthy users included (``worst_severity`` NULL), so "who was
scanned" and "who is healthy" are answered without guessing from missing findings.
"""

from __future__ import annotations

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from core.schema import ops_metadata

SCAN_STATUSES = ("running", "finished", "failed")
SEVERITIES = ("critical", "warning", "info")

scans = Table(
    "scans",
    ops_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("started_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", TIMESTAMP(timezone=True)),
    Column("status", Text, nullable=False, server_default=text("'running'")),
    Column("users_total", Integer, nullable=False),
    Column("users_scanned", Integer, nullable=False, server_default=text("0")),
    Column("requested_by", Text),
    Column("options", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("error", Text),
    CheckConstraint("status IN ('running', 'finished', 'failed')", name="ck_scans_status"),
    Index("ix_scans_status_id", "status", "id"),
)

scan_findings = Table(
    "scan_findings",
    ops_metadata,
    Column("scan_id", BigInteger,
           ForeignKey("ops.scans.id", name="fk_scan_findings_scan_id", ondelete="CASCADE"),
           nullable=False),
    # No FK to users: schema ops may live in another database (OPS_DATABASE_URL).
    Column("user_id", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("evidence", JSONB, nullable=False),
    Column("fix", JSONB, nullable=False),
    PrimaryKeyConstraint("scan_id", "user_id", "code", name="pk_scan_findings"),
    CheckConstraint("severity IN ('critical', 'warning', 'info')",
                    name="ck_scan_findings_severity"),
    Index("ix_scan_findings_scan_code", "scan_id", "code"),
    Index("ix_scan_findings_scan_severity", "scan_id", "severity"),
    Index("ix_scan_findings_user_id", "user_id"),
)

scan_users = Table(
    "scan_users",
    ops_metadata,
    Column("scan_id", BigInteger,
           ForeignKey("ops.scans.id", name="fk_scan_users_scan_id", ondelete="CASCADE"),
           nullable=False),
    Column("user_id", Text, nullable=False),
    Column("worst_severity", Text),  # NULL: healthy
    Column("finding_count", Integer, nullable=False),
    PrimaryKeyConstraint("scan_id", "user_id", name="pk_scan_users"),
    CheckConstraint("worst_severity IN ('critical', 'warning', 'info')",
                    name="ck_scan_users_worst_severity"),
    Index("ix_scan_users_scan_worst", "scan_id", "worst_severity"),
)
