"""``python -m core.compare --user ID --actor EMAIL [--columns A,B,...] [--preset NAME |
--prompt TEXT] [--seeds N] [--no-repeat] [--background] [--json]``

Compares a user's versions side by side: each column's version and exact input (``stored``,
``latest``, ``site``, ``v1``…``vN`` or a version hash; default ``stored,latest,site``), the
same seeds for every column, every image scored offline against the user's own training
photos, and a verdict paired by seed beyond the noise floor (column A run twice). Paid:
the estimate counts against the actor's daily budget (refused over it) and the run is
audited as ``compare:run``. In the foreground the predictions run here; ``--background``
queues the comparison for the workers and prints its id. With ``--json`` the result is one
JSON object. Exit status: 0 when the comparison ran (whatever it found); 2 for wrong
settings or arguments; 1 when it could not run or was refused.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from core.cli import note, refresh_ledger, start_cli_runtime
from core.compare.foreground import run_here
from core.compare.plan import DEFAULT_SEEDS, MAX_SEEDS, plan_comparison, read_compare_facts
from core.compare.request import request_comparison
from core.compare.run import CompareSettings
from core.compare.tables import comparison_images, comparisons
from core.config import Mode
from core.errors import DashboardError
from core.imaging.faces import SharedReaders
from core.jobs.context import JobServices
from core.staff import staff_actor

FOREGROUND_DEADLINE_SECONDS = 1800.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--user", required=True, metavar="ID", help="the app's user id")
    parser.add_argument(
        "--actor", required=True, metavar="EMAIL", help="the staff member asking (budget, audit)"
    )
    parser.add_argument(
        "--columns",
        metavar="A,B,...",
        help="up to 4 of stored, latest, site, v1..vN or a version hash "
        "(default stored,latest,site)",
    )
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--preset", metavar="NAME", help="headshot (default), editorial, lifestyle")
    choice.add_argument("--prompt", metavar="TEXT", help="free text instead of a preset")
    parser.add_argument(
        "--seeds",
        type=int,
        default=DEFAULT_SEEDS,
        metavar="N",
        help=f"seeds shared by every column (1-{MAX_SEEDS}, default {DEFAULT_SEEDS})",
    )
    parser.add_argument(
        "--no-repeat",
        action="store_true",
        help="do not run column A twice (no noise floor from this run: the floor is the minimum)",
    )
    parser.add_argument(
        "--background", action="store_true", help="queue it for the workers and print its id"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.seeds <= MAX_SEEDS:
        parser.error(f"--seeds must be between 1 and {MAX_SEEDS}")
    started = start_cli_runtime(start_worker=args.background)
    if isinstance(started, int):
        return started
    settings, runtime = started
    try:
        with runtime.ops_engine.connect() as ops:
            actor = staff_actor(ops, args.actor, demo=settings.mode is Mode.DEMO)
        refresh_ledger(runtime)
        with runtime.engine.connect() as app, runtime.ops_engine.connect() as ops:
            facts = read_compare_facts(app, ops, args.user)
        plan = plan_comparison(
            runtime.gateway,
            facts,
            columns=args.columns,
            preset=args.preset,
            prompt=args.prompt,
            seed_count=args.seeds,
            repeat=not args.no_repeat,
        )
        for line in plan.notes:
            note(line)
        with runtime.ops_engine.begin() as conn:
            comparison_id = request_comparison(
                conn,
                actor,
                plan,
                confirm_token=f"cli-{secrets.token_hex(16)}",
                price_per_image_usd=settings.compare_price_per_image_usd,
                daily_budget_usd=settings.compare_daily_budget_usd,
                background=args.background,
            )
        note(
            f"comparison #{comparison_id}: {plan.image_count} images, estimated "
            f"${plan.estimate_usd(settings.compare_price_per_image_usd)}"
        )
        if args.background:
            _print(args.json, {"comparison_id": comparison_id, "status": "queued"})
            return 0
        # As many dlib readers as CPUs: images are scored side by side.
        services = JobServices(
            runtime.engine, runtime.ops_engine, runtime.gateway, SharedReaders(os.cpu_count() or 1)
        )
        run_here(
            services,
            CompareSettings(
                price_per_second_usd=settings.compare_price_per_second_usd,
                prediction_timeout_seconds=settings.compare_prediction_timeout_seconds,
            ),
            comparison_id,
            deadline_seconds=FOREGROUND_DEADLINE_SECONDS,
            progress=note,
        )
        result = comparison_json(runtime.ops_engine, comparison_id)
    except DashboardError as exc:
        sys.stderr.write(f"error: the comparison could not run: {exc}{os.linesep}")
        return 1
    finally:
        runtime.gateway.close()
        runtime.engine.dispose()
        runtime.ops_engine.dispose()
    _print(args.json, result)
    return 0


def comparison_json(ops_engine: Any, comparison_id: int) -> dict[str, Any]:
    """A finished comparison as plain JSON: columns, images (scores, no previews), verdict."""
    with ops_engine.connect() as conn:
        header = conn.execute(select(comparisons).where(comparisons.c.id == comparison_id)).one()
        images = conn.execute(
            select(comparison_images)
            .where(comparison_images.c.comparison_id == comparison_id)
            .order_by(comparison_images.c.letter, comparison_images.c.seed)
        ).all()
    return {
        "comparison_id": comparison_id,
        "user_id": header.user_id,
        "status": header.status,
        "prompt": header.prompt,
        "seeds": list(header.seeds),
        "columns": header.columns,
        "estimate_usd": str(header.estimate_usd),
        "actual_usd": str(header.actual_usd) if header.actual_usd is not None else None,
        "stats": header.stats,
        "verdict": header.verdict or [],
        "images": [
            {
                "column": image.letter,
                "seed": image.seed,
                "status": image.status,
                "prediction_id": image.prediction_id,
                "error": image.error,
                "scores": image.scores,
            }
            for image in images
        ],
    }


def _print(as_json: bool, result: dict[str, Any]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, default=str) + os.linesep)
        return
    lines = [f"comparison #{result['comparison_id']}: {result['status']}"]
    for line in result.get("verdict") or []:
        lines.append(f"  {line}")
    sys.stdout.write(os.linesep.join(lines) + os.linesep)


if __name__ == "__main__":
    raise SystemExit(main())
