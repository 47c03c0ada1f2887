"""``python -m core.watch [--once] [--json]``

A watch pass in the foreground, on the configured world (DEMO: the embedded database and
the sandbox, the demo world seeded if it is not yet; LIVE: DATABASE_URL and Replicate):
what is new on Replicate since the last look goes into the training ledger, and a
retrain review is queued for every user whose training ended since. Prints what it
queued: one line per review, or with ``--json`` one object per pass, ``{"listed",
"new_trainings", "refreshed", "queued", "training_ids", "reviews": [{"training_id",
"user_id", "training_status"}], "errors", "interrupted", "seconds"}``.

``--once``: one pass, then exit. Without it, a pass every WATCH_INTERVAL_SECONDS (300 s
when it is 0, off for the workers) until Ctrl-C (the workers do the same on their own;
this is for watching by hand).

A failure is one line on stderr: ``error: <Kind>: <message>`` for the pass, as the other
command lines say it for the start (``core.cli.start_cli_runtime``). Exit status: 0 when the
pass ran (whatever it queued); 2 when the settings are wrong; 1 when the pass could not
run (Replicate's listing or the database failed: nothing was written); 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

from sqlalchemy.exc import DBAPIError

from core.cli import start_cli_runtime
from core.db import database_problem
from core.errors import DashboardError
from core.watch.decisions import DEFAULT_INTERVAL_SECONDS
from core.watch.run import WatchReport, run_watch


def main(argv: Sequence[str] | None = None) -> int:
    """Run one watch pass (or one every interval) from the command line; the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m core.watch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    parser.add_argument("--json", action="store_true", help="print each pass as one JSON object")
    args = parser.parse_args(argv)
    started = start_cli_runtime(start_worker=False)
    if isinstance(started, int):
        return started  # said on stderr, in one line
    settings, runtime = started
    try:
        while True:
            report = run_watch(
                ops_engine=runtime.ops_engine, app_engine=runtime.engine, gateway=runtime.gateway
            )
            sys.stdout.write(_shown(report, as_json=args.json))
            sys.stdout.flush()
            if args.once:
                return 0
            time.sleep(settings.watch_seconds or DEFAULT_INTERVAL_SECONDS)
    except DashboardError as exc:
        _error(exc)
        return 1
    except DBAPIError as exc:
        if database_problem(exc) is None:
            raise
        _error(exc)
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"error: interrupted (Ctrl-C){os.linesep}")
        return 130
    finally:
        runtime.gateway.close()
        runtime.engine.dispose()
        if runtime.ops_engine is not runtime.engine:
            runtime.ops_engine.dispose()


def _shown(report: WatchReport, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(report.as_json()) + os.linesep
    lines = [
        f"watch: {report.new_trainings} new trainings, {report.refreshed} unfinished read "
        f"again, {len(report.queued)} reviews queued ({report.seconds} s)"
        + ("" if report.listed else "; no listing yet (the first scan lists the trainings)")
    ]
    lines += [
        f"  queued: training {review.training_id} ({review.training_status}) of user "
        f"{review.user_id}"
        for review in report.queued
    ]
    lines += [
        f"  not read: {training_id}: {message}" for training_id, message in report.errors.items()
    ]
    return os.linesep.join(lines) + os.linesep


def _error(error: Exception) -> None:
    """The one line a failure gets: ``error: <Kind>: <message>``."""
    kind, text = type(error).__name__, str(error)
    problem = database_problem(error) if isinstance(error, DBAPIError) else None
    if problem is not None:
        kind, text = type(problem).__name__, str(problem)
    sys.stderr.write(f"error: {kind}: {' '.join(text.split())}{os.linesep}")


if __name__ == "__main__":
    raise SystemExit(main())
