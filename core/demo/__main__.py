"""``python -m core.demo [--reset] [--users N] | --list [--json]``: seed the DEMO world
from a shell, or list its personas.

Uses the configured settings (DEMO only): the embedded PostgreSQL and the sandbox of
``DATA_DIR``, started if needed. Without ``--reset`` an existing world is left alone.
``--list`` prints each persona's key, user id, email, situation and expected findings
(nothing is started: the personas are fixed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

from core.config import Mode, get_settings
from core.errors import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    """Seed (or reseed) the demo world, then add synthetic users; returns the exit status."""
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
    args = parser.parse_args(argv)
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
