"""What the retrain subcommands share: their result, one retrain as JSON and as plain
text, and the retrain as stored now."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row

from core.retrain.views import read_retrain
from core.runtime import Runtime

PROG = "python -m core.retrain"


@dataclass(frozen=True)
class Outcome:
    """A command's result: ``result`` is the JSON printed, ``lines`` the plain text;
    ``failure`` (exit 1) when the command ran but did not get what it was asked for."""

    result: dict[str, Any]
    lines: list[str]
    failure: str | None = None


def stored_retrain(runtime: Runtime, retrain_id: int) -> Row[Any]:
    """The retrain as stored now (a read of its own: the workers may have moved it)."""
    with runtime.ops_engine.connect() as conn:
        return read_retrain(conn, retrain_id)


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


def one_line(message: object) -> str:
    """A message on one line (stderr is read line by line)."""
    return " ".join(str(message).split())
