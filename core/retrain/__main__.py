"""``python -m core.retrain COMMAND --user ID [--actor EMAIL] [--json] ...``

The Retrain page's wizard from the command line, on the same core (admins only, checked
in core; every write audited there):

- ``check [PHOTO_OR_FOLDER ...]``: open a draft retrain of the user (their own model and
  trigger word, from the refreshed training history), add the given photos (a folder: every
  file in it, not its subfolders) and every earlier training's photos, check each photo
  here (dlib), and report each verdict, the dataset gate and the training parameters (which
  inputs the trainer ignores). A blocked gate is reported, not an error.
- ``submit --reason TEXT [--override-reason TEXT] [--retrain ID] [--background]``: confirm
  the draft (default: the actor's newest draft of the user) and start exactly one training:
  here, following it to its end (``--deadline-seconds``), or ``--background``: queued for
  the workers. The app's row is not touched.
- ``status``: the user's retrains, newest first, with the promotion gate's reading.
- ``cancel --reason TEXT [--retrain ID]``: cancel the user's retrain in flight.
- ``promote`` / ``keep --reason TEXT [--retrain ID] [--without-gate-reason TEXT]``: the
  promotion decision on the user's succeeded retrain, once its gate's comparison ended:
  write its new version to the app's row (undoable like a repair), or keep the current one
  (a decision the diagnosis then knows). A gate that failed or could not run needs
  ``--without-gate-reason``.

Progress goes to stderr; ``--json`` prints the result as one JSON object. Exit status: 0
when the command did what it says (``check`` whatever the gate says); 1 when it was refused
or failed (the reason on stderr); 2 for wrong settings or arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from core.cli import start_cli_runtime
from core.config import Mode
from core.errors import DashboardError, DataRejected
from core.retrain.cli.cancel import cancel_command
from core.retrain.cli.check import check_command, read_photo_files
from core.retrain.cli.common import PROG, Outcome, one_line
from core.retrain.cli.decide import decide_command
from core.retrain.cli.status import status_command
from core.retrain.cli.submit import DEFAULT_DEADLINE_SECONDS, submit_command
from core.retrain.submit import NewPhoto
from core.roles import Actor
from core.runtime import Runtime
from core.staff import staff_actor


def _text(value: str) -> str:
    """A reason as typed: blank is refused here (the audit log keeps it)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("it may not be blank")
    return value.strip()


def _seconds(value: str) -> float:
    seconds = float(value)
    if seconds <= 0:
        raise argparse.ArgumentTypeError("it must be more than 0")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(*, actor_required: bool = True) -> argparse.ArgumentParser:
        shared = argparse.ArgumentParser(add_help=False)
        shared.add_argument("--user", required=True, metavar="ID", help="the app's user id")
        shared.add_argument(
            "--actor",
            required=actor_required,
            metavar="EMAIL",
            help="the staff member acting (on the console's staff list; retrains need an admin)"
            if actor_required
            else "the staff member asking (optional: checked against the staff list if given)",
        )
        shared.add_argument("--json", action="store_true", help="print the result as JSON")
        return shared

    def chosen_retrain(command: argparse.ArgumentParser, default: str) -> None:
        command.add_argument(
            "--retrain", type=int, metavar="ID", help=f"the retrain's id (default: {default})"
        )

    def add(name: str, what: str, shared: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[shared], help=what, description=what)

    def reason(command: argparse.ArgumentParser, why: str) -> None:
        command.add_argument("--reason", required=True, type=_text, metavar="TEXT", help=why)

    check = add(
        "check",
        "open a draft retrain, add the photos given and the earlier trainings', check them "
        "all here; report each verdict, the dataset gate and the parameters",
        common(),
    )
    check.add_argument(
        "photos",
        nargs="*",
        metavar="PHOTO_OR_FOLDER",
        help="new photos to add (a folder: every file in it, not its subfolders)",
    )

    submit_command = add(
        "submit",
        "confirm a draft and start exactly one training: here, followed to its end, or "
        "queued for the workers (--background)",
        common(),
    )
    reason(submit_command, "why this user is retrained (kept in the audit log)")
    submit_command.add_argument(
        "--override-reason",
        type=_text,
        metavar="TEXT",
        help="submit although the dataset gate blocks, and why (audited)",
    )
    chosen_retrain(submit_command, "the actor's newest draft of the user")
    submit_command.add_argument(
        "--background",
        action="store_true",
        help="queue the upload and the training for the workers and return at once",
    )
    submit_command.add_argument(
        "--deadline-seconds",
        type=_seconds,
        default=DEFAULT_DEADLINE_SECONDS,
        metavar="S",
        help="in the foreground, stop following after this long and leave it to the "
        f"workers (default {DEFAULT_DEADLINE_SECONDS:.0f})",
    )

    add(
        "status",
        "the user's retrains, newest first, with the promotion gate's reading",
        common(actor_required=False),
    )

    cancel = add("cancel", "cancel the user's retrain in flight", common())
    reason(cancel, "why it is cancelled (kept in the audit log)")
    chosen_retrain(cancel, "the user's retrain in flight")

    for name, what in (
        ("promote", "write the succeeded retrain's new version to the app's row"),
        ("keep", "keep the user's current version (nothing is written to the row)"),
    ):
        decide = add(name, what, common())
        reason(decide, "why (kept in the audit log)")
        chosen_retrain(decide, "the user's succeeded retrain awaiting a decision")
        decide.add_argument(
            "--without-gate-reason",
            type=_text,
            metavar="TEXT",
            help="decide although the gate's comparison failed or could not run, and why",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    new_photos: list[NewPhoto] = []
    if args.command == "check":
        try:
            new_photos = read_photo_files([Path(given) for given in args.photos])
        except OSError as exc:
            parser.error(f"a photo could not be read: {exc}")
    # Only a queued submit needs DEMO's worker; the rest runs here.
    started = start_cli_runtime(start_worker=args.command == "submit" and args.background)
    if isinstance(started, int):
        return started
    settings, runtime = started
    try:
        actor = None
        if args.actor is not None:
            with runtime.ops_engine.connect() as ops:
                actor = staff_actor(ops, args.actor, demo=settings.mode is Mode.DEMO)
        outcome = _run(runtime, actor, args, new_photos)
    except DashboardError as exc:
        sys.stderr.write(f"error: {args.command}: {one_line(exc)}{os.linesep}")
        return 1
    finally:
        runtime.gateway.close()
        runtime.engine.dispose()
        runtime.ops_engine.dispose()
    if args.json:
        sys.stdout.write(json.dumps(outcome.result, default=str) + os.linesep)
    else:
        sys.stdout.write(os.linesep.join(outcome.lines) + os.linesep)
    if outcome.failure is not None:
        sys.stderr.write(f"error: {one_line(outcome.failure)}{os.linesep}")
        return 1
    return 0


def _run(
    runtime: Runtime, actor: Actor | None, args: argparse.Namespace, photos: list[NewPhoto]
) -> Outcome:
    if args.command == "status":
        return status_command(runtime, args.user)
    if actor is None:  # argparse requires --actor for every other command
        raise DataRejected("--actor is required.")
    if args.command == "check":
        return check_command(runtime, actor, args.user, photos)
    if args.command == "submit":
        return submit_command(
            runtime,
            actor,
            args.user,
            retrain_id=args.retrain,
            reason=args.reason,
            override_reason=args.override_reason,
            background=args.background,
            deadline_seconds=args.deadline_seconds,
        )
    if args.command == "cancel":
        return cancel_command(runtime, actor, args.user, args.retrain, args.reason)
    return decide_command(
        runtime,
        actor,
        args.user,
        args.retrain,
        args.reason,
        args.command,
        args.without_gate_reason,
    )


if __name__ == "__main__":
    raise SystemExit(main())
