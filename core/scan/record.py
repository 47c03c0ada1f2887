"""Writing a scan to schema ``ops``: its row, each batch of users, its end.

The caller owns the transaction. A batch of users is stored in one transaction (a user's
findings and ``scan_users`` row are never seen apart). ``start_scan``/``finish_scan``/
``fail_scan`` write a scan's row directly (fixtures, the bench); the console's scans go
through ``core.scan.request`` (guarded, audited) and their jobs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from core.redaction import storable
from core.scan.tables import scan_findings, scan_users, scans
from core.scan.values import UserScan

ERROR_MAX_CHARS = 2000


def start_scan(
    conn: Connection, *, users_total: int, requested_by: str | None, options: Mapping[str, Any]
) -> tuple[int, datetime]:
    """Insert a ``running`` scan (its scope from ``options``); returns its id and start."""
    row = conn.execute(
        insert(scans)
        .values(
            users_total=users_total,
            requested_by=requested_by,
            options=dict(options),
            status="running",
            scope="users" if options.get("scope") == "users" else "all",
            picked_up_at=func.now(),
            heartbeat_at=func.now(),
        )
        .returning(scans.c.id, scans.c.started_at)
    ).one()
    return int(row.id), row.started_at


def lock_scan(conn: Connection, scan_id: int) -> str | None:
    """Lock the scan's row until the transaction ends; its status (None: no such scan).
    Every step that moves a scan on takes this lock first, so they never interleave."""
    status: str | None = conn.execute(
        select(scans.c.status).where(scans.c.id == scan_id).with_for_update()
    ).scalar_one_or_none()
    return status


def record_users(conn: Connection, scan_id: int, results: Sequence[UserScan]) -> None:
    """Store a batch of users' results and count them as scanned."""
    if not results:
        return
    conn.execute(
        insert(scan_users),
        [
            {
                "scan_id": scan_id,
                "user_id": result.user_id,
                "worst_severity": worst.value if (worst := result.worst_severity) else None,
                "finding_count": len(result.findings),
            }
            for result in results
        ],
    )
    rows = [
        {"scan_id": scan_id, "user_id": result.user_id, **storable(finding.to_dict())}
        for result in results
        for finding in result.findings
    ]
    if rows:
        conn.execute(insert(scan_findings), rows)
    conn.execute(
        update(scans)
        .where(scans.c.id == scan_id)
        .values(users_scanned=scans.c.users_scanned + len(results))
    )


def finish_scan(conn: Connection, scan_id: int) -> datetime:
    """Mark the scan finished; returns when."""
    finished: datetime = conn.execute(
        update(scans)
        .where(scans.c.id == scan_id)
        .values(status="finished", finished_at=func.now())
        .returning(scans.c.finished_at)
    ).scalar_one()
    return finished


def fail_scan(conn: Connection, scan_id: int, error: str) -> None:
    """Mark the scan failed with the reason (the users already stored stay)."""
    conn.execute(
        update(scans)
        .where(scans.c.id == scan_id)
        .values(status="failed", finished_at=func.now(), error=storable(error)[:ERROR_MAX_CHARS])
    )
