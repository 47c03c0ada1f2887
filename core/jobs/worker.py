"""A worker process: ``python -m core.worker [--concurrency N] [--queue NAME ...]``.

It connects as the console does (``core.runtime``: DEMO's embedded PostgreSQL and
sandbox, or LIVE's databases and Replicate), gives the procrastinate app a connector to
schema ops, and runs jobs until SIGTERM or Ctrl-C (running jobs finish first; a second
signal stops at once, and their jobs are run again by another worker's maintenance).
Any number of workers on any number of machines pointed at the same database share the
queue; ``--queue`` lets a machine take only some work (``datasets`` is dlib, CPU-bound).

Tasks are plain functions, so they run on a thread pool of ``concurrency`` threads; each
thread gets its own dlib face reader, so photos are read in parallel. A retrain draft's
checks run on processes of their own instead, one per core (``core.retrain.measure``:
dlib's face descriptor holds the GIL), started by the first draft and stopped with the
worker.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from procrastinate import PsycopgConnector
from procrastinate.app import WorkerOptions
from sqlalchemy import make_url

from core.compare.run import CompareSettings
from core.config import Settings, get_settings
from core.errors import ConfigError, DashboardError
from core.faces import FaceReaders
from core.jobs.app import Queue, app
from core.jobs.tasks import (
    COMPARE_KEY,
    PHOTO_MEASURER_KEY,
    RETRAIN_KEY,
    SERVICES_KEY,
    STALE_AFTER_KEY,
    attach_schedules,
)
from core.retrain.gate import GateSettings
from core.retrain.measure import PhotoMeasurer
from core.runtime import BATCH, Runtime, start_runtime
from core.scan.heartbeat import beat_seconds
from core.scan.services import ScanServices
from core.schema import OPS_SCHEMA

log = logging.getLogger(__name__)

# procrastinate polls for new jobs this often when LISTEN/NOTIFY missed one.
POLL_SECONDS = 2.0


def procrastinate_conninfo(sqlalchemy_url: str) -> str:
    """The libpq URI for a SQLAlchemy URL (procrastinate speaks psycopg, not SQLAlchemy)."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def services_for(runtime: Runtime, settings: Settings) -> ScanServices:
    return ScanServices(
        runtime.engine,
        runtime.ops_engine,
        runtime.gateway,
        FaceReaders(),
        heartbeat_seconds=beat_seconds(settings.scan_heartbeat_timeout_seconds),
    )


def compare_settings(settings: Settings) -> CompareSettings:
    return CompareSettings(
        price_per_second_usd=settings.compare_price_per_second_usd,
        prediction_timeout_seconds=settings.compare_prediction_timeout_seconds,
    )


def run_worker(
    settings: Settings,
    *,
    concurrency: int,
    queues: Sequence[str] | None = None,
    name: str | None = None,
    wait: bool = True,
) -> None:
    """Run jobs until stopped (or, with ``wait=False``, until the queues are empty)."""
    runtime = start_runtime(settings, seed_demo=False, replicate=BATCH, start_worker=False)
    # The retrain checks' processes (one per core), started by the first draft to check.
    measurer = PhotoMeasurer()
    try:
        ops_url = runtime.ops_engine.url.render_as_string(hide_password=False)
        connector = PsycopgConnector(
            conninfo=procrastinate_conninfo(ops_url),
            kwargs={
                "options": f"-c search_path={OPS_SCHEMA}",
                "application_name": "sselfie-console-worker",
            },
            min_size=1,
            max_size=concurrency + 2,
        )
        for attached in attach_schedules(settings.scan_cron):
            log.info("periodic: %s", attached)
        context = {
            SERVICES_KEY: services_for(runtime, settings),
            STALE_AFTER_KEY: timedelta(seconds=settings.scan_heartbeat_timeout_seconds),
            COMPARE_KEY: compare_settings(settings),
            RETRAIN_KEY: GateSettings(
                price_per_image_usd=settings.compare_price_per_image_usd,
                daily_budget_usd=settings.compare_daily_budget_usd,
                auto_promote=settings.retrain_auto_promote,
            ),
            PHOTO_MEASURER_KEY: measurer,
        }
        with app.replace_connector(connector):
            asyncio.run(
                _work(concurrency=concurrency, queues=queues, name=name, wait=wait, context=context)
            )
    finally:
        measurer.close()
        runtime.gateway.close()
        runtime.engine.dispose()
        if runtime.ops_engine is not runtime.engine:
            runtime.ops_engine.dispose()


async def _work(
    *,
    concurrency: int,
    queues: Sequence[str] | None,
    name: str | None,
    wait: bool,
    context: dict[str, object],
) -> None:
    # Plain-function tasks run on the loop's default executor: make it as wide as the
    # worker's concurrency (the default has min(32, CPUs + 4) threads).
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
    )
    options: WorkerOptions = {
        "concurrency": concurrency,
        "name": name or f"{os.uname().nodename}:{os.getpid()}",
        "wait": wait,
        "additional_context": context,
        "fetch_job_polling_interval": POLL_SECONDS,
        "abort_job_polling_interval": POLL_SECONDS,
    }
    if queues:
        options["queues"] = list(queues)
    async with app.open_async():
        await app.run_worker_async(**options)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m core.worker``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m core.worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="jobs run at once (default: WORKER_CONCURRENCY, 4)",
    )
    parser.add_argument(
        "--queue",
        action="append",
        dest="queues",
        metavar="NAME",
        choices=[queue.value for queue in Queue],
        help="take jobs from this queue only (repeatable; default: all of "
        f"{', '.join(queue.value for queue in Queue)})",
    )
    parser.add_argument("--name", help="this worker's name in logs (default host:pid)")
    parser.add_argument(
        "--one-shot",
        action="store_true",
        help="stop once the queues are empty instead of waiting for more",
    )
    args = parser.parse_args(argv)
    if args.concurrency is not None and args.concurrency < 1:
        parser.error("--concurrency must be 1 or more")
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request's full URL at INFO: download URLs of training files and
    # outputs (some signed, all private) do not belong in a log, and the lines drown the
    # worker's own. Its warnings and errors still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = get_settings()
        concurrency = args.concurrency or settings.worker_concurrency
        log.info(
            "worker starting (%s, concurrency %s, queues %s)",
            settings.mode.value,
            concurrency,
            ", ".join(args.queues) if args.queues else "all",
        )
        run_worker(
            settings,
            concurrency=concurrency,
            queues=args.queues,
            name=args.name,
            wait=not args.one_shot,
        )
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}{os.linesep}")
        return 2
    except DashboardError as exc:
        sys.stderr.write(f"error: the worker could not start: {exc}{os.linesep}")
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
