"""Scans as jobs, with real worker processes on a real PostgreSQL and the sandbox:
one fleet scan at a time (by the database), the work shared and each ZIP read once, a
killed worker's scan given up after its heartbeat stops, cancel, and the schedule."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from core.audit import list_records
from core.errors import Conflict
from core.gateway.retry import RetryPolicy
from core.jobs.app import app
from core.scan import latest_findings, run_scan
from core.scan.request import ScanOptions, cancel_scan, request_scan
from core.scan.store import checked_users, scan_summary
from core.scan.tables import scan_findings, scan_users, scan_zips
from core.scan.values import ScanSummary
from core.tasks import attach_schedules
from tests.conftest import quick_gateway
from tests.jobs.conftest import ADMIN, HEARTBEAT_TIMEOUT_SECONDS, World
from tests.workers import Workers, wait_for

pytestmark = pytest.mark.timeout(240)


def _request(world: World, **options: Any) -> ScanSummary:
    """A background scan as the console asks for one, with the workers' heartbeat timeout."""
    with world.engine.begin() as conn:
        return request_scan(
            conn,
            ADMIN,
            ScanOptions.of(**options),
            background=True,
            stale_after=timedelta(seconds=HEARTBEAT_TIMEOUT_SECONDS),
        )


def _summary(world: World, scan_id: int) -> ScanSummary:
    with world.engine.connect() as conn:
        summary = scan_summary(conn, scan_id)
    assert summary is not None
    return summary


def _ended(world: World, scan_id: int) -> ScanSummary | None:
    summary = _summary(world, scan_id)
    return summary if not summary.is_active else None


def _downloads(world: World) -> Counter[str]:
    counts = httpx.get(f"{world.sandbox_url}/_sandbox/stats").json()["counts"]
    return Counter(
        {
            path: counts.get(f"GET /{path}", 0)
            for path in map(world.users.zip_path, world.users.zip_urls)
        }
    )


def _scan_jobs_open(world: World) -> int:
    with world.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM ops.procrastinate_jobs WHERE status IN "
                    "('todo', 'doing') AND (task_name LIKE 'scan.%' OR task_name LIKE 'dataset.%')"
                )
            ).scalar_one()
        )


def _events(world: World, scan_id: int) -> list[str]:
    with world.engine.connect() as conn:
        records = list_records(conn, limit=100)
    return [
        str((record.details or {}).get("event"))
        for record in reversed(records)
        if record.action == "scan:run" and (record.details or {}).get("scan_id") == scan_id
    ]


def test_a_background_scan_is_shared_by_two_workers_reads_each_zip_once_and_finds_what_the_foreground_finds(  # noqa: E501
    world: World, workers: Workers
) -> None:
    before = _downloads(world)
    scan = _request(world)
    assert (scan.status, scan.requested_by) == ("queued", ADMIN.email)
    first, second = workers.start(), workers.start()
    ended = wait_for(lambda: _ended(world, scan.id), timeout=180, what="the scan to end")
    assert (ended.status, ended.error) == ("finished", None), workers.logs()
    assert (ended.users_scanned, ended.users_total) == (6, 6)
    assert (ended.zips_done, ended.zips_total) == (12, 12)
    # Each ZIP downloaded exactly once for the scan, though two workers shared the work.
    assert _downloads(world) - before == Counter(
        {world.users.zip_path(url): 1 for url in world.users.zip_urls}
    )
    # The job that ended the scan is recorded as succeeded just after its transaction.
    wait_for(lambda: not _scan_jobs_open(world), timeout=30, what="the scan's jobs to be recorded")
    with world.engine.connect() as conn:
        jobs = dict(
            conn.execute(
                text(
                    "SELECT task_name, count(*) FROM ops.procrastinate_jobs "
                    "WHERE status = 'succeeded' GROUP BY task_name"
                )
            )
            .tuples()
            .all()
        )
        ran_on = conn.execute(
            text(
                "SELECT count(DISTINCT worker_id) FROM ops.procrastinate_jobs "
                "WHERE task_name = 'dataset.read_zip'"
            )
        ).scalar_one()
        background = latest_findings(conn, list(world.users.user_ids))
        zips = (
            conn.execute(
                select(scan_zips.c.state, func.count())
                .where(scan_zips.c.scan_id == scan.id)
                .group_by(scan_zips.c.state)
            )
            .tuples()
            .all()
        )
    assert jobs["scan.plan"] == 1 and jobs["dataset.read_zip"] == 12
    assert jobs["scan.check_batch"] >= 1
    assert dict(zips) == {"done": 12}
    assert first.poll() is None and second.poll() is None  # both still serving
    assert ran_on >= 1
    with_stale = {
        user_id
        for user_id, found in background.items()
        if "STALE_VERSION" in {finding.code for finding in found}
    }
    assert with_stale == {world.users.stale_user}
    assert _events(world, scan.id) == ["requested", "finished"]
    # The workers said what they did, but no request URL (httpx logs each one at INFO).
    logged = workers.full_logs()
    assert "worker starting" in logged and "HTTP Request:" not in logged

    gateway = quick_gateway(world.sandbox_url, policy=RetryPolicy(total_seconds=15))
    try:
        foreground = run_scan(
            app_engine=world.engine,
            ops_engine=world.engine,
            gateway=gateway,
            actor=ADMIN,
        )
    finally:
        gateway.close()
    assert {user.user_id: user.findings for user in foreground.users} == background


def test_two_requests_at_the_same_moment_make_one_scan(world: World) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def ask() -> None:
        barrier.wait()
        try:
            outcomes.append(_request(world))
        except Conflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    scans = [item for item in outcomes if isinstance(item, ScanSummary)]
    refused = [item for item in outcomes if isinstance(item, Conflict)]
    assert len(scans) == 1 and len(refused) == 1, outcomes
    assert f"Fleet scan #{scans[0].id}, requested by {ADMIN.email}" in str(refused[0])
    assert "is queued, waiting for a worker" in str(refused[0])
    with world.engine.connect() as conn:
        queued = conn.execute(
            text("SELECT count(*) FROM ops.procrastinate_jobs WHERE task_name = 'scan.plan'")
        ).scalar_one()
    assert queued == 1
    # A scan of some users is not a fleet scan: it may run beside it.
    assert _request(world, user_ids=[world.users.stale_user]).scope == "users"


def test_a_killed_worker_leaves_nothing_half_written_and_its_scan_is_given_up(
    world: World, workers: Workers
) -> None:
    # Slow Replicate down so the kill lands while users are being checked.
    httpx.post(
        f"{world.sandbox_url}/_sandbox/faults", json={"latency_ms": 700, "path": "^/v1/models/"}
    ).raise_for_status()
    scan = _request(world, with_datasets=False, concurrency=1)
    worker = workers.start(concurrency=1)
    wait_for(
        lambda: (
            _summary(world, scan.id).phase == "check" or _summary(world, scan.id).users_scanned > 0
        ),
        timeout=60,
        what="the scan to check users",
    )
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    killed = _summary(world, scan.id)
    assert killed.status == "running" and killed.users_scanned < killed.users_total
    httpx.delete(f"{world.sandbox_url}/_sandbox/faults").raise_for_status()

    # Nobody beats for it any more: once the timeout passes, the next request gives it up.
    wait_for(
        lambda: _stale(world, scan.id),
        timeout=HEARTBEAT_TIMEOUT_SECONDS + 20,
        what="the heartbeat to go stale",
        every=0.5,
    )
    second = _request(world, with_datasets=False)
    given_up = _summary(world, scan.id)
    assert given_up.status == "failed"
    assert "no heartbeat from any worker" in (given_up.error or "")
    assert _events(world, scan.id) == ["requested", "failed"]
    with world.engine.connect() as conn:
        stored = conn.execute(
            select(func.count()).select_from(scan_users).where(scan_users.c.scan_id == scan.id)
        ).scalar_one()
        # Every stored user has all their findings: batches are stored whole.
        lopsided = conn.execute(
            text(
                "SELECT count(*) FROM ops.scan_users u WHERE u.scan_id = :id AND u.finding_count"
                " <> (SELECT count(*) FROM ops.scan_findings f WHERE f.scan_id = u.scan_id"
                " AND f.user_id = u.user_id)"
            ),
            {"id": scan.id},
        ).scalar_one()
    assert stored == given_up.users_scanned and lopsided == 0

    workers.start()
    ended = wait_for(lambda: _ended(world, second.id), timeout=120, what="the new scan to end")
    assert ended.status == "finished", workers.logs()
    assert ended.users_scanned == ended.users_total == 6
    assert _summary(world, scan.id).status == "failed"  # its leftover jobs did nothing


def _stale(world: World, scan_id: int) -> bool:
    with world.engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT heartbeat_at < now() - make_interval(secs => :secs) FROM ops.scans "
                    "WHERE id = :id"
                ),
                {"secs": HEARTBEAT_TIMEOUT_SECONDS, "id": scan_id},
            ).scalar_one()
        )


def test_cancel_stops_a_scan_and_keeps_what_it_stored(world: World, workers: Workers) -> None:
    httpx.post(
        f"{world.sandbox_url}/_sandbox/faults", json={"latency_ms": 400, "path": "^/v1/models/"}
    ).raise_for_status()
    scan = _request(world, with_datasets=False, concurrency=1)
    workers.start(concurrency=1)
    wait_for(
        lambda: _summary(world, scan.id).users_scanned > 0,
        timeout=90,
        what="a first batch to be stored",
    )
    with world.engine.begin() as conn:
        cancelled = cancel_scan(conn, ADMIN, scan.id)
    assert (cancelled.status, cancelled.cancelled_by) == ("cancelled", ADMIN.email)
    with (
        pytest.raises(Conflict, match=r"is not running any more \(cancelled\)"),
        world.engine.begin() as conn,
    ):
        cancel_scan(conn, ADMIN, scan.id)
    httpx.delete(f"{world.sandbox_url}/_sandbox/faults").raise_for_status()
    wait_for(lambda: _no_jobs_left(world, scan.id), timeout=60, what="the scan's jobs to stop")
    final = _summary(world, scan.id)
    assert final.status == "cancelled" and 0 < final.users_scanned < 6
    with world.engine.connect() as conn:
        kept = checked_users(conn, list(world.users.user_ids))
        stored = set(
            conn.execute(
                select(scan_users.c.user_id).where(scan_users.c.scan_id == scan.id)
            ).scalars()
        )
        findings = conn.execute(
            select(func.count())
            .select_from(scan_findings)
            .where(scan_findings.c.scan_id == scan.id)
        ).scalar_one()
        records = [record.action for record in list_records(conn, limit=20)]
    assert kept == stored and len(stored) == final.users_scanned
    assert findings >= 1  # the stale user is in the first batch (ids in order)
    assert "scan:cancel" in records
    assert _events(world, scan.id) == ["requested", "cancelled"]


def _no_jobs_left(world: World, scan_id: int) -> bool:
    with world.engine.connect() as conn:
        left: int = conn.execute(
            text(
                "SELECT count(*) FROM ops.procrastinate_jobs WHERE status IN ('todo', 'doing') "
                "AND args->>'scan_id' = :id"
            ),
            {"id": str(scan_id)},
        ).scalar_one()
    return left == 0


@pytest.fixture
def schedules_put_back() -> Iterator[None]:
    """attach_schedules registers periodic tasks on the process-wide procrastinate app:
    what this process had before is put back after the test."""
    registered = app.periodic_registry.periodic_tasks
    saved = dict(registered)
    yield
    registered.clear()
    registered.update(saved)


@pytest.mark.usefixtures("schedules_put_back")
def test_the_schedule_queues_a_fleet_scan(world: World, workers: Workers) -> None:
    assert {name.split(" ")[0] for name in attach_schedules("0 3 * * *")} <= {
        "maintenance.tick",
        "scan.nightly",
    }
    # Every two seconds (a 6th cron field is seconds): the worker defers it on its own.
    workers.start(SCAN_SCHEDULE="* * * * * */2")
    scheduled = wait_for(lambda: _scheduled_scan(world), timeout=60, what="a scheduled scan")
    assert scheduled.scope == "all"
    ended = wait_for(
        lambda: _ended(world, scheduled.id), timeout=120, what="the scheduled scan to end"
    )
    assert ended.status == "finished", workers.logs()


def _scheduled_scan(world: World) -> ScanSummary | None:
    with world.engine.connect() as conn:
        scan_id = conn.execute(
            text("SELECT min(id) FROM ops.scans WHERE requested_by = 'schedule@sselfie-console'")
        ).scalar_one()
        return scan_summary(conn, scan_id) if scan_id is not None else None
