"""The fleet scan: every user in scope through the drift engine, stored in schema ``ops``.

``run_scan``:
1. counts the scope and commits a ``running`` row in ``ops.scans``;
2. syncs the training ledger once; if Replicate's listing fails the scan goes on, and
   the users the ledger can no longer vouch for get SCAN_ERROR with the reason
   (``core.scan.facts.ledger_problem``);
3. then a page of users at a time (read from the app's database in user id order): the
   dataset facts those users' checks need (``core.scan.datasets``; skipped with
   ``with_datasets=False``), then the users in batches through ``map_bounded`` on
   ``concurrency`` threads, all sharing the gateway's rate limits and retries: gather →
   diagnose → one transaction per batch (each user's findings with its ``scan_users``
   row). A user whose facts cannot be fetched, or whose check fails in any way, gets
   SCAN_ERROR; the others are unaffected;
4. marks the scan finished; if anything outside that per-user isolation breaks (the
   database, the caller's ``progress``), marks it failed with the error and re-raises.

``progress(done, total)`` is called on the calling thread only, between batches:
Streamlit elements cannot be updated from worker threads.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from sqlalchemy import Engine

from core.drift import Finding, diagnose, scan_error
from core.drift.codes import CODE_ORDER
from core.drift.facts import AppRow
from core.errors import DataRejected, ReplicateError
from core.faces import FaceReader
from core.gateway.gateway import ReplicateGateway
from core.gateway.limits import Outcome, map_bounded
from core.ledger.sync import sync_trainings
from core.scan.datasets import ensure_for_users
from core.scan.facts import LedgerHealth, gather_facts, ledger_problem
from core.scan.record import fail_scan, finish_scan, record_users, start_scan
from core.scan.scope import Page, Scope
from core.scan.values import ScanResult, UserScan

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
# A batch keeps every worker busy for ~BATCH_PER_WORKER users (so the wait for the
# batch's slowest user costs little), and is small enough for ~PROGRESS_STEPS updates.
BATCH_PER_WORKER = 20
PROGRESS_STEPS = 20
# How many explicit user ids ``ops.scans.options`` records verbatim.
OPTIONS_MAX_IDS = 1000
UNKNOWN_USER = "no user with this id in the app's database"


def run_scan(*, app_engine: Engine, ops_engine: Engine, gateway: ReplicateGateway,
             user_ids: Sequence[str] | None = None, concurrency: int = 8,
             face_reader: FaceReader | None = None, with_datasets: bool = True,
             requested_by: str | None = None,
             progress: Progress | None = None) -> ScanResult:
    """Scan ``user_ids`` (default: every user with a ``user_models`` row); see the module
    docstring. Returns every user's findings; raises only when the scan itself failed
    (it is then recorded as ``failed``)."""
    scope = Scope.of(user_ids)
    with app_engine.connect() as conn:
        total = scope.count(conn)
    with ops_engine.begin() as conn:
        scan_id, started_at = start_scan(
            conn, users_total=total, requested_by=requested_by,
            options=_options(scope, concurrency=concurrency, with_datasets=with_datasets))
    try:
        results = _scan(scan_id, scope, total, app_engine=app_engine, ops_engine=ops_engine,
                        gateway=gateway, concurrency=max(1, concurrency),
                        reader=_ReaderOnce(face_reader) if with_datasets else None,
                        progress=progress or (lambda done, total: None))
        with ops_engine.begin() as conn:
            finished_at = finish_scan(conn, scan_id)
    except BaseException as exc:
        _record_failure(ops_engine, scan_id, exc)
        raise
    return ScanResult(scan_id, tuple(results), started_at, finished_at)


def _scan(scan_id: int, scope: Scope, total: int, *, app_engine: Engine, ops_engine: Engine,
          gateway: ReplicateGateway, concurrency: int, reader: _ReaderOnce | None,
          progress: Progress) -> list[UserScan]:
    progress(0, total)
    health = _sync_ledger(app_engine, ops_engine, gateway)
    batch_size = max(concurrency, min(concurrency * BATCH_PER_WORKER,
                                      math.ceil(total / PROGRESS_STEPS)))
    results: list[UserScan] = []
    for page in scope.pages(app_engine):
        dataset_failures = ({} if reader is None else ensure_for_users(
            ops_engine, gateway, reader, [row.user_id for row in page.rows]))
        check = partial(_check_user, ops_engine=ops_engine, gateway=gateway, health=health,
                        dataset_failures=dataset_failures)
        for start in range(0, len(page.rows), batch_size):
            outcomes = map_bounded(check, page.rows[start:start + batch_size],
                                   max_workers=concurrency)
            batch = [_result(outcome) for outcome in outcomes]
            _store(ops_engine, scan_id, batch)
            results += batch
            progress(len(results), total)
        without_rows = _without_rows(page)
        if without_rows:
            _store(ops_engine, scan_id, without_rows)
            results += without_rows
            progress(len(results), total)
    return results


def _check_user(row: AppRow, *, ops_engine: Engine, gateway: ReplicateGateway,
                health: LedgerHealth, dataset_failures: dict[str, str]) -> UserScan:
    """One user, on a worker thread: gather, vouch for the ledger, diagnose."""
    try:
        facts = gather_facts(row, ops_conn_factory=ops_engine.connect, gateway=gateway)
    except (ReplicateError, DataRejected) as exc:
        return UserScan(row.user_id, (scan_error(row.user_id, str(exc)),))
    problem = ledger_problem(facts, health)
    if problem is not None:
        return UserScan(row.user_id, (scan_error(row.user_id, problem),))
    findings = diagnose(facts)
    skipped = dataset_failures.get(row.user_id)
    if skipped is not None:
        findings = _in_order((*findings, scan_error(row.user_id, skipped)))
    return UserScan(row.user_id, findings)


def _result(outcome: Outcome[AppRow, UserScan]) -> UserScan:
    if outcome.value is not None:
        return outcome.value
    user_id = outcome.item.user_id
    error = outcome.error
    log.error("checking user %s failed", user_id, exc_info=error)
    message = (f"checking this user failed unexpectedly ({type(error).__name__}: {error}); "
               "the other users were checked")
    return UserScan(user_id, (scan_error(user_id, message),))


def _without_rows(page: Page) -> list[UserScan]:
    """Given ids without a model row: nothing to drift, or no such user."""
    return ([UserScan(user_id, ()) for user_id in page.no_model]
            + [UserScan(user_id, (scan_error(user_id, UNKNOWN_USER),))
               for user_id in page.unknown])


def _in_order(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """The engine's order: most serious first, then the vocabulary's order."""
    return tuple(sorted(findings, key=lambda finding: (finding.severity.rank,
                                                       CODE_ORDER[finding.code])))


def _sync_ledger(app_engine: Engine, ops_engine: Engine,
                 gateway: ReplicateGateway) -> LedgerHealth:
    try:
        with ops_engine.begin() as ops, app_engine.connect() as app:
            report = sync_trainings(ops, gateway, app_conn=app)
    except (ReplicateError, DataRejected) as exc:
        log.warning("the ledger sync failed; scanning with the ledger as it was: %s", exc)
        return LedgerHealth(listing_error=str(exc))
    return LedgerHealth.from_report(report)


def _store(ops_engine: Engine, scan_id: int, batch: Sequence[UserScan]) -> None:
    with ops_engine.begin() as conn:
        record_users(conn, scan_id, batch)


def _record_failure(ops_engine: Engine, scan_id: int, exc: BaseException) -> None:
    try:
        with ops_engine.begin() as conn:
            fail_scan(conn, scan_id, f"{type(exc).__name__}: {exc}")
    except Exception:  # the database itself may be what broke; the original error wins
        log.exception("could not mark scan %s failed", scan_id)


def _options(scope: Scope, *, concurrency: int, with_datasets: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"scope": "all" if scope.is_everyone else "users",
                               "concurrency": concurrency, "with_datasets": with_datasets}
    if scope.user_ids is not None:
        options["user_count"] = len(scope.user_ids)
        if len(scope.user_ids) <= OPTIONS_MAX_IDS:
            options["user_ids"] = list(scope.user_ids)
    return options


class _ReaderOnce:
    """The caller's ``FaceReader``, or one loaded on first need (dlib: about a second)."""

    def __init__(self, reader: FaceReader | None) -> None:
        self._reader = reader

    def __call__(self) -> FaceReader:
        if self._reader is None:
            self._reader = FaceReader()
        return self._reader
