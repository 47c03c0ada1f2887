"""The fleet scan in the foreground: every user in scope through the drift engine, here
and now, stored in schema ``ops`` exactly as a background scan stores it.

``run_scan`` (``python -m core.scan`` without ``--background``, tests) requests the scan
(``core.scan.request``: the one-fleet-scan guard, the audit record) already running,
then runs the background scan's own steps in this process instead of deferring them:

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
   and the error re-raised.

``progress(done, total)`` is called on the calling thread only, between batches:
Streamlit elements cannot be updated from worker threads.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import Engine

from core.errors import Conflict, DashboardError
from core.faces import FaceReader
from core.gateway.gateway import ReplicateGateway
from core.roles import Actor, Role
from core.scan.batch import check_batch
from core.scan.heartbeat import Heartbeat, beat_seconds
from core.scan.plan import end_plan, plan_page, start_plan
from core.scan.request import DEFAULT_STALE_AFTER, ScanOptions, abandon_scan, request_scan
from core.scan.services import ScanServices
from core.scan.store import scan_summary
from core.scan.values import ScanResult, UserScan
from core.scan.zips import ensure_zips_inline

Progress = Callable[[int, int], None]
# ZIPs downloaded or read at once (each is held in memory while read).
DATASET_WORKERS = 2


def operator_email() -> str:
    """Who runs a command-line scan: the login on this machine, as an audit identity."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "operator"
    return f"{user}@{socket.gethostname() or 'localhost'}"


def run_scan(
    *,
    app_engine: Engine,
    ops_engine: Engine,
    gateway: ReplicateGateway,
    user_ids: Sequence[str] | None = None,
    concurrency: int = 8,
    face_reader: FaceReader | None = None,
    with_datasets: bool = True,
    recheck_datasets: bool = False,
    requested_by: str | None = None,
    progress: Progress | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    via: str = "cli",
) -> ScanResult:
    """Scan ``user_ids`` (default: every user with a ``user_models`` row) now, in this
    process; see the module docstring. Returns every user's findings; raises Conflict
    while another fleet scan is queued or running, and re-raises whatever made the scan
    fail (it is then recorded as ``failed``)."""
    actor = Actor(requested_by or operator_email(), Role.ADMIN)
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
    services = ScanServices(
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
        with ops_engine.begin() as conn:
            abandon_scan(conn, scan_id, describe_failure(exc))
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


def _run(services: ScanServices, scan_id: int, progress: Progress) -> list[UserScan]:
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
