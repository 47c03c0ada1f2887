"""The console's writes, called from pages: preview and apply repairs, undo, ask for or
cancel a scan (the workers run it).

Never cached, never retried here: each call is one action, checked again in core (the
actor's role), audited there, and followed by dropping the caches it made stale.
"""

from __future__ import annotations

from datetime import timedelta

from core.drift import RepairAction, UserFacts
from core.errors import DashboardError
from core.repairs import RepairPlan, apply_repair, plan_repair, read_row, undo_repair
from core.roles import Actor
from core.scan.request import ScanOptions, request_scan
from core.scan.request import cancel_scan as cancel
from core.scan.values import ScanSummary
from dashboard import diagnosis, scans
from dashboard.messages import said
from dashboard.resources import read_only, runtime, writing


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
    with writing(runtime().engine) as conn:
        audit_id = apply_repair(conn, actor=actor, plan=plan, reason=reason)
    _forget()
    return audit_id


def undo(actor: Actor, audit_id: int, reason: str) -> int:
    """Undo repair ``audit_id`` (refused when the row changed since); the undo's audit id."""
    with writing(runtime().engine) as conn:
        undo_id = undo_repair(conn, actor=actor, audit_id=audit_id, reason=reason)
    _forget()
    return undo_id


def _stale_after() -> timedelta:
    return timedelta(seconds=runtime().settings.scan_heartbeat_timeout_seconds)


def scan(actor: Actor) -> ScanSummary:
    """Queue a fleet scan (admin only, one at a time): it runs in the workers, so leaving
    the page or closing the tab does not stop it. Conflict names the one that runs."""
    with writing(runtime().ops_engine) as conn, conn.begin():
        summary = request_scan(
            conn, actor, ScanOptions.of(), background=True, stale_after=_stale_after()
        )
    scans.forget()
    return summary


def cancel_scan(actor: Actor, scan_id: int) -> ScanSummary:
    """Cancel a queued or running scan (admin only); users already checked keep their
    findings."""
    with writing(runtime().ops_engine) as conn, conn.begin():
        summary = cancel(conn, actor, scan_id)
    scans.forget()
    return summary


def rescan_user(actor: Actor, user_id: str) -> str:
    """Queue a scan of one user after a repair or undo, so the Users and Fleet pages (which
    read each user's latest scan) show the row as it is once a worker has checked it.
    Best effort: the repair is done whatever happens here; the text (Markdown) says what
    follows."""
    try:
        with writing(runtime().ops_engine) as conn, conn.begin():
            summary = request_scan(
                conn, actor, ScanOptions.of([user_id]), background=True, stale_after=_stale_after()
            )
    except DashboardError as exc:
        return f"This user was not rescanned ({said(exc)}); the next scan shows the change."
    finally:
        _forget()
    return (
        f"Rescan #{summary.id} of this user is queued; the Users and Fleet pages show "
        "the row as it is once a worker has checked it (seconds)."
    )
