"""The promotion gate's decision: promote the retrain's new version into the app's row, or
keep the current one. Admins only, checked here; both audited.

Promoting writes what the app's own progress poll would have written for this training
(the bare hash, its weights, the training id, ``completed``, progress 100, no failure
reason, and its start and end times) in one transaction with the repairs' optimistic lock:
refused when the row changed since the admin looked at it. It is recorded as the repair
``repair:promote_retrain``, so the User page's Undo puts the previous version back like
any repair. Keeping writes nothing to the row. Either way the retrain stops being the
user's active one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, func, select, update

from core import audit
from core.drift.codes import RepairAction
from core.errors import Conflict, DataRejected, NotFound
from core.repairs.apply import apply_repair
from core.repairs.rows import read_row
from core.repairs.values import RepairPlan, naive_utc
from core.retrain.tables import retrains
from core.roles import Actor, Permission, require

KEEP_ACTION = "retrain:keep"


def _awaiting(conn: Connection, retrain_id: int) -> Any:
    row = conn.execute(
        select(retrains).where(retrains.c.id == retrain_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound(f"No retrain #{retrain_id}.")
    if row.decision is not None:
        raise Conflict(f"Retrain #{retrain_id} was already {row.decision} by {row.decided_by}.")
    if row.status != "succeeded" or not row.new_version:
        raise DataRejected(
            f"Retrain #{retrain_id} is {row.status}: only a succeeded retrain with a new "
            "version can be promoted or kept."
        )
    return row


def plan_promotion(retrain: Any, app_row: Mapping[str, Any]) -> RepairPlan:
    """What promoting ``retrain`` writes to the user's row as read (pure)."""
    after: dict[str, Any] = {
        "replicate_version_id": retrain.new_version,
        "lora_weights_url": retrain.new_weights,
        "training_status": "completed",
        "training_id": retrain.training_id,
        "training_progress": 100,
        "failure_reason": None,
        "started_at": naive_utc(retrain.submitted_at),
        "completed_at": naive_utc(retrain.finished_at),
    }
    return RepairPlan(
        user_id=str(retrain.user_id),
        action=RepairAction.PROMOTE_RETRAIN,
        before={column: app_row.get(column) for column in after},
        after=after,
        explanation=(
            f"Promote retrain #{retrain.id}: the app generates with version "
            f"{str(retrain.new_version)[:12]}… (training {retrain.training_id}) instead of "
            f"{str(retrain.previous_version or 'none')[:12]}…."
        ),
        evidence={"retrain_id": retrain.id, "comparison_id": retrain.comparison_id},
    )


def promote(
    conn: Connection,
    actor: Actor,
    retrain_id: int,
    *,
    expected_row: Mapping[str, Any],
    reason: str,
) -> int:
    """Write the new version to the user's row if it still holds ``expected_row`` (what the
    admin saw); the audit record's id. ``Conflict`` when it changed since."""
    require(actor, Permission.RETRAIN)
    with conn.begin_nested() if conn.in_transaction() else conn.begin():
        retrain = _awaiting(conn, retrain_id)
        plan = plan_promotion(retrain, expected_row)
        audit_id = apply_repair(conn, actor=actor, plan=plan, reason=reason)
        _decide(conn, actor, retrain_id, "promoted", reason)
    return audit_id


def keep(conn: Connection, actor: Actor, retrain_id: int, *, reason: str) -> int:
    """Keep the user's current version: nothing is written to the row; audited."""
    require(actor, Permission.RETRAIN)
    if not reason.strip():
        raise DataRejected("Say why the current version is kept (it is kept in the audit log).")
    with conn.begin_nested() if conn.in_transaction() else conn.begin():
        retrain = _awaiting(conn, retrain_id)
        _decide(conn, actor, retrain_id, "kept", reason)
        return audit.record(
            conn,
            actor_email=actor.email,
            actor_role=actor.role,
            action=KEEP_ACTION,
            target_user_id=retrain.user_id,
            reason=reason.strip(),
            details={
                "retrain_id": retrain_id,
                "kept_version": retrain.previous_version,
                "new_version": retrain.new_version,
                "comparison_id": retrain.comparison_id,
            },
        )


def current_row(conn: Connection, user_id: str) -> dict[str, Any]:
    """The user's row as the admin sees it before deciding (the promotion's expectation)."""
    return read_row(conn, user_id)


def _decide(conn: Connection, actor: Actor, retrain_id: int, decision: str, reason: str) -> None:
    conn.execute(
        update(retrains)
        .where(retrains.c.id == retrain_id)
        .values(
            decision=decision,
            decided_by=actor.email,
            decided_at=func.now(),
            decision_reason=reason.strip(),
            active=False,
        )
    )
