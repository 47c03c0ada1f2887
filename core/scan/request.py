"""Asking for a scan, cancelling one, and giving up on one whose workers died.

Every function here writes schema ops through the caller's connection and leaves the
commit to the caller, so a scan row, its audit record and its first job commit together
or not at all.

- ``request_scan``: admin only (checked here, in core: a scan makes several Replicate
  calls per user, and hiding a button is not access control). At most one fleet scan is
  queued or running, guaranteed by the partial unique index ``ux_scans_one_fleet_scan``:
  of two requests at the same moment the second waits for the first to commit and is
  then refused with the running scan's id, who asked for it and how far it is. In the
  background (the console, ``--background``, the nightly schedule) the scan is queued
  and its planning job deferred; in the foreground (``python -m core.scan``) it starts
  as running and the caller runs it.
- ``cancel_scan``: admin only; the users already stored keep their findings.
- ``reap_stale_scans``: a running scan whose heartbeat is older than the timeout lost
  its workers (killed, stopped, the machine gone); it is marked failed so it no longer
  blocks, and its leftover jobs find it ended and do nothing.

Each request is audited as ``scan:run`` (event ``requested``: who, scope); each end again
as ``scan:run`` with the outcome (``finished``, ``failed`` with the reason,
``cancelled``); a cancel also as ``scan:cancel`` by the admin who cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from core import audit
from core.errors import Conflict, DataRejected, NotFound
from core.jobs.app import Queue, TaskName, defer, ops_search_path
from core.roles import Actor, Role, require
from core.scan.progress import scan_progress
from core.scan.scope import Scope
from core.scan.store import active_fleet_scan, scan_summary, summary_from_row
from core.scan.tables import ACTIVE_STATUSES, FLEET, scan_users, scans
from core.scan.values import ScanSummary

SCAN_ACTION = "scan:run"
CANCEL_ACTION = "scan:cancel"
ONE_FLEET_SCAN_INDEX = "ux_scans_one_fleet_scan"
DEFAULT_STALE_AFTER = timedelta(minutes=2)
# A scan of given users keeps their ids in ``ops.scans.options`` (its jobs read them
# there); more than this is a fleet scan's job.
MAX_USERS_PER_REQUEST = 10_000


@dataclass(frozen=True)
class ScanOptions:
    """What a scan is asked to do."""

    user_ids: tuple[str, ...] | None = None  # None: every user of the app
    with_datasets: bool = True  # read the training photos the dataset checks need
    concurrency: int = 8  # users checked at once within one batch
    recheck_datasets: bool = False  # read again the ZIPs whose photos were rejected

    def to_json(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "scope": self.scope,
            "concurrency": self.concurrency,
            "with_datasets": self.with_datasets,
        }
        if self.recheck_datasets:
            options["recheck_datasets"] = True
        if self.user_ids is not None:
            options["user_count"] = len(self.user_ids)
            options["user_ids"] = list(self.user_ids)
        return options

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> ScanOptions:
        """The options a scan row was requested with (defaults for rows older than
        background scans)."""
        raw = raw or {}
        ids = raw.get("user_ids") if raw.get("scope") == "users" else None
        return cls(
            tuple(str(user_id) for user_id in ids) if ids is not None else None,
            bool(raw.get("with_datasets", True)),
            max(1, int(raw.get("concurrency") or 8)),
            bool(raw.get("recheck_datasets", False)),
        )

    @property
    def scope(self) -> str:
        return FLEET if self.user_ids is None else "users"

    @classmethod
    def of(
        cls,
        user_ids: Sequence[str] | None = None,
        *,
        with_datasets: bool = True,
        concurrency: int = 8,
        recheck_datasets: bool = False,
    ) -> ScanOptions:
        ids = Scope.of(user_ids).user_ids
        if ids is not None and not ids:
            raise DataRejected("No user id given: name at least one user, or scan everyone.")
        if ids is not None and len(ids) > MAX_USERS_PER_REQUEST:
            raise DataRejected(
                f"At most {MAX_USERS_PER_REQUEST} user ids at once; scan everyone instead."
            )
        return cls(ids, with_datasets, max(1, concurrency), recheck_datasets and with_datasets)


def refusal(
    active: ScanSummary | None, *, now: datetime, stale_after: timedelta = DEFAULT_STALE_AFTER
) -> str:
    """Why a second fleet scan is refused, naming the one that holds the place (pure)."""
    if active is None:
        return "Another fleet scan was requested at the same moment; reload to see it."
    who = active.requested_by or "the command line"
    if active.status == "queued":
        where = "is queued, waiting for a worker"
    else:
        where = f"is running ({scan_progress(active, now=now, stale_after=stale_after).words})"
    since = max(0, int((now - active.started_at).total_seconds() // 60))
    return (
        f"Fleet scan #{active.id}, requested by {who} {since} min ago, {where}. Wait "
        "for it to end (or cancel it), then scan again."
    )


def request_scan(
    conn: Connection,
    actor: Actor,
    options: ScanOptions,
    *,
    background: bool,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    via: str = "console",
) -> ScanSummary:
    """Record a scan for ``actor`` (queued, its plan job deferred, when ``background``;
    else running, for the caller to run), audited; the caller commits.

    PermissionDenied unless an admin; Conflict while another fleet scan is queued or
    running (after giving up on one whose heartbeat stopped).
    """
    require(actor, Role.ADMIN)
    reap_stale_scans(conn, stale_after=stale_after)
    users_total = len(options.user_ids) if options.user_ids is not None else 0
    values: dict[str, Any] = {
        "users_total": users_total,
        "requested_by": actor.email,
        "scope": options.scope,
        "options": options.to_json(),
        "status": "queued" if background else "running",
    }
    if not background:
        values.update(picked_up_at=func.now(), heartbeat_at=func.now())
    try:
        with conn.begin_nested():
            row = conn.execute(insert(scans).values(**values).returning(scans)).one()
    except IntegrityError as exc:
        if ONE_FLEET_SCAN_INDEX not in str(exc.orig):
            raise
        now = conn.execute(select(func.now())).scalar_one()
        raise Conflict(refusal(active_fleet_scan(conn), now=now, stale_after=stale_after)) from None
    summary = summary_from_row(row)
    details: dict[str, Any] = {
        "event": "requested",
        "scan_id": summary.id,
        "scope": options.scope,
        "via": via,
        "with_datasets": options.with_datasets,
        "background": background,
    }
    if options.user_ids is not None:
        details["users"] = len(options.user_ids)
    one_user = options.user_ids[0] if options.user_ids and len(options.user_ids) == 1 else None
    audit.record(
        conn,
        actor_email=actor.email,
        actor_role=actor.role,
        action=SCAN_ACTION,
        target_user_id=one_user,
        details=details,
    )
    if background:
        defer(conn, TaskName.PLAN_SCAN, queue=Queue.SCANS, scan_id=summary.id)
    return summary


def cancel_scan(conn: Connection, actor: Actor, scan_id: int) -> ScanSummary:
    """Cancel a queued or running scan (admin only), audited; the caller commits. The
    users already stored keep their findings; batches still running are not stored."""
    require(actor, Role.ADMIN)
    row = conn.execute(
        update(scans)
        .where(scans.c.id == scan_id, scans.c.status.in_(ACTIVE_STATUSES))
        .values(status="cancelled", finished_at=func.now(), phase=None, cancelled_by=actor.email)
        .returning(scans)
    ).one_or_none()
    if row is None:
        current = scan_summary(conn, scan_id)
        if current is None:
            raise NotFound(f"There is no scan #{scan_id}.")
        raise Conflict(
            f"Scan #{scan_id} is not running any more ({current.status}); "
            "reload the page to see how it ended."
        )
    summary = summary_from_row(row)
    audit.record(
        conn,
        actor_email=actor.email,
        actor_role=actor.role,
        action=CANCEL_ACTION,
        details={
            "scan_id": scan_id,
            "scope": summary.scope,
            "users_checked": summary.users_scanned,
            "users_total": summary.users_total,
        },
    )
    record_outcome(conn, summary, "cancelled")
    _cancel_jobs(conn, scan_id)
    return summary


def reap_stale_scans(conn: Connection, *, stale_after: timedelta) -> list[ScanSummary]:
    """Mark failed every running scan whose last sign of life is older than
    ``stale_after`` (its workers died or were stopped); the caller commits."""
    seconds = max(1, int(stale_after.total_seconds()))
    last_sign = func.coalesce(scans.c.heartbeat_at, scans.c.picked_up_at, scans.c.started_at)
    reason = (
        f"no heartbeat from any worker for {seconds} s: the worker running it died or "
        "was stopped. The users already checked keep their findings; scan again."
    )
    rows = conn.execute(
        update(scans)
        .where(scans.c.status == "running", last_sign < func.now() - timedelta(seconds=seconds))
        .values(status="failed", finished_at=func.now(), phase=None, error=reason)
        .returning(scans)
    ).all()
    reaped = [summary_from_row(row) for row in rows]
    for summary in reaped:
        record_outcome(conn, summary, "failed")
        _cancel_jobs(conn, summary.id)
    return reaped


def abandon_scan(conn: Connection, scan_id: int, reason: str) -> ScanSummary | None:
    """Mark a queued or running scan failed with ``reason`` and audit it; None when it had
    already ended. The caller commits."""
    row = conn.execute(
        update(scans)
        .where(scans.c.id == scan_id, scans.c.status.in_(ACTIVE_STATUSES))
        .values(status="failed", finished_at=func.now(), phase=None, error=reason[:2000])
        .returning(scans)
    ).one_or_none()
    if row is None:
        return None
    summary = summary_from_row(row)
    record_outcome(conn, summary, "failed")
    _cancel_jobs(conn, scan_id)
    return summary


def record_outcome(conn: Connection, summary: ScanSummary, outcome: str) -> None:
    """The second ``scan:run`` record of a scan: how it ended, on the requester's behalf."""
    with_findings = conn.execute(
        select(func.count())
        .select_from(scan_users)
        .where(scan_users.c.scan_id == summary.id, scan_users.c.worst_severity.is_not(None))
    ).scalar_one()
    details: dict[str, Any] = {
        "event": outcome,
        "scan_id": summary.id,
        "scope": summary.scope,
        "users_checked": summary.users_scanned,
        "users_total": summary.users_total,
        "users_with_findings": int(with_findings),
    }
    if summary.finished_at is not None:
        details["seconds"] = round((summary.finished_at - summary.started_at).total_seconds(), 1)
    if outcome == "failed":
        details["reason"] = summary.error
    if outcome == "cancelled":
        details["cancelled_by"] = summary.cancelled_by
    audit.record(
        conn,
        actor_email=summary.requested_by or "unknown",
        actor_role=Role.ADMIN,
        action=SCAN_ACTION,
        details=details,
    )


def _cancel_jobs(conn: Connection, scan_id: int) -> None:
    """Cancel the scan's waiting jobs and ask its running ones to stop (they would find
    the scan ended and do nothing anyway; this only spares the queue)."""
    with ops_search_path(conn):
        conn.execute(
            text(
                "SELECT procrastinate_cancel_job_v1(id, true, false) FROM procrastinate_jobs "
                "WHERE status IN ('todo', 'doing') AND (args->>'scan_id') = :scan_id"
            ),
            {"scan_id": str(scan_id)},
        )
