"""``python -m core.scan [--background] [--json] [--user ID ...] [--concurrency N]
[--no-datasets] [--recheck-datasets] [--actor EMAIL]``

Scans the configured world (DEMO: the embedded database and the sandbox, the demo world
seeded if it is not yet; LIVE: DATABASE_URL and Replicate) and stores the scan in schema
``ops``. In the foreground it runs here and, with ``--json``, prints ``{"scan_id": ...,
"users": [{"user_id": ..., "findings": [...]}]}`` for every user scanned (healthy users
with ``[]``); otherwise a short summary. With ``--background`` it queues the scan for the
workers and returns at once, printing the scan id (``--json``: ``{"scan_id": ...,
"status": "queued"}``); DEMO starts its worker if it is not running. Either way a second
fleet scan while one is queued or running is refused, naming it.

Who asks (``--actor``) must be on the staff list (``ops.staff``; in DEMO its built-in
staff while that table is empty) with the admin role, as on the Fleet page; it is
audited under their name. LIVE requires ``--actor``; DEMO acts as its built-in admin
(admin@demo.sselfie.test) without it.

Progress goes to stderr; a failure is one line there, ``error: <Kind>: <what to do>``.
If the database stops answering mid-scan, the scan is marked failed when it answers
again within ``DATABASE_WAIT_SECONDS`` (else the line says when the workers give it up).
Exit status: 0 when the scan ran (or was queued), whatever it found; 2 when the settings
or arguments are wrong (nothing was tried); 1 when the scan could not run or was refused
(the actor off the staff list or not an admin included); 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy.exc import DBAPIError

from core.cli import actor_email
from core.config import Mode, Settings, get_settings
from core.db import database_problem
from core.drift.codes import CODE_ORDER, code_spec
from core.errors import ConfigError, DashboardError
from core.jobs.service import ensure_worker
from core.roles import Actor
from core.runtime import BATCH, Runtime, start_runtime
from core.scan.request import ScanOptions, request_scan
from core.scan.run import database_away, run_scan
from core.scan.values import ScanResult
from core.staff import staff_actor

SUMMARY_WORST_USERS = 10
# How long a foreground scan whose database went away waits for it to answer again, to
# mark the scan failed rather than leave it blocking the next one.
DATABASE_WAIT_SECONDS = 30.0
# A log record shown on stderr is cut to this many characters (SQL and all).
LOG_LINE_CHARS = 240


def main(argv: Sequence[str] | None = None) -> int:
    """Run one scan from the command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m core.scan",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--json", action="store_true", help="print every scanned user's findings as one JSON object"
    )
    parser.add_argument(
        "--user",
        action="append",
        metavar="ID",
        dest="users",
        help="scan only this user id (repeatable); default: every user with a model row",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        metavar="N",
        help="users checked at once (default 8); the rate limits still apply",
    )
    parser.add_argument(
        "--no-datasets",
        action="store_true",
        help="skip reading training photos for the dataset checks "
        "(facts already cached are still used)",
    )
    parser.add_argument(
        "--recheck-datasets",
        action="store_true",
        help="read again the training photos that were rejected before (too big, broken, "
        "gone): they may have been fixed since",
    )
    parser.add_argument(
        "--background",
        action="store_true",
        help="queue the scan for the workers and return at once with its id",
    )
    parser.add_argument(
        "--actor",
        metavar="EMAIL",
        help="the staff member asking: on the staff list with the admin role; audited "
        "(required in LIVE; DEMO's default is its built-in admin, admin@demo.sselfie.test)",
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be 1 or more")
    try:
        settings = get_settings()
        email = actor_email(args.actor, settings.mode)
    except ConfigError as exc:
        _error(exc)
        return 2
    try:
        with _log_lines():
            result = _scan(settings, email, args)
    except ConfigError as exc:
        _error(exc)
        return 2
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
    if result is None:
        return 0
    if args.json:
        sys.stdout.write(
            json.dumps(
                {"scan_id": result.scan_id, "users": [user.to_dict() for user in result.users]}
            )
            + os.linesep
        )
    else:
        sys.stdout.write(summary(result))
    return 0


def _scan(settings: Settings, email: str, args: argparse.Namespace) -> ScanResult | None:
    """Check who asks, then scan here or queue it (None: queued, its id printed)."""
    runtime = start_runtime(
        settings,
        seed_demo=settings.mode is Mode.DEMO,
        progress=_note,
        replicate=BATCH,
        start_worker=False,
    )
    try:
        with runtime.ops_engine.connect() as conn:
            actor = staff_actor(conn, email, demo=settings.mode is Mode.DEMO)
        stale_after = timedelta(seconds=settings.scan_heartbeat_timeout_seconds)
        if args.background:
            _queue(runtime, actor, args, stale_after=stale_after)
            if settings.mode is Mode.DEMO:
                ensure_worker(settings)
            return None
        return run_scan(
            app_engine=runtime.engine,
            ops_engine=runtime.ops_engine,
            gateway=runtime.gateway,
            actor=actor,
            user_ids=args.users,
            concurrency=args.concurrency,
            with_datasets=not args.no_datasets,
            recheck_datasets=args.recheck_datasets,
            stale_after=stale_after,
            progress=lambda done, total: _note(f"scanned {done} of {_users(total)}"),
            database_wait_seconds=DATABASE_WAIT_SECONDS,
        )
    finally:
        runtime.gateway.close()
        runtime.engine.dispose()
        runtime.ops_engine.dispose()


def _queue(
    runtime: Runtime, actor: Actor, args: argparse.Namespace, *, stale_after: timedelta
) -> None:
    """``--background``: request the scan, print its id."""
    options = ScanOptions.of(
        args.users,
        with_datasets=not args.no_datasets,
        concurrency=args.concurrency,
        recheck_datasets=args.recheck_datasets,
    )
    with runtime.ops_engine.begin() as conn:
        scan = request_scan(
            conn, actor, options, background=True, via="cli", stale_after=stale_after
        )
    if args.json:
        sys.stdout.write(json.dumps({"scan_id": scan.id, "status": scan.status}) + os.linesep)
    else:
        sys.stdout.write(f"{scan.id}{os.linesep}")
        _note(
            f"scan #{scan.id} queued; the workers run it (python -m core.worker). Follow it "
            "on the Fleet page."
        )


def summary(result: ScanResult) -> str:
    """A few lines for a human: counts by code, then the worst users."""
    with_findings = [user for user in result.users if user.findings]
    lines = [
        f"Scan {result.scan_id}: {_users(len(result.users))} in {result.seconds:.1f} s, "
        f"{len(with_findings)} with findings."
    ]
    counts = Counter(finding.code for user in result.users for finding in user.findings)
    if counts:
        lines.append("Users by finding:")
        for code in sorted(
            counts, key=lambda code: (code_spec(code).severity.rank, CODE_ORDER[code])
        ):
            lines.append(f"  {code_spec(code).severity.value:<8}  {code:<22}  {counts[code]}")
        lines.append("Worst users:")
        worst = sorted(
            with_findings,
            key=lambda user: (
                user.worst_severity.rank if user.worst_severity else 3,
                -len(user.findings),
                user.user_id,
            ),
        )
        for user in worst[:SUMMARY_WORST_USERS]:
            codes = ", ".join(finding.code for finding in user.findings)
            lines.append(f"  {user.user_id}  {codes}")
    return os.linesep.join(lines) + os.linesep


def _users(count: int) -> str:
    return f"{count} user" if count == 1 else f"{count} users"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _error(error: Exception) -> None:
    """The one line a failure gets: ``error: <Kind>: <message>``; a database error as
    ``core.db.database_problem`` classifies it."""
    kind, text = type(error).__name__, str(error)
    problem = database_problem(error) if isinstance(error, DBAPIError) else None
    if problem is not None:
        kind, text = type(problem).__name__, str(problem)
        detail = database_away(error)
        if detail is not None:  # the message is the pages' ("reload the page")
            text = f"The database is not answering ({detail}). Try again when it is up."
    sys.stderr.write(f"error: {kind}: {_one_line(text)}{os.linesep}")


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = _one_line(record.getMessage())
        if len(text) > LOG_LINE_CHARS:
            text = text[: LOG_LINE_CHARS - 1] + "…"
        return f"  {record.name}: {text}"


@contextmanager
def _log_lines() -> Iterator[None]:
    """Library log records (warnings and up) as one short line each on stderr, never a
    traceback: the command's own failure is its ``error:`` line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_OneLine())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def _note(message: str) -> None:
    sys.stderr.write(f"  {message}{os.linesep}")


if __name__ == "__main__":
    raise SystemExit(main())
