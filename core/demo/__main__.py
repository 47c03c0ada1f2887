"""``python -m core.demo [--reset] [--users N] | --list [--json] | --app-retrain USER_ID
[--photos N] [--squeeze] [--fail]``: seed the DEMO world from a shell, list its personas,
or retrain one of them the way the app does.

Uses the configured settings (DEMO only): the embedded PostgreSQL and the sandbox of
``DATA_DIR``, started if needed. Without ``--reset`` an existing world is left alone.
``--list`` prints each persona's key, user id, email, situation and expected findings
(nothing is started: the personas are fixed).

``--app-retrain USER_ID`` plays the app's upload route for that user
(``core.demo.app_retrain``), its bugs included: a ZIP of only N new photos (``--photos``,
default 8), squeezed by the browser to 600 px at JPEG quality 0.55 with ``--squeeze``,
one training on the sandbox with the app's input, and the user's row written as the app
writes it: on success its version left stale, on failure (``--fail``: the sandbox fails
the training) its version wiped. It waits for the training to end (about 20 s in DEMO),
prints the training id and what it did to the row, and starts DEMO's worker if none runs,
so the console's watch reviews the training on its own. Exit 0 when the training ended,
1 when it could not be made or did not end in time, 2 when refused (LIVE, an unknown
user, a photo count the app would refuse): one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import DBAPIError

from core.app.calls import UPLOAD_MAX_PHOTOS, UPLOAD_MIN_PHOTOS
from core.cli import EXIT_CONFIG, start_cli_runtime
from core.config import Mode, get_settings
from core.db import database_problem
from core.demo.app_retrain import (
    DEFAULT_PHOTOS,
    DEFAULT_WAIT_SECONDS,
    POLL_SECONDS,
    AppRetrainResult,
    RowChange,
    app_retrain,
)
from core.errors import ConfigError, DashboardError, DataRejected, NotFound
from core.runtime import Runtime


def main(argv: Sequence[str] | None = None) -> int:
    """Seed (or reseed) the demo world, then add synthetic users; or list the personas, or
    play the app's retrain of one user; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m core.demo", description=__doc__)
    parser.add_argument(
        "--reset",
        action="store_true",
        help="delete the demo rows and the sandbox's state, then seed again",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=0,
        metavar="N",
        help="also add N synthetic users (rows only, loaded with COPY)",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list the personas (key, user id, email, situation, expected findings)",
    )
    parser.add_argument("--json", action="store_true", help="with --list: one JSON array")
    parser.add_argument(
        "--app-retrain",
        metavar="USER_ID",
        help="retrain this user the way the app does, its bugs included, and wait for it",
    )
    parser.add_argument(
        "--photos",
        type=int,
        metavar="N",
        help=f"with --app-retrain: how many new photos (default {DEFAULT_PHOTOS}; the app "
        f"takes {UPLOAD_MIN_PHOTOS} to {UPLOAD_MAX_PHOTOS})",
    )
    parser.add_argument(
        "--squeeze",
        action="store_true",
        help="with --app-retrain: the browser squeezes them to 600 px at JPEG quality 0.55",
    )
    parser.add_argument(
        "--fail",
        action="store_true",
        help="with --app-retrain: the sandbox fails the training (the row loses its version)",
    )
    parser.add_argument(
        "--wait-seconds",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        metavar="S",
        help="with --app-retrain: how long to wait for the training to end",
    )
    args = parser.parse_args(argv)
    if args.app_retrain is not None:
        if args.reset or args.users or args.list or args.json:
            return _refuse("--app-retrain goes alone: not with --reset, --users, --list or --json")
        return _app_retrain(args)
    if args.photos is not None or args.squeeze or args.fail:
        return _refuse("--photos, --squeeze and --fail go with --app-retrain USER_ID")
    if args.list:
        return _list(as_json=args.json)
    if args.json:
        parser.error("--json goes with --list")
    if args.users < 0:
        parser.error("--users must be 0 or more")
    try:
        settings = get_settings()
        if settings.mode is not Mode.DEMO:
            raise ConfigError(
                "The demo world is seeded only in DEMO (the embedded database and the "
                "sandbox); unset DATABASE_URL and REPLICATE_API_TOKEN."
            )
        from core.demo.seed import seed_demo_world
        from core.demo.synthetic import add_synthetic_users
        from core.runtime import BATCH, start_runtime

        runtime = start_runtime(
            settings, seed_demo=False, progress=_note, replicate=BATCH, start_worker=False
        )
        report = seed_demo_world(
            engine=runtime.engine,
            gateway=runtime.gateway,
            sandbox_url=runtime.replicate_base_url,
            owner=settings.replicate_owner,
            reset=args.reset,
            progress=_note,
        )
        if report.seeded:
            _say(
                f"seeded {report.personas} personas, {report.trainings} trainings, "
                f"{report.generations} images in {report.seconds:.1f} s"
            )
        else:
            _say("the demo world is already seeded (use --reset to seed it again)")
        if args.users:
            started = time.monotonic()
            added = add_synthetic_users(
                engine=runtime.engine, count=args.users, owner=settings.replicate_owner
            )
            _say(f"added {added} synthetic users in {time.monotonic() - started:.1f} s")
        return 0
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}{os.linesep}")
        return 2


def _app_retrain(args: argparse.Namespace) -> int:
    """Refuse LIVE before anything starts, start DEMO (and its worker, whose watch then
    reviews the training), and play the app's retrain."""
    try:
        if get_settings().mode is not Mode.DEMO:
            return _refuse(
                "--app-retrain plays the app only in DEMO, on the demo world and its "
                "sandbox; unset DATABASE_URL and REPLICATE_API_TOKEN."
            )
    except ConfigError as exc:
        return _refuse(str(exc))
    started = start_cli_runtime(start_worker=True)
    if isinstance(started, int):
        return started  # said on stderr, in one line
    _, runtime = started
    try:
        return run_app_retrain(
            runtime,
            user_id=args.app_retrain,
            photos=args.photos,
            squeeze=args.squeeze,
            fail=args.fail,
            wait_seconds=args.wait_seconds,
        )
    finally:
        runtime.gateway.close()
        runtime.engine.dispose()


def run_app_retrain(
    runtime: Runtime,
    *,
    user_id: str,
    photos: int | None,
    squeeze: bool,
    fail: bool,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
) -> int:
    """Play the app's retrain on a started runtime and say what it did; the exit status."""
    try:
        result = app_retrain(
            app_engine=runtime.engine,
            gateway=runtime.gateway,
            sandbox_url=runtime.replicate_base_url,
            mode=runtime.mode,
            user_id=user_id,
            photos=photos,
            squeeze=squeeze,
            fail=fail,
            wait_seconds=wait_seconds,
            owner=runtime.settings.replicate_owner,
            progress=_note,
            poll_seconds=poll_seconds,
        )
    except (ConfigError, NotFound, DataRejected) as exc:
        return _refuse(str(exc))
    except DashboardError as exc:
        sys.stderr.write(f"error: {type(exc).__name__}: {_one_line(str(exc))}{os.linesep}")
        return 1
    except DBAPIError as exc:
        problem = database_problem(exc)
        if problem is None:
            raise
        sys.stderr.write(f"error: {type(problem).__name__}: {_one_line(str(problem))}{os.linesep}")
        return 1
    for line in retrain_lines(result, watch_seconds=runtime.settings.watch_seconds):
        _say(line)
    return 0 if result.ended else 1


def retrain_lines(result: AppRetrainResult, *, watch_seconds: float | None) -> list[str]:
    """What the app's retrain did, for the person at the terminal."""
    kind = "retrain" if result.retrain else "first training (the row was not completed)"
    photos = (
        f"{result.photos} new photos only, {result.long_side} px at JPEG quality "
        f"{result.jpeg_quality}"
    )
    lines = [
        f"training {result.training_id}: {result.training_status}",
        f"  the app's {kind} into {result.destination}, trigger word {result.trigger_word}",
        f"  {photos}: {result.zip_url}",
        "  the row at the start: " + _changed(result.at_start),
    ]
    if not result.ended:
        lines.append(
            "  the training had not ended in time: the row stays 'training' until someone "
            "polls, as the app leaves it"
        )
    else:
        lines.append("  the row at the end: " + (_changed(result.at_end) or "nothing changed"))
        lines.append("  " + _version_line(result))
    if watch_seconds is None:
        lines.append(
            "the watch is off (WATCH_INTERVAL_SECONDS=0): `python -m core.watch --once` "
            "reviews it by hand"
        )
    else:
        lines.append(f"the console's watch will review it within ~{watch_seconds:.0f} s")
    return lines


def _version_line(result: AppRetrainResult) -> str:
    if result.stale:
        return (
            f"the row's version: {result.row_version} kept (STALE: the training made "
            f"{result.new_version}, which the row does not hold)"
        )
    if result.version_lost:
        had = f"; {result.version_before} still exists" if result.version_before else ""
        return f"the row's version: wiped (VERSION_LOST: the row holds none{had})"
    return f"the row's version: {result.row_version}"


def _changed(changes: tuple[RowChange, ...]) -> str:
    return "; ".join(
        f"{change.column} {_value(change.before)} -> {_value(change.after)}" for change in changes
    )


def _value(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _refuse(message: str) -> int:
    """A refusal: one line on stderr, exit 2 (nothing was done)."""
    sys.stderr.write(f"error: {_one_line(message)}{os.linesep}")
    return EXIT_CONFIG


def _list(*, as_json: bool) -> int:
    from core.demo.personas import PERSONAS

    rows = [
        {
            "key": persona.key,
            "user_id": persona.user_id,
            "email": persona.email,
            "situation": persona.situation,
            "expected_codes": list(persona.expected_codes),
        }
        for persona in PERSONAS
    ]
    if as_json:
        _say(json.dumps(rows))
        return 0
    width = max(len(row["key"]) for row in rows)
    for row in rows:
        codes = ", ".join(row["expected_codes"]) or "healthy"
        _say(f"{row['key']:<{width}}  {row['user_id']}  {row['email']}  [{codes}]")
        _say(f"{'':<{width}}  {row['situation']}")
    return 0


def _note(message: str) -> None:
    sys.stderr.write(f"  {message}{os.linesep}")


def _say(message: str) -> None:
    sys.stdout.write(message + os.linesep)


if __name__ == "__main__":
    raise SystemExit(main())
