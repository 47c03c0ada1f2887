"""``promote`` / ``keep``: the promotion decision on the user's succeeded retrain, once its
gate's comparison ended: write its new version to the app's row (undoable like a repair),
or keep the current one (a decision the diagnosis then knows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from core.errors import DataRejected, NotFound
from core.repairs.availability import repairs_available
from core.repairs.rows import read_row
from core.retrain import promote
from core.retrain.cli.common import PROG, Outcome
from core.retrain.views import awaiting_decision, retrain_of_user
from core.roles import Actor
from core.runtime import Runtime

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
        chosen = _chosen_retrain(conn, user_id, retrain_id)
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


def _chosen_retrain(conn: Connection, user_id: str, retrain_id: int | None) -> int:
    """The retrain named (the user's), else the user's newest succeeded retrain awaiting a
    decision."""
    if retrain_id is not None:
        return int(retrain_of_user(conn, user_id, retrain_id).id)
    found = awaiting_decision(conn, user_id)
    if found is None:
        raise NotFound(
            f"User {user_id} has no succeeded retrain awaiting a decision "
            f"({PROG} status --user {user_id} lists them)."
        )
    return found


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
