"""``python -m core.scan [--background] [--json] [--user ID ...] [--concurrency N]
[--no-datasets] [--actor EMAIL]``

Scans the configured world (DEMO: the embedded database and the sandbox, the demo world
seeded if it is not yet; LIVE: DATABASE_URL and Replicate) and stores the scan in schema
``ops``. In the foreground it runs here and, with ``--json``, prints ``{"scan_id": ...,
"users": [{"user_id": ..., "findings": [...]}]}`` for every user scanned (healthy users
with ``[]``); otherwise a short summary. With ``--background`` it queues the scan for the
workers and returns at once, printing the scan id (``--json``: ``{"scan_id": ...,
"status": "queued"}``); DEMO starts its worker if it is not running. Either way a second
fleet scan while one is queued or running is refused, naming it. Progress goes to
stderr. Exit status: 0 when the scan ran (or was queued), whatever it found; 2 when the
settings are wrong; 1 when the scan could not run or was refused.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from core.config import Mode, Settings, get_settings
from core.drift.codes import CODE_ORDER, code_spec
from core.errors import ConfigError, DashboardError
from core.roles import Actor, Role
from core.runtime import BATCH, Runtime, start_runtime
from core.scan.request import ScanOptions, request_scan
from core.scan.run import operator_email, run_scan
from core.scan.values import ScanResult

SUMMARY_WORST_USERS = 10


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
        "--actor", metavar="EMAIL", help="who asks, for the audit log (default: login@host)"
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be 1 or more")
    try:
        settings = get_settings()
        actor = Actor(args.actor or operator_email(), Role.ADMIN)
    except ConfigError as exc:
        sys.stderr.write(f"error: {_one_line(str(exc))}{os.linesep}")
        return 2
    except ValueError as exc:
        parser.error(str(exc))
    try:
        runtime = start_runtime(
            settings,
            seed_demo=settings.mode is Mode.DEMO,
            progress=_note,
            replicate=BATCH,
            start_worker=args.background,
        )
        try:
            if args.background:
                return _queue(runtime, actor, args, settings=settings)
            result = run_scan(
                app_engine=runtime.engine,
                ops_engine=runtime.ops_engine,
                gateway=runtime.gateway,
                user_ids=args.users,
                concurrency=args.concurrency,
                with_datasets=not args.no_datasets,
                recheck_datasets=args.recheck_datasets,
                requested_by=actor.email,
                stale_after=timedelta(seconds=settings.scan_heartbeat_timeout_seconds),
                progress=lambda done, total: _note(f"scanned {done} of {_users(total)}"),
            )
        finally:
            runtime.gateway.close()
            runtime.engine.dispose()
            runtime.ops_engine.dispose()
    except ConfigError as exc:
        sys.stderr.write(f"error: {_one_line(str(exc))}{os.linesep}")
        return 2
    except DashboardError as exc:
        sys.stderr.write(f"error: the scan could not run: {_one_line(str(exc))}{os.linesep}")
        return 1
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


def _queue(runtime: Runtime, actor: Actor, args: argparse.Namespace, *, settings: Settings) -> int:
    """``--background``: request the scan, print its id, return at once."""
    options = ScanOptions.of(
        args.users,
        with_datasets=not args.no_datasets,
        concurrency=args.concurrency,
        recheck_datasets=args.recheck_datasets,
    )
    with runtime.ops_engine.begin() as conn:
        scan = request_scan(
            conn,
            actor,
            options,
            background=True,
            via="cli",
            stale_after=timedelta(seconds=settings.scan_heartbeat_timeout_seconds),
        )
    if args.json:
        sys.stdout.write(json.dumps({"scan_id": scan.id, "status": scan.status}) + os.linesep)
    else:
        sys.stdout.write(f"{scan.id}{os.linesep}")
        _note(
            f"scan #{scan.id} queued; the workers run it (python -m core.worker). Follow it "
            "on the Fleet page."
        )
    return 0


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


def _note(message: str) -> None:
    sys.stderr.write(f"  {message}{os.linesep}")


if __name__ == "__main__":
    raise SystemExit(main())
