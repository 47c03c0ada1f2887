"""Benchmark figures of the job queue (registered in ``core.bench``; nothing asserts).

``dataset_facts_workers``: the demo world's training ZIPs read as ``dataset.read_zip``
jobs by one worker process, then (cache emptied) by two, each taking one job at a time
from the ``datasets`` queue: photos per second for each, and their ratio: what a second
machine (or core) adds to the photo reading of a first LIVE scan.

Workers run as ``python -m core.worker`` in LIVE mode, exactly as deployed, against a
temporary embedded PostgreSQL and a standalone sandbox. Timing starts when the jobs are
queued to workers already waiting, and ends when the last one ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text

from core.config import Mode
from core.db import create_app_tables, embedded_postgres_url, make_engine, upgrade_ops
from core.db import stop_embedded_postgres as stop_postgres
from core.demo import seed_demo_world
from core.detached import PROJECT_DIR
from core.gateway.gateway import ReplicateGateway, build_client
from core.gateway.limits import RateLimits
from core.gateway.retry import RetryPolicy
from core.ledger.tables import dataset_facts
from core.scan.zips import queue_zip_reads

BENCH_TOKEN = "r8_bench_workers"
WORKER_START_SECONDS = 60.0
JOBS_TIMEOUT_SECONDS = 1800.0


@contextmanager
def temporary_database(*, pool_size: int = 8) -> Iterator[tuple[Engine, str]]:
    """An embedded PostgreSQL of its own, the app's tables and schema ops (with the
    queue) in place; stopped and deleted afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        url = embedded_postgres_url(tmp)
        engine = make_engine(url, pool_size=pool_size, max_overflow=8)
        try:
            create_app_tables(engine, mode=Mode.DEMO)
            upgrade_ops(url)
            yield engine, url
        finally:
            engine.dispose()
            stop_postgres(tmp)


@contextmanager
def worker_processes(
    count: int,
    *,
    database_url: str,
    sandbox_url: str,
    data_dir: Path,
    engine: Engine,
    arguments: Sequence[str] = (),
    settings: dict[str, str] | None = None,
) -> Iterator[list[int]]:
    """``count`` workers (``python -m core.worker ...arguments``), LIVE against the given
    database and sandbox, started and registered before the block; stopped after it."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name
        not in (
            "DATABASE_URL",
            "OPS_DATABASE_URL",
            "REPLICATE_API_TOKEN",
            "REPLICATE_BASE_URL",
            "DATA_DIR",
        )
    }
    env.update(
        DATABASE_URL=database_url,
        REPLICATE_API_TOKEN=BENCH_TOKEN,
        REPLICATE_BASE_URL=sandbox_url,
        DATA_DIR=str(data_dir),
        SCAN_SCHEDULE="",
        PYTHONPATH=str(PROJECT_DIR),
        **(settings or {}),
    )
    with engine.connect() as conn:
        before = _workers_alive(conn)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "core.worker", *arguments],
            cwd=PROJECT_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        deadline = time.monotonic() + WORKER_START_SECONDS
        while True:
            with engine.connect() as conn:
                if _workers_alive(conn) >= before + count:
                    break
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError("the bench's workers did not start")
            time.sleep(0.2)
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _workers_alive(conn: Any) -> int:
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM ops.procrastinate_workers "
                "WHERE last_heartbeat > now() - interval '30 seconds'"
            )
        ).scalar_one()
    )


def wait_until_idle(
    engine: Engine, *, timeout: float = JOBS_TIMEOUT_SECONDS, queue: str | None = None
) -> None:
    """Until no job (of ``queue``) waits or runs."""
    deadline = time.monotonic() + timeout
    query = "SELECT count(*) FROM ops.procrastinate_jobs WHERE status IN ('todo', 'doing')" + (
        " AND queue_name = :queue" if queue else ""
    )
    while True:
        with engine.connect() as conn:
            if conn.execute(text(query), {"queue": queue}).scalar_one() == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the jobs did not end within {timeout} s")
        time.sleep(0.2)


def bench_gateway(base_url: str, *, calls_per_minute: float = 60_000) -> ReplicateGateway:
    return ReplicateGateway(
        build_client(BENCH_TOKEN, base_url),
        limits=RateLimits.per_minute(600, calls_per_minute),
        policy=RetryPolicy(total_seconds=30),
    )


def _demo_zip_urls(engine: Engine, base_url: str) -> list[str]:
    """Seed the demo world on the sandbox; every training ZIP it uploaded."""
    gateway = bench_gateway(base_url)
    try:
        seed_demo_world(engine=engine, gateway=gateway, sandbox_url=base_url)
        urls = {
            str(training.input.get("input_images"))
            for training in gateway.list_trainings(until_id=None)
        }
    finally:
        gateway.close()
    return sorted(url for url in urls if url.startswith("http"))


def _read_all(
    engine: Engine,
    urls: list[str],
    processes: int,
    *,
    database_url: str,
    sandbox_url: str,
    data_dir: Path,
) -> tuple[float, int]:
    """(seconds, photos) for ``processes`` workers to read every ZIP from an empty cache."""
    with engine.begin() as conn:
        conn.execute(dataset_facts.delete())
    with worker_processes(
        processes,
        database_url=database_url,
        sandbox_url=sandbox_url,
        data_dir=data_dir,
        engine=engine,
        arguments=("--queue", "datasets", "--concurrency", "1"),
    ):
        started = time.perf_counter()
        with engine.begin() as conn:
            queue_zip_reads(conn, urls)
        wait_until_idle(engine, queue="datasets")
        seconds = time.perf_counter() - started
    with engine.connect() as conn:
        photos = conn.execute(
            select(
                func.coalesce(func.sum(func.jsonb_array_length(dataset_facts.c.facts["photos"])), 0)
            )
        ).scalar_one()
    return seconds, int(photos)


def dataset_facts_workers() -> dict[str, Any]:
    """Photos/s reading the demo ZIPs with one worker process and with two (see above)."""
    from core.bench.common import standalone_sandbox

    with (
        tempfile.TemporaryDirectory() as tmp,
        standalone_sandbox(Path(tmp)) as base_url,
        temporary_database() as (engine, url),
    ):
        urls = _demo_zip_urls(engine, base_url)
        one_seconds, one_photos = _read_all(
            engine, urls, 1, database_url=url, sandbox_url=base_url, data_dir=Path(tmp)
        )
        two_seconds, two_photos = _read_all(
            engine, urls, 2, database_url=url, sandbox_url=base_url, data_dir=Path(tmp)
        )
    one_rate = one_photos / one_seconds
    two_rate = two_photos / two_seconds
    return {
        "zips": len(urls),
        "photos": one_photos,
        "one_worker_seconds": round(one_seconds, 1),
        "one_worker_photos_per_second": round(one_rate, 2),
        "two_workers_seconds": round(two_seconds, 1),
        "two_workers_photos_per_second": round(two_rate, 2),
        "two_workers_photos_read": two_photos,
        "speedup_two_over_one": round(two_rate / one_rate, 2),
        "cpus": os.cpu_count(),
    }
