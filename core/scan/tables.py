"""The fleet scan's tables in schema ``ops`` (created by migration 0003), for queries.

``scans`` holds one row per scan (queued, running, finished, failed or cancelled, with
its options, phase and counters; migration 0004); ``scan_findings`` every finding a scan
raised, one per (user, code); ``scan_users`` one row per user the scan looked at, healthy
users included (``worst_severity`` NULL), so "who was scanned" and "who is healthy" are
answered without guessing from missing findings. ``scan_batches`` splits a scan's users
into jobs; ``scan_zips`` lists the training ZIPs a scan waits for (migration 0004).
"""

from __future__ import annotations

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from core.schema import ops_metadata

SCAN_STATUSES = ("queued", "running", "finished", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running")
ENDED_STATUSES = ("finished", "failed", "cancelled")
FLEET = "all"  # the scope of a fleet scan; "users" is a scan of some users
SEVERITIES = ("critical", "warning", "info")

scans = Table(
    "scans",
    ops_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("started_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", TIMESTAMP(timezone=True)),
    Column("status", Text, nullable=False, server_default=text("'queued'")),
    Column("users_total", Integer, nullable=False),
    Column("users_scanned", Integer, nullable=False, server_default=text("0")),
    Column("requested_by", Text),
    Column("options", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("error", Text),
    Column("scope", Text, nullable=False, server_default=text("'all'")),
    Column("heartbeat_at", TIMESTAMP(timezone=True)),  # a worker working on it, lately
    Column("picked_up_at", TIMESTAMP(timezone=True)),  # a worker began it
    Column("phase", Text),  # sync, plan, check; None while queued and once ended
    Column("planned", Boolean, nullable=False, server_default=false()),  # batches all known
    Column("plan_cursor", Text),  # the last user id planned (a restarted plan resumes)
    Column("batches_total", Integer, nullable=False, server_default=text("0")),
    Column("batches_done", Integer, nullable=False, server_default=text("0")),
    Column("zips_total", Integer, nullable=False, server_default=text("0")),
    Column("zips_done", Integer, nullable=False, server_default=text("0")),
    Column("ledger_health", JSONB),  # how the scan's ledger sync went (core.scan.facts)
    Column("cancelled_by", Text),
    # Photos measured so far in the ZIPs it waits for (migration 0011).
    Column("photos_read", Integer, nullable=False, server_default=text("0")),
    CheckConstraint(
        "status IN ('queued', 'running', 'finished', 'failed', 'cancelled')", name="ck_scans_status"
    ),
    CheckConstraint("scope IN ('all', 'users')", name="ck_scans_scope"),
    Index("ix_scans_status_id", "status", "id"),
    # At most one fleet scan queued or running: the database, not a check in Python.
    Index(
        "ux_scans_one_fleet_scan",
        "scope",
        unique=True,
        postgresql_where=text("scope = 'all' AND status IN ('queued', 'running')"),
    ),
)

scan_findings = Table(
    "scan_findings",
    ops_metadata,
    Column(
        "scan_id",
        BigInteger,
        ForeignKey("ops.scans.id", name="fk_scan_findings_scan_id", ondelete="CASCADE"),
        nullable=False,
    ),
    # No FK to users: schema ops may live in another database (OPS_DATABASE_URL).
    Column("user_id", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("evidence", JSONB, nullable=False),
    Column("fix", JSONB, nullable=False),
    PrimaryKeyConstraint("scan_id", "user_id", "code", name="pk_scan_findings"),
    CheckConstraint(
        "severity IN ('critical', 'warning', 'info')", name="ck_scan_findings_severity"
    ),
    Index("ix_scan_findings_scan_code", "scan_id", "code"),
    Index("ix_scan_findings_scan_severity", "scan_id", "severity"),
    Index("ix_scan_findings_user_id", "user_id"),
)

scan_users = Table(
    "scan_users",
    ops_metadata,
    Column(
        "scan_id",
        BigInteger,
        ForeignKey("ops.scans.id", name="fk_scan_users_scan_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", Text, nullable=False),
    Column("worst_severity", Text),  # NULL: healthy
    Column("finding_count", Integer, nullable=False),
    PrimaryKeyConstraint("scan_id", "user_id", name="pk_scan_users"),
    CheckConstraint(
        "worst_severity IN ('critical', 'warning', 'info')", name="ck_scan_users_worst_severity"
    ),
    Index("ix_scan_users_scan_worst", "scan_id", "worst_severity"),
)

scan_batches = Table(
    "scan_batches",
    ops_metadata,
    Column(
        "scan_id",
        BigInteger,
        ForeignKey("ops.scans.id", name="fk_scan_batches_scan_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("batch_no", Integer, nullable=False),
    Column("user_ids", ARRAY(Text), nullable=False),
    Column("zip_urls", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    # waiting: for its ZIPs' photos; queued: its job is deferred; done: its users stored
    Column("state", Text, nullable=False, server_default=text("'waiting'")),
    Column("finished_at", TIMESTAMP(timezone=True)),
    PrimaryKeyConstraint("scan_id", "batch_no", name="pk_scan_batches"),
    CheckConstraint("state IN ('waiting', 'queued', 'done')", name="ck_scan_batches_state"),
)

scan_zips = Table(
    "scan_zips",
    ops_metadata,
    Column(
        "scan_id",
        BigInteger,
        ForeignKey("ops.scans.id", name="fk_scan_zips_scan_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("url", Text, nullable=False),
    Column("state", Text, nullable=False, server_default=text("'pending'")),
    Column("error", Text),  # why the photos could not be read (failed)
    PrimaryKeyConstraint("scan_id", "url", name="pk_scan_zips"),
    CheckConstraint("state IN ('pending', 'done', 'failed')", name="ck_scan_zips_state"),
    Index("ix_scan_zips_pending_url", "url", postgresql_where=text("state = 'pending'")),
)
