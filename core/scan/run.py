"""The fleet scan in the foreground: every user in scope through the drift engine, here
and now, stored in schema ``ops`` exactly as a background scan stores it.

``run_scan`` (``python -m core.scan`` without ``--background``, tests) requests the scan
(``core.scan.request``: the admin check, the one-fleet-scan guard, the audit record) for
the staff member given, already running, then runs the background scan's own steps in
this process instead of deferring them:

1. ``start_plan``: sync the training ledger once (no connection held while Replicate
   answers); a failed listing is not fatal, see ``core.scan.plan``;
2. per page of users (``plan_page``): read the photos of the ZIPs their dataset checks
   need and the cache lacks (``DATASET_WORKERS`` at a time, each committed as measured;
   skipped with ``with_datasets=False``), then check each batch (``check_batch``:
   ``concurrency`` threads, the shared rate limits and retries, one transaction per
   batch). A user whose facts cannot be fetched, or whose check fails in any way, gets
   SCAN_ERROR; the others are unaffected;
3. ``end_plan`` ends it as finished. If anything outside that per-user isolation breaks
   (the database, the caller's ``progress``), the scan is marked failed with the reason
   and the error re-raised. When what broke is the database itself, marking the scan
   failed is tried again for up to ``database_wait_seconds`` (a scan left ``running``
   blocks the next fleet scan until its heartbeat is ``stale_after`` old), and the error
   becomes ``DatabaseUnavailable``, saying which of the two happened.

``progress(done, total)`` is called on the calling thread only, between batches:
Streamlit elements cannot be updated from worker threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from core.db import database_problem
from core.errors import Conflict, DashboardError, DatabaseUnavailable
from core.gateway.gateway import ReplicateGateway
from core.imaging.faces import FaceReader
from core.jobs.context import JobServices
from core.roles import Actor
from core.scan.batch import check_batch
from core.scan.heartbeat import Heartbeat, beat_seconds
from core.scan.plan import end_plan, plan_page, start_plan
from core.scan.request import DEFAULT_STALE_AFTER, ScanOptions, abandon_scan, request_scan
from core.scan.store import scan_summary
from core.scan.values import ScanResult, UserScan
from core.scan.zips import ensure_zips_inline

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
# ZIPs downloaded or read at once (each is held in memory while read).
DATASET_WORKERS = 2
# While the database is away, how often to try again to mark the scan failed.
RETRY_GIVE_UP_SECONDS = 1.0


def run_scan(
    *,
    app_engine: Engine,
    ops_engine: Engine,
    gateway: ReplicateGateway,
    actor: Actor,
    user_ids: Sequence[str] | None = None,
    concurrency: int = 8,
    face_reader: FaceReader | None = None,
    with_datasets: bool = True,
    recheck_datasets: bool = False,
    progress: Progress | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    via: str = "cli",
    database_wait_seconds: float = 0.0,
) -> ScanResult:
    """Scan ``user_ids`` (default: every user with a ``user_models`` row) now, in this
    process, as ``actor`` (who must be an admin: ``PermissionDenied`` otherwise); see the
    module docstring. Returns every user's findings; raises Conflict while another fleet
    scan is queued or running, ``DatabaseUnavailable`` when the database went away
    mid-scan, and otherwise re-raises whatever made the scan fail (it is then recorded as
    ``failed``)."""
    options = ScanOptions.of(
        user_ids,
        with_datasets=with_datasets,
        concurrency=concurrency,
        recheck_datasets=recheck_datasets,
    )
    with ops_engine.begin() as conn:
        scan_id = request_scan(
            conn, actor, options, background=False, stale_after=stale_after, via=via
        ).id
    services = JobServices(
        app_engine,
        ops_engine,
        gateway,
        _ReaderOnce(face_reader),
        heartbeat_seconds=beat_seconds(stale_after.total_seconds()),
    )
    try:
        with Heartbeat(ops_engine, scan_id=scan_id, every=services.heartbeat_seconds):
            users = _run(services, scan_id, progress or (lambda done, total: None))
    except BaseException as exc:
        away = database_away(exc)
        if away is not None and database_wait_seconds > 0:
            log.warning(
                "the database stopped answering mid-scan; trying for up to %.0f s to mark "
                "scan #%s failed",
                database_wait_seconds,
                scan_id,
            )
        marked = _give_up(
            ops_engine,
            scan_id,
            describe_failure(exc),
            wait_seconds=database_wait_seconds if away is not None else 0.0,
        )
        if away is not None:
            raise DatabaseUnavailable(
                outage_message(scan_id, away, marked=marked, stale_after=stale_after)
            ) from exc
        raise
    with ops_engine.connect() as conn:
        summary = scan_summary(conn, scan_id)
    if summary is None or summary.status != "finished" or summary.finished_at is None:
        raise Conflict(
            f"Scan #{scan_id} did not finish: it was "
            f"{summary.status if summary else 'deleted'}"
            + (f" by {summary.cancelled_by}." if summary and summary.cancelled_by else ".")
        )
    return ScanResult(scan_id, tuple(users), summary.started_at, summary.finished_at)


def database_away(error: BaseException) -> str | None:
    """What the driver said when ``error`` means the database went away or does not
    answer (``core.db.database_problem`` decides), else None."""
    if isinstance(error, DBAPIError) and isinstance(database_problem(error), DatabaseUnavailable):
        detail = str(error.orig or error).strip().splitlines()
        return detail[0] if detail else type(error).__name__
    return None


def outage_message(scan_id: int, detail: str, *, marked: bool, stale_after: timedelta) -> str:
    """What a foreground scan that lost its database says (pure)."""
    said = f"The database is not answering ({detail}); "
    if marked:
        return said + (
            f"scan #{scan_id} was marked failed once it answered again. Scan again when the "
            "database is up."
        )
    return said + (
        f"scan #{scan_id} could not be marked failed and blocks new fleet scans until the "
        "workers (or the next scan request) give it up, once it has had no heartbeat for "
        f"SCAN_HEARTBEAT_TIMEOUT_SECONDS ({stale_after.total_seconds():.0f} s)."
    )


def _give_up(ops_engine: Engine, scan_id: int, reason: str, *, wait_seconds: float) -> bool:
    """Mark the scan failed; True once done, False when the database did not answer
    within ``wait_seconds`` (any other database error is raised)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with ops_engine.begin() as conn:
                abandon_scan(conn, scan_id, reason)
            return True
        except DBAPIError as exc:
            if database_away(exc) is None:
                raise
            if time.monotonic() >= deadline:
                return False
        time.sleep(RETRY_GIVE_UP_SECONDS)


def _run(services: JobServices, scan_id: int, progress: Progress) -> list[UserScan]:
    start = start_plan(services, scan_id)
    if start is None:
        return []
    progress(0, start.users_total)
    users: list[UserScan] = []
    for page in start.scope.pages(services.app_engine, start=start.cursor):
        planned = plan_page(services, start, page, defer_jobs=False)
        if planned is None:
            return users
        ensure_zips_inline(
            services,
            list(planned.zip_urls),
            max_workers=DATASET_WORKERS,
            recheck=start.options.recheck_datasets,
        )
        for number in sorted((*planned.ready, *planned.waiting)):
            checked = check_batch(services, scan_id, number)
            if checked is None:
                return users
            users += checked
            progress(len(users), start.users_total)
        if planned.stored:
            users += planned.stored
            progress(len(users), start.users_total)
    end_plan(services, scan_id, defer_jobs=False)
    return users


def describe_failure(error: BaseException) -> str:
    """A readable reason for a scan's failure, for the scan row and the audit log."""
    if isinstance(error, DashboardError):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C) before it finished"
    orig = getattr(error, "orig", None)
    detail = str(orig or error).strip().splitlines()
    first = detail[0] if detail else ""
    if type(error).__name__ in ("OperationalError", "InterfaceError"):
        return f"the database could not be reached: {first}"
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


class _ReaderOnce:
    """The caller's ``FaceReader``, or one loaded on first need (dlib: about a second)."""

    def __init__(self, reader: FaceReader | None) -> None:
        self._reader = reader

    def __call__(self) -> FaceReader:
        if self._reader is None:
            self._reader = FaceReader()
        return self._reader
