"""The database going away under running work, for real: a PostgreSQL of this module's own
(the session's server is shared by every other test, so it cannot be stopped), stopped
mid-scan with ``pg_ctl stop -m fast`` (``core.db.stop_embedded_postgres``) and started
again on the same data directory, so the socket and the URL stay the same.

- A worker process outlives the outage: it says so once, waits, reconnects by itself, and
  the jobs its stopped loop left ``doing`` are run again by the maintenance task, so the
  same process finishes the scan. SIGTERM still stops it at once while it waits.
- The foreground scan (``python -m core.scan``) stops with one ``error:`` line and no
  traceback, and its scan does not stay ``running`` to block the next one.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from procrastinate.exceptions import ConnectorException
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import OperationalError

from core.config import Mode
from core.db import (
    create_app_tables,
    embedded_postgres_url,
    make_engine,
    stop_embedded_postgres,
    upgrade_ops,
)
from core.jobs.worker import connection_error, reconnect_delays
from core.sandbox.server import RunningSandbox
from core.scan.request import ScanOptions, request_scan
from core.scan.store import scan_summary
from core.scan.tables import scan_users
from core.scan.values import ScanSummary
from core.schema import staff
from tests.conftest import empty_sandbox
from tests.jobs.conftest import ADMIN, World
from tests.jobs.world import build_world
from tests.user_world import gateway_on
from tests.workers import ROOT, Workers, wait_for

OUTAGE_SECONDS = 20.0
# High enough that the outage itself never gives the scan up (its heartbeat stops while
# the database is away): the scan must be finished, not reaped.
PATIENT_HEARTBEAT = "600"
# Replicate answers slowly, so a scan is still checking users when the database stops.
SLOW_MODELS = {"latency_ms": 700, "path": "^/v1/models/"}


@dataclass
class OwnServer:
    """An embedded PostgreSQL of the test's own, stopped and started for real."""

    data_dir: Path
    url: str

    def stop(self) -> None:
        assert stop_embedded_postgres(self.data_dir), "the test's PostgreSQL was not running"

    def start(self) -> None:
        assert embedded_postgres_url(self.data_dir) == self.url, "the URL changed on restart"


@dataclass
class OutageWorld:
    world: World
    server: OwnServer


@pytest.fixture
def outage_world(sandbox_server: RunningSandbox, tmp_path: Path) -> Iterator[OutageWorld]:
    """The jobs world (six users trained on the sandbox) in a PostgreSQL of its own.

    Its data dir is outside pytest's basetemp: another pytest session starting meanwhile
    resets /tmp/pytest-of-<user> to 0700, which the server's own user then cannot enter.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="sselfie-outage-"))
    url = embedded_postgres_url(data_dir)
    engine = make_engine(url)
    base_url = empty_sandbox(sandbox_server).base_url
    try:
        create_app_tables(engine, mode=Mode.DEMO)
        upgrade_ops(url)
        with gateway_on(base_url) as gateway:
            users = build_world(engine, gateway, base_url)
        with engine.begin() as conn:
            conn.execute(insert(staff).values(email=ADMIN.email, role=ADMIN.role.value))
        yield OutageWorld(World(url, engine, users, base_url, tmp_path), OwnServer(data_dir, url))
    finally:
        engine.dispose()
        httpx.delete(f"{base_url}/_sandbox/faults").raise_for_status()
        stop_embedded_postgres(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def outage_workers(outage_world: OutageWorld, request: pytest.FixtureRequest) -> Iterator[Workers]:
    started = Workers(outage_world.world.env, outage_world.world.tmp)
    yield started
    started.stop_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        sys.stderr.write(started.logs())


def test_the_waits_double_up_to_30_s_with_a_little_jitter() -> None:
    delays = reconnect_delays(rng=random.Random(7))
    waits = [next(delays) for _ in range(8)]
    for wait, plain in zip(waits, (1, 2, 4, 8, 16, 30, 30, 30), strict=True):
        assert 0.9 * plain <= wait <= 1.1 * plain
    assert len(set(waits[-3:])) == 3  # jittered: workers do not knock in step


def test_only_a_lost_connection_is_waited_out() -> None:
    def wrapped(cause: BaseException) -> ConnectorException:
        try:
            raise ConnectorException from cause
        except ConnectorException as exc:
            return exc

    refused = psycopg.OperationalError("connection failed: No such file or directory")
    assert connection_error(wrapped(refused)) is refused
    assert connection_error(wrapped(psycopg.errors.UndefinedTable("no such table"))) is None
    assert connection_error(RuntimeError("a bug")) is None


def _summary(world: World, scan_id: int) -> ScanSummary:
    with world.engine.connect() as conn:
        summary = scan_summary(conn, scan_id)
    assert summary is not None
    return summary


def _answers(world: World, scan_id: int) -> ScanSummary | None:
    """The scan's row, or None while the database does not answer."""
    try:
        return _summary(world, scan_id)
    except OperationalError:
        return None


def _slow_replicate(world: World, *, on: bool) -> None:
    faults = f"{world.sandbox_url}/_sandbox/faults"
    if on:
        httpx.post(faults, json=SLOW_MODELS).raise_for_status()
    else:
        httpx.delete(faults).raise_for_status()


@pytest.mark.timeout(240)
def test_a_worker_waits_out_a_database_outage_and_the_same_process_finishes_the_scan(
    outage_world: OutageWorld, outage_workers: Workers
) -> None:
    world, server = outage_world.world, outage_world.server
    _slow_replicate(world, on=True)
    with world.engine.begin() as conn:
        scan = request_scan(
            conn,
            ADMIN,
            ScanOptions.of(with_datasets=False, concurrency=1),
            background=True,
            stale_after=timedelta(seconds=int(PATIENT_HEARTBEAT)),
        )
    worker = outage_workers.start(concurrency=2, SCAN_HEARTBEAT_TIMEOUT_SECONDS=PATIENT_HEARTBEAT)
    wait_for(
        lambda: 0 < _summary(world, scan.id).users_scanned < 5,
        timeout=90,
        what="the scan to be part-way through its users",
    )
    server.stop()
    stopped_at = time.monotonic()
    _slow_replicate(world, on=False)
    # Its loop stops once the running jobs have ended; recording how they ended, and its
    # own end, wait up to CONNECT_TIMEOUT_SECONDS (5 s) each.
    wait_for(
        lambda: "database unavailable" in outage_workers.full_logs(),
        timeout=OUTAGE_SECONDS - 1,
        what="the worker to notice the outage",
    )
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
    assert worker.poll() is None, outage_workers.logs()
    server.start()
    restarted_at = time.monotonic()

    ended = wait_for(
        lambda: (summary := _answers(world, scan.id)) is not None and not summary.is_active,
        timeout=150,
        what="the scan to end after the outage",
        every=0.5,
    )
    seconds = time.monotonic() - restarted_at
    final = _summary(world, scan.id)
    logged = outage_workers.full_logs()
    assert ended and (final.status, final.error) == ("finished", None), logged
    assert final.users_scanned == final.users_total == 6
    with world.engine.connect() as conn:
        checked = set(
            conn.execute(select(scan_users.c.user_id).where(scan_users.c.scan_id == scan.id))
            .scalars()
            .all()
        )
    assert checked == set(world.users.user_ids)
    # The same process did it all: never exited, said the outage once and its end once.
    assert worker.poll() is None and len(outage_workers.started) == 1
    assert logged.count("database unavailable") == 1, logged
    assert logged.count("database available again") == 1, logged
    assert (
        "Traceback"
        not in logged.split("database unavailable", 1)[1].split("database available again", 1)[0]
    ), logged
    # The jobs its stopped loop left `doing` (their end never recorded) were run again:
    # started twice, and every batch of the scan ended succeeded.
    assert "left running go back to the queue" in logged, logged
    starts = _batch_job_starts(world)
    assert {status for status, _ in starts.values()} == {"succeeded"}, starts
    assert any(count >= 2 for _, count in starts.values()), starts
    print(f"outage {OUTAGE_SECONDS:.0f} s; restart to the scan's end {seconds:.1f} s")

    # While it waits for the database, SIGTERM stops it, exit status 0: it does not wait
    # for the database to come back (the server stays stopped until it has exited).
    server.stop()
    wait_for(
        lambda: outage_workers.full_logs().count("database unavailable") == 2,
        timeout=15,
        what="the worker to notice the second outage",
    )
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, outage_workers.logs()
    server.start()


@pytest.mark.timeout(180)
def test_the_foreground_scan_says_one_line_when_the_database_goes_away_and_fails_its_scan(
    outage_world: OutageWorld,
) -> None:
    """The database is stopped for real (``pg_ctl stop -m fast``: the server terminates
    every session, then the socket is gone), which the scan sees as SQLAlchemy's
    OperationalError; it comes back within the command's bounded wait."""
    world, server = outage_world.world, outage_world.server
    _slow_replicate(world, on=True)
    command = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core.scan",
            "--no-datasets",
            "--concurrency",
            "1",
            "--actor",
            ADMIN.email,
        ],
        cwd=ROOT,
        env=world.env(SCAN_HEARTBEAT_TIMEOUT_SECONDS=PATIENT_HEARTBEAT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        scan_id = wait_for(
            lambda: _running_scan(world),
            timeout=60,
            what="the command's scan to be checking users",
        )
        server.stop()
        _slow_replicate(world, on=False)
        time.sleep(3)
        server.start()
        out, err = command.communicate(timeout=90)
    finally:
        if command.poll() is None:
            command.kill()
            command.communicate(timeout=10)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert command.returncode == 1, err
    assert len(errors) == 1, err
    assert "Traceback" not in err and out == "", err
    assert "the database is not answering" in errors[0].lower(), errors
    assert f"scan #{scan_id} was marked failed" in errors[0], errors
    failed = _summary(world, scan_id)
    assert failed.status == "failed" and "database" in (failed.error or ""), failed


def _batch_job_starts(world: World) -> dict[int, tuple[str, int]]:
    """Each of the scan's batch jobs: (status, how often a worker started it)."""
    with world.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT j.id, j.status, count(*) FILTER (WHERE e.type = 'started') "
                "FROM ops.procrastinate_jobs j JOIN ops.procrastinate_events e ON e.job_id = j.id "
                "WHERE j.task_name = 'scan.check_batch' GROUP BY j.id, j.status"
            )
        ).all()
    return {int(job_id): (str(status), int(count)) for job_id, status, count in rows}


def _running_scan(world: World) -> int | None:
    """The id of a scan that has checked at least one user and is still running."""
    with world.engine.connect() as conn:
        row = conn.execute(
            select(func.max(scan_users.c.scan_id)).where(scan_users.c.scan_id.isnot(None))
        ).scalar_one()
    if row is None:
        return None
    summary = _summary(world, int(row))
    return summary.id if summary.is_active else None
