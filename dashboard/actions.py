"""The console's writes, called from pages: preview and apply repairs, undo, run a scan.

Never cached, never retried here: each call is one action, checked again in core (the
actor's role), audited there, and followed by dropping the caches it made stale.
"""

from __future__ import annotations

from collections.abc import Callable

from core.drift import RepairAction, UserFacts
from core.errors import DashboardError
from core.repairs import RepairPlan, apply_repair, plan_repair, read_row, undo_repair
from core.roles import Actor
from core.scan.values import ScanResult
from core.scan_access import start_scan
from dashboard import diagnosis, scans
from dashboard.resources import face_reader, read_only, runtime


def preview_repair(action: RepairAction, facts: UserFacts) -> RepairPlan:
    """What ``action`` would change in the user's row as it is now (DataRejected: why it
    does not apply)."""
    with read_only(runtime().engine) as conn:
        row = read_row(conn, facts.row.user_id)
    return plan_repair(action, facts, row)


def _forget() -> None:
    diagnosis.forget_facts()
    scans.forget()


def repair(actor: Actor, plan: RepairPlan, reason: str) -> int:
    """Apply a previewed repair in one transaction with its audit record; the audit id.

    On the APP database: the repair and its audit record commit together (repairs are
    refused when the audit log lives elsewhere, see ``repairs_available``).
    """
    with runtime().engine.connect() as conn:
        audit_id = apply_repair(conn, actor=actor, plan=plan, reason=reason)
    _forget()
    return audit_id


def undo(actor: Actor, audit_id: int, reason: str) -> int:
    """Undo repair ``audit_id`` (refused when the row changed since); the undo's audit id."""
    with runtime().engine.connect() as conn:
        undo_id = undo_repair(conn, actor=actor, audit_id=audit_id, reason=reason)
    _forget()
    return undo_id


def scan(actor: Actor, progress: Callable[[int, int], None]) -> ScanResult:
    """Scan every user now (admin only), reporting progress on this thread."""
    rt = runtime()
    try:
        return start_scan(actor, app_engine=rt.engine, ops_engine=rt.ops_engine,
                          gateway=rt.gateway, face_reader=face_reader(), progress=progress)
    finally:
        _forget()


def rescan_user(actor: Actor, user_id: str) -> str:
    """Scan one user again after a repair or undo, so the Users and Fleet pages (which
    read each user's latest finished scan) show the row as it is now. Best effort: the
    repair is done whatever happens here; the text says what the rescan found."""
    rt = runtime()
    try:
        result = start_scan(actor, app_engine=rt.engine, ops_engine=rt.ops_engine,
                            gateway=rt.gateway, face_reader=face_reader(), user_ids=[user_id])
    except DashboardError as exc:
        return f"This user was not rescanned ({exc}); the next scan shows the change."
    finally:
        _forget()
    codes = [finding.code for user in result.users for finding in user.findings]
    found = ", ".join(codes) if codes else "no finding"
    return f"Rescanned in scan #{result.scan_id}: {found}."
