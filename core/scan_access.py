"""Starting a fleet scan for a staff member: admin only, one at a time, audited.

``core.scan.run.run_scan`` takes no actor (the CLI runs it with the operator's own
credentials), so the console starts scans through ``start_scan``, which checks the role
again in core: a scan makes several Replicate calls per user, and hiding the button is
not access control. ``scan_blocked`` is the pure decision whether another scan is still
running; a ``running`` row older than ``RUNNING_SCAN_STALE_AFTER`` is taken for a scan
whose process died, so it never blocks scanning forever.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from core import audit
from core.errors import Conflict
from core.faces import FaceReader
from core.gateway.gateway import ReplicateGateway
from core.roles import Actor, Role, require
from core.scan.run import run_scan
from core.scan.store import last_scan
from core.scan.values import ScanResult, ScanSummary

RUNNING_SCAN_STALE_AFTER = timedelta(hours=1)
SCAN_ACTION = "scan:run"


def scan_blocked(last: ScanSummary | None, *, now: datetime) -> str | None:
    """Why a new scan must wait (another one is running), or None."""
    if last is None or last.status != "running":
        return None
    started = last.started_at if last.started_at.tzinfo else last.started_at.replace(tzinfo=UTC)
    if now - started >= RUNNING_SCAN_STALE_AFTER:
        return None
    who = f" by {last.requested_by}" if last.requested_by else ""
    return (f"Scan #{last.id}, started{who} at {started:%Y-%m-%d %H:%M} UTC, is still running "
            f"({last.users_scanned} of {last.users_total} users). Wait for it to finish, "
            "then reload the page.")


def start_scan(actor: Actor, *, app_engine: Engine, ops_engine: Engine,
               gateway: ReplicateGateway, face_reader: FaceReader | None = None,
               user_ids: Sequence[str] | None = None, concurrency: int = 8,
               progress: Callable[[int, int], None] | None = None) -> ScanResult:
    """Run a scan on ``actor``'s behalf and audit it (``scan:run``).

    PermissionDenied unless the actor is an admin; Conflict while another scan runs.
    ``progress(done, total)`` is called on this thread between batches.
    """
    require(actor, Role.ADMIN)
    with ops_engine.connect() as conn:
        blocked = scan_blocked(last_scan(conn), now=datetime.now(UTC))
    if blocked is not None:
        raise Conflict(blocked)
    result = run_scan(app_engine=app_engine, ops_engine=ops_engine, gateway=gateway,
                      user_ids=user_ids, concurrency=concurrency, face_reader=face_reader,
                      requested_by=actor.email, progress=progress)
    one_user = user_ids[0] if user_ids is not None and len(user_ids) == 1 else None
    with ops_engine.begin() as conn:
        audit.record(conn, actor_email=actor.email, actor_role=actor.role, action=SCAN_ACTION,
                     target_user_id=one_user,
                     details={"scan_id": result.scan_id, "users": len(result.users),
                              "users_with_findings": sum(1 for user in result.users
                                                         if user.findings),
                              "seconds": round(result.seconds, 1)})
    return result
