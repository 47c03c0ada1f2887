"""One batch of a scan's users: gather their facts, diagnose them, store them together.

``check_batch`` is the body of a ``scan.check_batch`` job (and of the foreground scan's
loop). It reads what it needs from the databases, lets go of them, asks Replicate for
every user on ``concurrency`` threads (sharing the gateway's rate limits and retries),
then stores the whole batch in one short transaction (``commit_batch``): each user's
findings with their ``scan_users`` row, the scan's counters, and, with the last batch,
the scan's end. A user whose facts cannot be fetched, or whose check fails in any way,
gets SCAN_ERROR; the others are unaffected. A batch runs at most once per scan: a job
retried after its worker died finds it done (or the scan ended) and stores nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Connection, Engine, func, select, update

from core.drift import Finding, diagnose, scan_error
from core.drift.codes import CODE_ORDER
from core.drift.facts import AppRow
from core.errors import DataRejected, ReplicateError
from core.gateway.gateway import ReplicateGateway
from core.gateway.limits import Outcome, map_bounded
from core.jobs.context import JobServices
from core.scan.datasets import dataset_gaps
from core.scan.facts import LedgerHealth, gather_facts, ledger_problem
from core.scan.heartbeat import Heartbeat
from core.scan.record import lock_scan, record_users
from core.scan.request import record_outcome
from core.scan.scope import Page, given_ids
from core.scan.store import summary_from_row
from core.scan.tables import scan_batches, scan_zips, scans
from core.scan.values import UserScan

log = logging.getLogger(__name__)

UNKNOWN_USER = "no user with this id in the app's database"


@dataclass(frozen=True)
class BatchWork:
    """What a batch job reads before it calls Replicate."""

    user_ids: tuple[str, ...]
    health: LedgerHealth
    concurrency: int
    failed_zips: Mapping[str, str]  # url -> why this scan could not read its photos


def check_batch(services: JobServices, scan_id: int, batch_no: int) -> list[UserScan] | None:
    """Check and store batch ``batch_no`` of scan ``scan_id``; its users' results, or None
    when there was nothing to do (the scan ended, or the batch was already stored)."""
    work = _read_work(services.ops_engine, scan_id, batch_no)
    if work is None:
        return None
    with services.app_engine.connect() as conn:
        page = given_ids(conn, work.user_ids)
    skipped = _skipped(services.ops_engine, page, work.failed_zips)
    with Heartbeat(services.ops_engine, scan_id=scan_id, every=services.heartbeat_seconds):
        results = check_users(
            page,
            gateway=services.gateway,
            ops_engine=services.ops_engine,
            health=work.health,
            skipped=skipped,
            concurrency=work.concurrency,
        )
    stored = commit_batch(services.ops_engine, scan_id, batch_no, results)
    return results if stored else None


def _read_work(ops_engine: Engine, scan_id: int, batch_no: int) -> BatchWork | None:
    with ops_engine.connect() as conn:
        scan = conn.execute(
            select(scans.c.status, scans.c.ledger_health, scans.c.options).where(
                scans.c.id == scan_id
            )
        ).one_or_none()
        batch = conn.execute(
            select(scan_batches.c.user_ids, scan_batches.c.zip_urls, scan_batches.c.state).where(
                scan_batches.c.scan_id == scan_id, scan_batches.c.batch_no == batch_no
            )
        ).one_or_none()
        if scan is None or scan.status != "running" or batch is None or batch.state == "done":
            return None
        failed = (
            dict(
                conn.execute(
                    select(scan_zips.c.url, scan_zips.c.error).where(
                        scan_zips.c.scan_id == scan_id,
                        scan_zips.c.state == "failed",
                        scan_zips.c.url.in_(list(batch.zip_urls)),
                    )
                )
                .tuples()
                .all()
            )
            if batch.zip_urls
            else {}
        )
    options = scan.options or {}
    return BatchWork(
        tuple(batch.user_ids),
        LedgerHealth.from_json(scan.ledger_health),
        max(1, int(options.get("concurrency") or 8)),
        {url: error or "unknown error" for url, error in failed.items()},
    )


def _skipped(ops_engine: Engine, page: Page, failed: Mapping[str, str]) -> dict[str, str]:
    """user -> why their dataset checks were skipped (a ZIP they need failed this scan, or
    was rejected for good): their SCAN_ERROR note."""
    with ops_engine.connect() as conn:
        return dataset_gaps(
            conn, {row.user_id: row.replicate_version_id for row in page.rows}, failed
        )


def check_users(
    page: Page,
    *,
    gateway: ReplicateGateway,
    ops_engine: Engine,
    health: LedgerHealth,
    skipped: Mapping[str, str],
    concurrency: int,
) -> list[UserScan]:
    """Every user of ``page``, in its order: rows diagnosed on ``concurrency`` threads,
    ids without a row as healthy (never trained) or SCAN_ERROR (no such user)."""
    check = partial(
        _check_user, ops_engine=ops_engine, gateway=gateway, health=health, skipped=skipped
    )
    results = [
        _result(outcome) for outcome in map_bounded(check, page.rows, max_workers=concurrency)
    ]
    return results + without_rows(page)


def without_rows(page: Page) -> list[UserScan]:
    """Given ids without a model row: nothing to drift, or no such user."""
    return [UserScan(user_id, ()) for user_id in page.no_model] + [
        UserScan(user_id, (scan_error(user_id, UNKNOWN_USER),)) for user_id in page.unknown
    ]


def _check_user(
    row: AppRow,
    *,
    ops_engine: Engine,
    gateway: ReplicateGateway,
    health: LedgerHealth,
    skipped: Mapping[str, str],
) -> UserScan:
    """One user, on a worker thread: gather, vouch for the ledger, diagnose."""
    try:
        facts = gather_facts(row, ops_conn_factory=ops_engine.connect, gateway=gateway)
    except (ReplicateError, DataRejected) as exc:
        return UserScan(row.user_id, (scan_error(row.user_id, str(exc)),))
    problem = ledger_problem(facts, health)
    if problem is not None:
        return UserScan(row.user_id, (scan_error(row.user_id, problem),))
    findings = diagnose(facts)
    reason = skipped.get(row.user_id)
    if reason is not None:
        findings = _in_order((*findings, scan_error(row.user_id, reason)))
    return UserScan(row.user_id, findings)


def _result(outcome: Outcome[AppRow, UserScan]) -> UserScan:
    if outcome.value is not None:
        return outcome.value
    user_id = outcome.item.user_id
    error = outcome.error
    log.error("checking user %s failed", user_id, exc_info=error)
    message = (
        f"checking this user failed unexpectedly ({type(error).__name__}: {error}); "
        "the other users were checked"
    )
    return UserScan(user_id, (scan_error(user_id, message),))


def _in_order(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """The engine's order: most serious first, then the vocabulary's order."""
    return tuple(
        sorted(findings, key=lambda finding: (finding.severity.rank, CODE_ORDER[finding.code]))
    )


def commit_batch(
    ops_engine: Engine, scan_id: int, batch_no: int, results: Sequence[UserScan]
) -> bool:
    """Store a checked batch, count it, and end the scan with its last batch: one short
    transaction. False (nothing stored) when the scan ended meanwhile (cancelled, given
    up) or another run of this batch stored it first."""
    with ops_engine.begin() as conn:
        if lock_scan(conn, scan_id) != "running":
            return False
        claimed = conn.execute(
            update(scan_batches)
            .where(
                scan_batches.c.scan_id == scan_id,
                scan_batches.c.batch_no == batch_no,
                scan_batches.c.state != "done",
            )
            .values(state="done", finished_at=func.now())
            .returning(scan_batches.c.batch_no)
        ).one_or_none()
        if claimed is None:
            return False
        record_users(conn, scan_id, results)
        conn.execute(
            update(scans)
            .where(scans.c.id == scan_id)
            .values(batches_done=scans.c.batches_done + 1, heartbeat_at=func.now())
        )
        finish_if_done(conn, scan_id)
    return True


def finish_if_done(conn: Connection, scan_id: int) -> bool:
    """End the scan as finished when it is planned and every batch is stored (audited
    as its outcome); True if this call ended it. The caller holds the scan's row lock."""
    row = conn.execute(
        update(scans)
        .where(
            scans.c.id == scan_id,
            scans.c.status == "running",
            scans.c.planned,
            scans.c.batches_done >= scans.c.batches_total,
        )
        .values(status="finished", finished_at=func.now(), phase=None)
        .returning(scans)
    ).one_or_none()
    if row is None:
        return False
    record_outcome(conn, summary_from_row(row), "finished")
    return True
