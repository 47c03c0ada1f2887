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
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from core.cli import Note, note, start_cli_runtime
from core.config import Mode
from core.errors import DashboardError, DataRejected, NotFound, ReplicateError
from core.jobs.app import TaskName
from core.repairs.availability import repairs_available
from core.repairs.rows import read_row
from core.retrain import draft, follow, promote, submit
from core.retrain.gate import gate_outcome
from core.retrain.measure import PhotoMeasurer
from core.retrain.opening import open_retrain
from core.retrain.plan import TrainingPlan, plan_of_draft
from core.retrain.tables import RETRAIN_RUNNING, retrain_photos, retrains
from core.retrain.tasks import defer_retrain
from core.roles import Actor
from core.runtime import Runtime
from core.staff import staff_actor
from core.users import read_user_record

PROG = "python -m core.retrain"
DEFAULT_DEADLINE_SECONDS = 3600.0
# What promoting writes and is shown before -> after (the version first: it is what the
# app generates with).
PROMOTED_COLUMNS = (
    "replicate_version_id",
    "lora_weights_url",
    "training_id",
    "training_status",
    "training_progress",
    "failure_reason",
    "started_at",
    "completed_at",
)


@dataclass(frozen=True)
class Outcome:
    """A command's result: ``result`` is the JSON printed, ``lines`` the plain text;
    ``failure`` (exit 1) when the command ran but did not get what it was asked for."""

    result: dict[str, Any]
    lines: list[str]
    failure: str | None = None


# -- the command line --------------------------------------------------------------------


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
    new_photos: list[submit.NewPhoto] = []
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
        sys.stderr.write(f"error: {args.command}: {_one_line(exc)}{os.linesep}")
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
        sys.stderr.write(f"error: {_one_line(outcome.failure)}{os.linesep}")
        return 1
    return 0


def _run(
    runtime: Runtime, actor: Actor | None, args: argparse.Namespace, photos: list[submit.NewPhoto]
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


def read_photo_files(given: Sequence[Path]) -> list[submit.NewPhoto]:
    """Each file as an upload; a folder's files in name order (not its subfolders; hidden
    files such as ``.DS_Store`` are no one's photos). ``OSError`` for a missing path."""
    files: list[Path] = []
    for path in given:
        if path.is_dir():
            files += sorted(
                child
                for child in path.iterdir()
                if child.is_file() and not child.name.startswith(".")
            )
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return [submit.NewPhoto(path.name, "upload", path.read_bytes()) for path in files]


# -- check -------------------------------------------------------------------------------


def check_command(
    runtime: Runtime, actor: Actor, user_id: str, photos: Sequence[submit.NewPhoto]
) -> Outcome:
    opened = open_retrain(
        app_engine=runtime.engine,
        ops_engine=runtime.ops_engine,
        gateway=runtime.gateway,
        actor=actor,
        user_id=user_id,
        photos=photos,
    )
    for line in opened.notes:
        note(line)
    retrain_id, target = opened.retrain_id, opened.target
    note(f"draft retrain #{retrain_id}: loading the earlier trainings' photos")
    problem = draft.load_previous(runtime.ops_engine, runtime.gateway, retrain_id)
    note(f"draft retrain #{retrain_id}: checking every photo (faces, size, sharpness, light)")
    with PhotoMeasurer() as measurer:
        draft.measure_draft(runtime.ops_engine, measurer, retrain_id)
    with runtime.ops_engine.begin() as conn:
        draft.rejudge(conn, retrain_id)
        if problem:
            draft.note_problem(conn, retrain_id, problem)
    with runtime.ops_engine.connect() as conn:
        photo_rows = _photos(conn, retrain_id)
        dataset_gate = draft.draft_gate(conn, retrain_id)
        row = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one()
    kept = sum(1 for photo in photo_rows if photo.kept)
    plan = plan_of_draft(row, kept)
    result = {
        "retrain_id": retrain_id,
        "user_id": user_id,
        "destination": target.destination,
        "trigger_word": target.trigger_word,
        "current_version": target.current_version,
        "notes": list(opened.notes),
        "problem": problem,
        "photos": [
            {
                "position": photo.position,
                "name": photo.name,
                "source": photo.source,
                "verdict": photo.verdict,
                "reasons": list(photo.reasons),
                "kept": photo.kept,
            }
            for photo in photo_rows
        ],
        "kept": kept,
        "gate": submit.gate_json(dataset_gate),
        "parameters": plan_json(plan),
    }
    return Outcome(result, check_lines(result, actor.email))


def _photos(conn: Connection, retrain_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(
                retrain_photos.c.position,
                retrain_photos.c.name,
                retrain_photos.c.source,
                retrain_photos.c.verdict,
                retrain_photos.c.reasons,
                retrain_photos.c.kept,
            )
            .where(retrain_photos.c.retrain_id == retrain_id)
            .order_by(retrain_photos.c.position)
        ).all()
    )


def plan_json(plan: TrainingPlan) -> dict[str, Any]:
    return {
        "trainer": plan.trainer,
        "trainer_version": plan.trainer_version,
        "destination": plan.destination,
        "trigger_word": plan.trigger_word,
        "image_count": plan.image_count,
        "schema_known": plan.schema_known,
        "inputs": [
            {"name": row.name, "value": row.value, "meaning": row.meaning, "ignored": row.ignored}
            for row in plan.rows()
        ],
        "ignored": list(plan.ignored),
    }


def check_lines(result: Mapping[str, Any], actor_email: str) -> list[str]:
    """The check's report as plain text (pure)."""
    photos = result["photos"]
    lines = [
        f"draft retrain #{result['retrain_id']} of user {result['user_id']}: "
        f"{len(photos)} photos, {result['kept']} kept; into {result['destination']} with "
        f"trigger word {result['trigger_word']} (current version "
        f"{result['current_version'] or 'none'})"
    ]
    lines += [f"  note: {note}" for note in result["notes"]]
    if result["problem"]:
        lines.append(f"  problem: {result['problem']}")
    lines.append("photos:")
    for photo in photos:
        dropped = "" if photo["kept"] else ", dropped"
        lines.append(
            f"  {photo['verdict'] or 'unchecked':<7} {photo['name']} ({photo['source']}{dropped})"
        )
        lines += [f"          - {reason}" for reason in photo["reasons"]]
    gate = result["gate"]
    if gate["blocks"]:
        lines.append("dataset gate: BLOCKED (submitting needs --override-reason):")
        lines += [f"  - {block}" for block in gate["blocks"]]
    else:
        lines.append("dataset gate: The dataset passes the gate.")
    lines += [f"  warning: {warning}" for warning in gate["warnings"]]
    if gate["figures"]:
        figures = ", ".join(f"{key}={value}" for key, value in gate["figures"].items())
        lines.append(f"  figures: {figures}")
    plan = result["parameters"]
    lines.append(
        f"parameters: {plan['image_count']} photos into {plan['destination']}, trainer "
        f"{plan['trainer']}:{plan['trainer_version'][:12]}… (pinned)"
    )
    if not plan["schema_known"]:
        lines.append("  the trainer gives no input schema: which inputs it ignores is unknown")
    name_width = max((len(row["name"]) for row in plan["inputs"]), default=0)
    value_width = max((len(str(row["value"])) for row in plan["inputs"]), default=0)
    for row in plan["inputs"]:
        taken = "IGNORED by this trainer" if row["ignored"] else "taken by the trainer"
        lines.append(
            f"  {row['name']:<{name_width}} = {row['value']!s:<{value_width}}  "
            f"{taken:<23}  {row['meaning']}"
        )
    if plan["ignored"]:
        lines.append(
            f"  Replicate drops what {plan['trainer']} does not declare: "
            f"{', '.join(plan['ignored'])}. They are sent as the app sends them, and do nothing."
        )
    override = ' --override-reason "…"' if gate["blocks"] else ""
    lines.append(
        f"next: {PROG} submit --user {result['user_id']} --actor {actor_email} "
        f'--retrain {result["retrain_id"]} --reason "…"{override}'
    )
    return lines


# -- submit ------------------------------------------------------------------------------


def submit_command(
    runtime: Runtime,
    actor: Actor,
    user_id: str,
    *,
    retrain_id: int | None,
    reason: str,
    override_reason: str | None,
    background: bool,
    deadline_seconds: float,
) -> Outcome:
    with runtime.ops_engine.connect() as conn:
        if retrain_id is not None:
            row = _retrain_of(conn, user_id, retrain_id)
        else:
            row = _newest_draft(conn, user_id, actor.email)
    # The core computes the gate and the plan again from what the draft stores.
    with runtime.ops_engine.begin() as conn:
        confirmed = submit.confirm(
            conn,
            actor,
            row.id,
            confirm_token=uuid.uuid4().hex,
            reason=reason,
            override_reason=override_reason,
        )
        if background:
            defer_retrain(conn, TaskName.SUBMIT_RETRAIN, confirmed)
    if background:
        result = {
            **retrain_json(_retrain(runtime, confirmed)),
            "queued": True,
            "promotion_gate_queued": False,
        }
        return Outcome(
            result,
            [f"retrain #{confirmed} confirmed and queued for the workers ({result['status']})"],
        )
    note(f"retrain #{confirmed}: building and uploading the ZIP, then the one training create")
    try:
        submit.submit(runtime.ops_engine, runtime.gateway, confirmed)
    except ReplicateError as exc:
        # Only the search for a lost create raises: the workers search again; never resend.
        _hand_over(runtime, TaskName.SUBMIT_RETRAIN, confirmed)
        raise ReplicateError(
            f"retrain #{confirmed}: the training create's answer was lost and Replicate could "
            f"not be searched for it ({exc}); the workers search again (it is never resent)."
        ) from exc
    ended = follow_until_ended(runtime, confirmed, deadline_seconds, note)
    row = _retrain(runtime, confirmed)
    gate_queued = bool(ended and row.status == "succeeded" and row.new_version)
    result = {**retrain_json(row), "queued": False, "promotion_gate_queued": gate_queued}
    lines = retrain_lines(result)
    if not ended:
        # Past the deadline, or the create is another run's: the workers carry on (a
        # create without its training is searched for, never resent).
        task = TaskName.FOLLOW_RETRAIN if row.training_id else TaskName.SUBMIT_RETRAIN
        _hand_over(runtime, task, confirmed)
        return Outcome(
            result,
            lines,
            failure=f"retrain #{confirmed} is still {row.status}; the workers follow it from "
            f"here ({PROG} status --user {user_id}).",
        )
    if row.status != "succeeded":
        return Outcome(
            result,
            lines,
            failure=f"retrain #{confirmed} ended {row.status}: {row.error or 'no reason given'} "
            "(the app's row was not touched).",
        )
    if gate_queued:
        # The workers run the promotion gate's comparison (as after a page's submit).
        _hand_over(runtime, TaskName.FOLLOW_RETRAIN, confirmed)
        lines.append(
            "the promotion gate's comparison is queued for the workers; then "
            f'{PROG} promote|keep --user {user_id} --actor {actor.email} --reason "…"'
        )
    return Outcome(result, lines)


def _retrain_of(conn: Connection, user_id: str, retrain_id: int) -> Any:
    """Retrain ``retrain_id``, refused unless it is ``user_id``'s."""
    row = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one_or_none()
    if row is None:
        raise NotFound(f"No retrain #{retrain_id}.")
    if row.user_id != user_id:
        raise DataRejected(f"Retrain #{retrain_id} is user {row.user_id}'s, not {user_id}'s.")
    return row


def _newest_draft(conn: Connection, user_id: str, email: str) -> Any:
    row = conn.execute(
        select(retrains)
        .where(
            retrains.c.user_id == user_id,
            retrains.c.status == "draft",
            retrains.c.requested_by == email,
        )
        .order_by(retrains.c.id.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        raise NotFound(
            f"{email} has no draft retrain of user {user_id}: open one with "
            f"`{PROG} check --user {user_id} --actor {email}`, or name one with --retrain."
        )
    return row


def follow_until_ended(
    runtime: Runtime, retrain_id: int, deadline_seconds: float, note: Note
) -> bool:
    """Poll the training until it ends (True), noting each change of status or step; False
    at the deadline, on Ctrl-C (it stops the watching, not the training), or when there is
    no training to follow yet (another run holds its create)."""
    deadline = time.monotonic() + deadline_seconds
    try:
        return _poll(runtime, retrain_id, deadline, note)
    except KeyboardInterrupt:
        note(f"retrain #{retrain_id}: stopped watching (the training carries on)")
        return False


def _poll(runtime: Runtime, retrain_id: int, deadline: float, note: Note) -> bool:
    shown = ""
    while True:
        wait = follow.follow(runtime.ops_engine, runtime.gateway, retrain_id)
        row = _retrain(runtime, retrain_id)
        progress = f"step {row.step}/{row.steps}" if row.steps else "no step yet"
        now = f"retrain #{retrain_id}: {row.status}, {progress}"
        if now != shown:
            note(now)
            shown = now
        if wait is None:
            return row.status not in RETRAIN_RUNNING
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(wait, left))


def _hand_over(runtime: Runtime, task: TaskName, retrain_id: int) -> None:
    with runtime.ops_engine.begin() as conn:
        defer_retrain(conn, task, retrain_id)


def _retrain(runtime: Runtime, retrain_id: int) -> Any:
    with runtime.ops_engine.connect() as conn:
        return conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one()


def retrain_json(row: Any) -> dict[str, Any]:
    """One retrain as plain JSON (its photos and inputs left out)."""
    dataset_gate = row.gate or {}
    return {
        "retrain_id": row.id,
        "user_id": row.user_id,
        "status": row.status,
        "active": row.active,
        "requested_by": row.requested_by,
        "requested_at": row.requested_at,
        "reason": row.reason,
        "destination": row.destination,
        "trigger_word": row.trigger_word,
        "previous_version": row.previous_version,
        "dataset_gate_passed": dataset_gate.get("passed") if row.gate is not None else None,
        "override_reason": row.override_reason,
        "step": row.step,
        "steps": row.steps,
        "training_id": row.training_id,
        "new_version": row.new_version,
        "error": row.error,
        "decision": row.decision,
        "decided_by": row.decided_by,
        "decision_reason": row.decision_reason,
        "comparison_id": row.comparison_id,
    }


def retrain_lines(item: Mapping[str, Any]) -> list[str]:
    """One retrain as plain text (pure)."""
    step = f", step {item['step']}/{item['steps']}" if item["steps"] else ""
    lines = [
        f"retrain #{item['retrain_id']}: {item['status']}{step}, asked by "
        f"{item['requested_by']}" + (f": {item['reason']}" if item["reason"] else "")
    ]
    if item["training_id"]:
        lines.append(f"  training {item['training_id']} into {item['destination']}")
    if item["new_version"]:
        lines.append(f"  new version {item['new_version']}")
    if item["error"]:
        lines.append(f"  error: {item['error']}")
    if item["override_reason"]:
        lines.append(f"  dataset gate overridden: {item['override_reason']}")
    gate = item.get("gate")
    if gate is not None:
        reading = f": {gate['sentence']}" if gate["sentence"] else ""
        lines.append(
            f"  promotion gate: comparison #{gate['comparison_id']} {gate['status']}{reading}"
        )
    if item["decision"]:
        lines.append(
            f"  {item['decision']} by {item['decided_by']}: {item['decision_reason'] or ''}"
        )
    return lines


# -- status ------------------------------------------------------------------------------


def status_command(runtime: Runtime, user_id: str) -> Outcome:
    with runtime.engine.connect() as app:
        model_row = read_user_record(app, user_id).model_row or {}
    with runtime.ops_engine.connect() as conn:
        rows = conn.execute(
            select(retrains).where(retrains.c.user_id == user_id).order_by(retrains.c.id.desc())
        ).all()
    items = []
    for row in rows:
        item = retrain_json(row)
        if row.comparison_id is not None:
            status, reading = gate_outcome(runtime.ops_engine, row.id)
            item["gate"] = {
                "comparison_id": row.comparison_id,
                "status": status,
                "not_worse": reading.not_worse if reading else None,
                "sentence": reading.sentence if reading else None,
            }
        else:
            item["gate"] = None
        items.append(item)
    result = {
        "user_id": user_id,
        "current_version": model_row.get("replicate_version_id"),
        "retrains": items,
    }
    lines = [f"user {user_id}: current version {result['current_version'] or 'none'}"]
    for item in items:
        lines += retrain_lines(item)
    if not items:
        lines.append("no retrains yet")
    return Outcome(result, lines)


# -- cancel, promote, keep ---------------------------------------------------------------


def cancel_command(
    runtime: Runtime, actor: Actor, user_id: str, retrain_id: int | None, reason: str
) -> Outcome:
    with runtime.ops_engine.connect() as conn:
        if retrain_id is not None:
            row = _retrain_of(conn, user_id, retrain_id)
        else:
            row = conn.execute(
                select(retrains).where(
                    retrains.c.user_id == user_id,
                    retrains.c.active,
                    retrains.c.status.in_(RETRAIN_RUNNING),
                )
            ).one_or_none()
            if row is None:
                raise NotFound(f"User {user_id} has no retrain in flight: nothing to cancel.")
    if row.status not in RETRAIN_RUNNING:
        raise DataRejected(f"Retrain #{row.id} is {row.status}: only one in flight is cancelled.")
    follow.cancel(runtime.ops_engine, runtime.gateway, actor, row.id, reason)
    # One poll records what Replicate made of it (the workers' polls would as well).
    follow.follow(runtime.ops_engine, runtime.gateway, row.id)
    result = retrain_json(_retrain(runtime, row.id))
    return Outcome(result, [f"cancel asked for retrain #{row.id}", *retrain_lines(result)])


def decide_command(
    runtime: Runtime,
    actor: Actor,
    user_id: str,
    retrain_id: int | None,
    reason: str,
    decision: str,
    without_gate_reason: str | None = None,
) -> Outcome:
    allowed, why = repairs_available(runtime.settings)
    if not allowed:
        raise DataRejected(why)
    with runtime.ops_engine.connect() as conn:
        if retrain_id is not None:
            chosen = int(_retrain_of(conn, user_id, retrain_id).id)
        else:
            chosen = _awaiting_decision(conn, user_id)
    # The app's engine, as the page: the row, the retrain and the audit record commit
    # together (repairs_available said they share a database). What promoting writes is
    # the plan as read here, applied with the lock on the row as read.
    with runtime.engine.begin() as conn:
        before = promote.current_row(conn, user_id)
        if decision == "promote":
            shown = promote.promotion_preview(conn, conn, chosen)
            audit_id = promote.promote(
                conn,
                actor,
                chosen,
                shown=shown,
                reason=reason,
                without_gate_reason=without_gate_reason,
            )
        else:
            audit_id = promote.keep(
                conn,
                actor,
                chosen,
                reason=reason,
                app_row=before,
                without_gate_reason=without_gate_reason,
            )
        after = read_row(conn, user_id)
    written = {
        column: {"before": before.get(column), "after": after.get(column)}
        for column in PROMOTED_COLUMNS
        if before.get(column) != after.get(column)
    }
    result = {
        "retrain_id": chosen,
        "user_id": user_id,
        "decision": "promoted" if decision == "promote" else "kept",
        "audit_id": audit_id,
        "version_before": before.get("replicate_version_id"),
        "version_after": after.get("replicate_version_id"),
        "written": written,
    }
    return Outcome(result, decision_lines(result))


def _awaiting_decision(conn: Connection, user_id: str) -> int:
    found = conn.execute(
        select(retrains.c.id)
        .where(
            retrains.c.user_id == user_id,
            retrains.c.status == "succeeded",
            retrains.c.decision.is_(None),
            retrains.c.new_version.is_not(None),
        )
        .order_by(retrains.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(
            f"User {user_id} has no succeeded retrain awaiting a decision "
            f"({PROG} status --user {user_id} lists them)."
        )
    return int(found)


def decision_lines(result: Mapping[str, Any]) -> list[str]:
    """What a promotion or keep wrote, as plain text (pure)."""
    done = f"retrain #{result['retrain_id']} {result['decision']} (audit #{result['audit_id']})"
    if not result["written"]:
        return [
            f"{done}: nothing was written to the app's row; it keeps version "
            f"{result['version_before'] or 'none'}"
        ]
    head = (
        f"{done}: replicate_version_id {result['version_before'] or 'none'} -> "
        f"{result['version_after'] or 'none'}"
    )
    return [head] + [
        f"  {column}: {change['before']} -> {change['after']}"
        for column, change in result["written"].items()
        if column != "replicate_version_id"
    ]


# -- shared ------------------------------------------------------------------------------


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


if __name__ == "__main__":
    raise SystemExit(main())
