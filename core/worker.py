"""``python -m core.worker [--concurrency N] [--queue NAME ...] [--name NAME] [--one-shot]``:
run jobs until SIGTERM or Ctrl-C.

Start as many as you like, on as many machines as you like, all pointed at the same
database: they share the queue. A database outage does not end a worker: it waits and
reconnects by itself (see ``core.jobs.worker``). SIGTERM or Ctrl-C lets running jobs
finish (a wait for the database ends at once) and exits 0; a second one stops at once.
Exit status: 2 when the settings are wrong, 1 when the worker could not start.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import Any

from core.compare.run import CompareSettings
from core.compare.tasks import COMPARE_KEY
from core.config import Settings, get_settings
from core.errors import ConfigError, DashboardError
from core.imaging.faces import FaceReaders
from core.jobs.app import Queue
from core.jobs.context import RECOVERY_KEY, SERVICES_KEY, JobServices
from core.jobs.worker import Started, WorkerStopped, procrastinate_conninfo, work
from core.repairs.availability import repairs_available
from core.retrain.gate import GateSettings
from core.retrain.measure import PhotoMeasurer
from core.retrain.tasks import PHOTO_MEASURER_KEY, RETRAIN_KEY
from core.runtime import BATCH, Runtime, start_runtime
from core.scan.heartbeat import beat_seconds
from core.scan.tasks import STALE_AFTER_KEY
from core.tasks import attach_schedules
from core.watch.decisions import DEFAULT_INTERVAL_SECONDS
from core.watch.settings import watch_settings
from core.watch.tasks import WATCH_KEY

log = logging.getLogger("core.worker")


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
    # psycopg's pool logs every failed connection attempt (two lines each, several a
    # second) while the database is away; the worker says the outage once instead.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
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
    except WorkerStopped as exc:
        sys.stderr.write(f"error: {exc}{os.linesep}")
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def run_worker(
    settings: Settings,
    *,
    concurrency: int,
    queues: Sequence[str] | None = None,
    name: str | None = None,
    wait: bool = True,
) -> None:
    """Run every domain's jobs until stopped (or, with ``wait=False``, until the queues
    are empty) on the runtime ``settings`` describe, with the schedules they set."""
    for attached in attach_schedules(
        settings.scan_cron,
        recovery_seconds=settings.recovery_seconds,
        watch_seconds=settings.watch_seconds,
    ):
        log.info("periodic: %s", attached)
    work(
        partial(_start, settings),
        concurrency=concurrency,
        recovery_seconds=settings.recovery_seconds,
        queues=queues,
        name=name,
        wait=wait,
    )


def _start(settings: Settings) -> Started:
    """The runtime (``core.runtime``: DEMO's embedded PostgreSQL and sandbox, or LIVE's
    databases and Replicate) and what every task finds in its job's context."""
    runtime = start_runtime(settings, seed_demo=False, replicate=BATCH, start_worker=False)
    # A retrain draft's checks run on processes of their own, one per core (dlib's face
    # descriptor holds the GIL), started by the first draft and stopped with the worker.
    measurer = PhotoMeasurer()

    def close() -> None:
        measurer.close()
        runtime.gateway.close()
        runtime.engine.dispose()
        if runtime.ops_engine is not runtime.engine:
            runtime.ops_engine.dispose()

    try:
        context = _context(runtime, settings, measurer)
    except BaseException:
        close()
        raise
    ops_url = runtime.ops_engine.url.render_as_string(hide_password=False)
    return Started(procrastinate_conninfo(ops_url), context, close)


def _context(runtime: Runtime, settings: Settings, measurer: PhotoMeasurer) -> dict[str, Any]:
    """What every task finds in ``context.additional_context``."""
    return {
        SERVICES_KEY: services_for(runtime, settings),
        STALE_AFTER_KEY: timedelta(seconds=settings.scan_heartbeat_timeout_seconds),
        RECOVERY_KEY: timedelta(seconds=settings.recovery_seconds),
        COMPARE_KEY: compare_settings(settings),
        RETRAIN_KEY: GateSettings(
            price_per_image_usd=settings.compare_price_per_image_usd,
            daily_budget_usd=settings.compare_daily_budget_usd,
            # The gate promotes only where a promotion and its audit commit together.
            auto_promote=settings.retrain_auto_promote and repairs_available(settings)[0],
        ),
        PHOTO_MEASURER_KEY: measurer,
        WATCH_KEY: watch_settings(
            settings.watch_seconds or DEFAULT_INTERVAL_SECONDS,
            daily_budget_usd=settings.watch_daily_budget_usd,
            price_per_image_usd=settings.compare_price_per_image_usd,
            webhook_url=settings.alert_webhook_url,
            console_url=settings.console_url,
            alert_deadline_seconds=settings.alert_deadline_seconds,
        ),
    }


def services_for(runtime: Runtime, settings: Settings) -> JobServices:
    """The services a worker's jobs share; each of its threads gets its own dlib face
    reader, so photos are read in parallel."""
    return JobServices(
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
        lease=timedelta(seconds=settings.recovery_seconds),
    )


if __name__ == "__main__":
    raise SystemExit(main())
