"""``check``: open a draft retrain of the user, add the photos given and the earlier
trainings', check every one here, and report each verdict, the dataset gate and the
training parameters. A blocked gate is reported, not an error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.cli import note
from core.imaging.faces import SharedReaders
from core.retrain import draft, submit
from core.retrain.cli.common import PROG, Outcome
from core.retrain.measure import PhotoMeasurer
from core.retrain.opening import open_retrain
from core.retrain.plan import TrainingPlan, plan_of_draft
from core.retrain.views import read_retrain, retrain_photos_of
from core.roles import Actor
from core.runtime import Runtime


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
    problem = draft.load_previous(runtime.ops_engine, runtime.gateway, retrain_id, SharedReaders(1))
    note(f"draft retrain #{retrain_id}: checking every photo (faces, size, sharpness, light)")
    with PhotoMeasurer() as measurer:
        draft.measure_draft(runtime.ops_engine, measurer, retrain_id)
    with runtime.ops_engine.begin() as conn:
        draft.rejudge(conn, retrain_id)
        if problem:
            draft.note_problem(conn, retrain_id, problem)
    with runtime.ops_engine.connect() as conn:
        checked = retrain_photos_of(conn, retrain_id, thumbnails=False)
        dataset_gate = draft.draft_gate(conn, retrain_id)
        row = read_retrain(conn, retrain_id)
    kept = sum(1 for photo in checked if photo.kept)
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
            for photo in checked
        ],
        "kept": kept,
        "gate": submit.gate_json(dataset_gate),
        "parameters": plan_json(plan),
    }
    return Outcome(result, check_lines(result, actor.email))


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
