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

from core.config import get_settings
from core.errors import ConfigError, DashboardError
from core.jobs.app import Queue
from core.jobs.worker import WorkerStopped, run_worker

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


if __name__ == "__main__":
    raise SystemExit(main())
