"""Planning a scan: sync the training history, then split the users into batches.

``plan_scan`` is the body of a ``scan.plan`` job; the foreground scan runs the same
steps with ``defer_jobs=False`` and does the work itself.

1. ``start_plan`` claims the scan (queued → running, phase ``sync``), syncs the ledger
   from Replicate with no connection held (a failed listing is not fatal: the users the
   ledger can no longer vouch for get SCAN_ERROR, see ``core.scan.facts``), counts the
   users and stores how the sync went for the batches (phase ``plan``).
2. ``plan_page``, one transaction per page of users (keyset order): the training ZIPs
   their dataset checks need and have not been measured become ``scan_zips`` rows and
   ``dataset.read_zip`` jobs (shared with any other scan waiting for them); the users
   become ``scan_batches``, each ready at once (a ``scan.check_batch`` job) or waiting
   for its ZIPs; ids without a model row are stored right away. The page's last user id
   is the plan's cursor, so a plan job retried after its worker died goes on from there.
3. ``end_plan``: phase ``check``; a ``scan.follow`` job releases waiting batches as their
   photos are read; the last batch ends the scan (``core.scan.batch``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from core.errors import DataRejected, ReplicateError
from core.jobs.app import Queue, TaskName, defer
from core.jobs.context import JobServices
from core.ledger.datasets import cached_urls
from core.ledger.sync import sync_ledger
from core.redaction import storable, stored_url
from core.scan.batch import finish_if_done, without_rows
from core.scan.datasets import needed_by_user, rejected_zips
from core.scan.facts import LedgerHealth
from core.scan.heartbeat import Heartbeat
from core.scan.record import lock_scan, record_users
from core.scan.request import ScanOptions
from core.scan.scope import Page, Scope
from core.scan.tables import scan_batches, scan_zips, scans
from core.scan.values import UserScan
from core.scan.zips import queue_zip_reads

log = logging.getLogger(__name__)

PHASE_SYNC = "sync"
PHASE_PLAN = "plan"
PHASE_CHECK = "check"
# A batch keeps each of its threads busy for ~BATCH_PER_WORKER users (so the wait for the
# batch's slowest user costs little), and is small enough for ~PROGRESS_STEPS updates.
BATCH_PER_WORKER = 20
PROGRESS_STEPS = 20


@dataclass(frozen=True)
class PlanStart:
    """A claimed scan, its ledger synced: what the pages are planned with."""

    scan_id: int
    scope: Scope
    options: ScanOptions
    cursor: str | None  # resume after this page (a retried plan job)
    users_total: int
    batch_size: int


@dataclass(frozen=True)
class PlannedPage:
    """What one page added: batches ready now, batches waiting, ZIPs to read."""

    ready: tuple[int, ...]
    waiting: tuple[int, ...]
    zip_urls: tuple[str, ...]  # ZIPs this scan now waits for that no earlier page named
    stored: tuple[UserScan, ...]  # ids without a model row, stored with the page


def batch_size(total: int, concurrency: int) -> int:
    """Users per batch (pure): see ``BATCH_PER_WORKER`` and ``PROGRESS_STEPS``."""
    return max(concurrency, min(concurrency * BATCH_PER_WORKER, math.ceil(total / PROGRESS_STEPS)))


def plan_scan(services: JobServices, scan_id: int) -> None:
    """The ``scan.plan`` job: plan the whole scan, deferring its batch and ZIP jobs."""
    start = start_plan(services, scan_id)
    if start is None:
        return
    with Heartbeat(services.ops_engine, scan_id=scan_id, every=services.heartbeat_seconds):
        for page in start.scope.pages(services.app_engine, start=start.cursor):
            if plan_page(services, start, page, defer_jobs=True) is None:
                return
        end_plan(services, scan_id, defer_jobs=True)


def start_plan(services: JobServices, scan_id: int) -> PlanStart | None:
    """Claim the scan and sync the ledger; None when the scan ended or is already
    planned (a job that ran twice)."""
    with services.ops_engine.begin() as conn:
        claimed = conn.execute(
            update(scans)
            .where(
                scans.c.id == scan_id,
                scans.c.status.in_(("queued", "running")),
                scans.c.planned.is_(False),
            )
            .values(
                status="running",
                phase=PHASE_SYNC,
                heartbeat_at=func.now(),
                picked_up_at=func.coalesce(scans.c.picked_up_at, func.now()),
            )
            .returning(scans.c.options, scans.c.plan_cursor, scans.c.ledger_health)
        ).one_or_none()
    if claimed is None:
        return None
    options = ScanOptions.from_json(claimed.options)
    if claimed.plan_cursor is not None and claimed.ledger_health is not None:
        health = LedgerHealth.from_json(claimed.ledger_health)  # resuming: synced already
    else:
        with Heartbeat(services.ops_engine, scan_id=scan_id, every=services.heartbeat_seconds):
            health = _sync(services)
    scope = Scope.of(options.user_ids)
    with services.app_engine.connect() as app:
        total = scope.count(app)
    with services.ops_engine.begin() as conn:
        if lock_scan(conn, scan_id) != "running":
            return None
        conn.execute(
            update(scans)
            .where(scans.c.id == scan_id)
            .values(
                phase=PHASE_PLAN,
                users_total=total,
                ledger_health=storable(health.to_json()),
                heartbeat_at=func.now(),
            )
        )
    return PlanStart(
        scan_id, scope, options, claimed.plan_cursor, total, batch_size(total, options.concurrency)
    )


def _sync(services: JobServices) -> LedgerHealth:
    try:
        report = sync_ledger(
            ops_engine=services.ops_engine, app_engine=services.app_engine, gateway=services.gateway
        )
    except (ReplicateError, DataRejected) as exc:
        log.warning("the ledger sync failed; scanning with the ledger as it was: %s", exc)
        return LedgerHealth(listing_error=str(exc))
    return LedgerHealth.from_report(report)


def plan_page(
    services: JobServices, start: PlanStart, page: Page, *, defer_jobs: bool
) -> PlannedPage | None:
    """Plan one page of users in one transaction; None when the scan ended meanwhile."""
    scan_id = start.scan_id
    with services.ops_engine.begin() as conn:
        if lock_scan(conn, scan_id) != "running":
            return None
        user_ids = [row.user_id for row in page.rows]
        versions = {row.user_id: row.replicate_version_id for row in page.rows}
        needs = needed_by_user(conn, versions) if start.options.with_datasets else {}
        urls = list(dict.fromkeys(url for needed in needs.values() for url in needed))
        recheck = start.options.recheck_datasets
        pending, new_urls, new_pending = _add_zips(conn, scan_id, urls, recheck=recheck)
        if defer_jobs:
            queue_zip_reads(conn, new_pending, recheck=recheck)
        first = conn.execute(
            select(scans.c.batches_total).where(scans.c.id == scan_id)
        ).scalar_one()
        ready: list[int] = []
        waiting: list[int] = []
        for offset, begin in enumerate(range(0, len(user_ids), start.batch_size)):
            members = user_ids[begin : begin + start.batch_size]
            zips = sorted(
                {url for user_id in members for url in needs.get(user_id, ()) if url in pending}
            )
            number = first + offset
            conn.execute(
                insert(scan_batches).values(
                    scan_id=scan_id,
                    batch_no=number,
                    user_ids=members,
                    zip_urls=[stored_url(url) for url in zips],
                    state="waiting" if zips else "queued",
                )
            )
            (waiting if zips else ready).append(number)
        if defer_jobs:
            for number in ready:
                defer(
                    conn, TaskName.CHECK_BATCH, queue=Queue.SCANS, scan_id=scan_id, batch_no=number
                )
        stored = without_rows(page)
        record_users(conn, scan_id, stored)
        conn.execute(
            update(scans)
            .where(scans.c.id == scan_id)
            .values(
                plan_cursor=page.cursor,
                heartbeat_at=func.now(),
                batches_total=scans.c.batches_total + len(ready) + len(waiting),
                zips_total=scans.c.zips_total + len(new_urls),
                zips_done=scans.c.zips_done + len(new_urls) - len(new_pending),
            )
        )
    return PlannedPage(tuple(ready), tuple(waiting), tuple(new_pending), tuple(stored))


def _add_zips(
    conn: Connection, scan_id: int, urls: Sequence[str], *, recheck: bool = False
) -> tuple[set[str], list[str], list[str]]:
    """Record the ZIPs this page needs; returns (every one still pending for this scan,
    the ones new to it, the new ones that must be read)."""
    if not urls:
        return set(), [], []
    known = dict(
        conn.execute(
            select(scan_zips.c.url, scan_zips.c.state).where(
                scan_zips.c.scan_id == scan_id, scan_zips.c.url.in_(list(urls))
            )
        )
        .tuples()
        .all()
    )
    cached = cached_urls(conn, urls)
    if recheck:  # rejected photos are read again: they may have been fixed since
        cached -= set(rejected_zips(conn, urls))
    new_urls = [url for url in urls if url not in known]
    if new_urls:
        conn.execute(
            pg_insert(scan_zips)
            .values(
                [
                    {
                        "scan_id": scan_id,
                        "url": stored_url(url),
                        "state": "done" if url in cached else "pending",
                    }
                    for url in new_urls
                ]
            )
            .on_conflict_do_nothing()
        )
    new_pending = [url for url in new_urls if url not in cached]
    pending = {url for url, state in known.items() if state == "pending"} | set(new_pending)
    return pending, new_urls, new_pending


def end_plan(services: JobServices, scan_id: int, *, defer_jobs: bool) -> None:
    """Every batch is known: phase ``check``; follow the waiting batches (jobs), or end
    the scan now if nothing is left."""
    with services.ops_engine.begin() as conn:
        if lock_scan(conn, scan_id) != "running":
            return
        conn.execute(
            update(scans)
            .where(scans.c.id == scan_id)
            .values(planned=True, phase=PHASE_CHECK, heartbeat_at=func.now())
        )
        waiting = conn.execute(
            select(func.count())
            .select_from(scan_batches)
            .where(scan_batches.c.scan_id == scan_id, scan_batches.c.state == "waiting")
        ).scalar_one()
        if defer_jobs and waiting:
            follow_later(conn, scan_id, seconds=0)
        finish_if_done(conn, scan_id)


def follow_later(conn: Connection, scan_id: int, *, seconds: float) -> None:
    """Defer the scan's ``scan.follow`` job (one waiting at a time)."""
    defer(
        conn,
        TaskName.FOLLOW_SCAN,
        queue=Queue.SCANS,
        queueing_lock=f"follow:{scan_id}",
        schedule_in_seconds=seconds or None,
        scan_id=scan_id,
    )
