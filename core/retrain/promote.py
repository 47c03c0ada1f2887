"""The promotion gate's decision: promote the retrain's new version into the app's row, or
keep the current one. Admins only, checked here; both audited.

Neither exists before the gate's comparison has ended: while it runs an admin would
decide blind. When it could not finish (failed, cancelled, or could not start), a
decision needs an explicit reason to go without it.

Promoting writes what the app's own progress poll would have written for this training
(the bare hash, its weights, the training id, ``completed``, progress 100, no failure
reason, and its start and end times). The admin is shown that plan (``promotion_preview``:
each column before and after, as the row is when shown), and exactly that plan is
applied, with the repairs' optimistic lock on the row as shown: refused when the row
changed since, or when what promoting writes changed. It is recorded as the repair
``repair:promote_retrain``, so the User page's Undo puts the previous version back like
any repair. Keeping writes nothing to the row; it is stored as a decision the diagnosis
knows (``core.decisions``), so the user's now-older stored version is reported as kept
by it, not as a critical STALE_VERSION. Either way the retrain stops being the user's
active one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from core import audit
from core.compare.tables import comparisons
from core.decisions import record_decision
from core.drift.codes import RepairAction
from core.errors import Conflict, DataRejected, NotFound
from core.repairs.apply import apply_repair
from core.repairs.rows import read_row
from core.repairs.values import RepairPlan, naive_utc
from core.retrain.states import RETRAIN
from core.retrain.tables import retrains
from core.roles import Actor, Permission, require

KEEP_ACTION = "retrain:keep"
# What a kept retrain leaves as it is: the row's version, now older than the model's latest.
KEPT_CODE = "STALE_VERSION"


@dataclass(frozen=True)
class DecisionReadiness:
    """Whether a retrain can be promoted or kept now, and on what terms (pure)."""

    open: bool  # a decision can be taken now
    needs_reason_without_gate: bool  # the gate's comparison did not finish
    why: str  # a sentence for the page: what is awaited, or what is missing


def readiness(retrain: Any, comparison_status: str | None) -> DecisionReadiness:
    """Whether ``retrain`` (its row) awaits a decision now, given its gate comparison's
    status (None: it has none)."""
    if retrain.decision is not None:
        return DecisionReadiness(False, False, f"Already {retrain.decision}.")
    if retrain.status != "succeeded" or not retrain.new_version:
        return DecisionReadiness(
            False, False, f"Retrain #{retrain.id} is {retrain.status}: there is no new version."
        )
    if retrain.gate_read_at is None:
        shown = comparison_status or "not started yet"
        return DecisionReadiness(
            False,
            False,
            f"The gate's comparison is {shown}: promote or keep once it has ended.",
        )
    if comparison_status == "finished":
        return DecisionReadiness(True, False, "The gate's comparison has ended.")
    missing = (
        f"The gate's comparison {comparison_status}"
        if comparison_status
        else "The gate's comparison could not run"
    )
    return DecisionReadiness(
        True,
        True,
        f"{missing}: deciding without it needs a reason of its own.",
    )


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


def _comparison_status(conn: Connection, retrain: Any) -> str | None:
    if retrain.comparison_id is None:
        return None
    found: str | None = conn.execute(
        select(comparisons.c.status).where(comparisons.c.id == retrain.comparison_id)
    ).scalar_one_or_none()
    return found


def _check_gate(conn: Connection, retrain: Any, without_gate_reason: str | None) -> str | None:
    """Refuse a decision the gate does not allow yet; the reason given for deciding
    without a finished gate (None when it finished)."""
    ready = readiness(retrain, _comparison_status(conn, retrain))
    if not ready.open:
        raise Conflict(ready.why)
    if not ready.needs_reason_without_gate:
        return None
    given = (without_gate_reason or "").strip()
    if not given:
        raise DataRejected(ready.why)
    return given


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


def promotion_preview(app: Connection, ops: Connection, retrain_id: int) -> RepairPlan:
    """What promoting would write, against the user's row as it is now (read through the
    app's connection): the plan shown to the admin, and the one ``promote`` applies."""
    retrain = ops.execute(select(retrains).where(retrains.c.id == retrain_id)).one_or_none()
    if retrain is None:
        raise NotFound(f"No retrain #{retrain_id}.")
    return plan_promotion(retrain, read_row(app, retrain.user_id))


def promote(
    conn: Connection,
    actor: Actor,
    retrain_id: int,
    *,
    shown: RepairPlan,
    reason: str,
    without_gate_reason: str | None = None,
) -> int:
    """Apply ``shown`` (the promotion the admin was shown) if the row still holds what it
    was shown with and promoting still writes the same; the audit record's id. ``conn``
    reaches the app's row and schema ops (repairs need both in one database)."""
    require(actor, Permission.RETRAIN)
    with conn.begin_nested() if conn.in_transaction() else conn.begin():
        retrain = _awaiting(conn, retrain_id)
        skipped_gate = _check_gate(conn, retrain, without_gate_reason)
        now = plan_promotion(retrain, shown.before)
        if shown.user_id != now.user_id or dict(shown.after) != dict(now.after):
            raise Conflict(
                f"What promoting retrain #{retrain_id} writes changed since it was shown; "
                "look at it again."
            )
        audit_id = apply_repair(conn, actor=actor, plan=shown, reason=_reason(reason))
        _decide(conn, actor, retrain_id, "promoted", reason, skipped_gate)
    return audit_id


def keep(
    conn: Connection,
    actor: Actor,
    retrain_id: int,
    *,
    reason: str,
    app_row: Mapping[str, Any],
    without_gate_reason: str | None = None,
) -> int:
    """Keep the user's current version: nothing is written to the row; the decision is
    stored against ``app_row`` (the row as it is, read through the app's connection) so the
    diagnosis knows it; audited. ``conn`` reaches schema ops."""
    require(actor, Permission.RETRAIN)
    why = _reason(reason)
    with conn.begin_nested() if conn.in_transaction() else conn.begin():
        retrain = _awaiting(conn, retrain_id)
        skipped_gate = _check_gate(conn, retrain, without_gate_reason)
        _decide(conn, actor, retrain_id, "kept", why, skipped_gate)
        decision_id = record_decision(
            conn,
            actor,
            user_id=retrain.user_id,
            code=KEPT_CODE,
            kind="keep",
            reason=f"retrain #{retrain_id} not promoted: {why}",
            app_row=app_row,
            retrain_id=retrain_id,
        )
        return audit.record(
            conn,
            actor_email=actor.email,
            actor_role=actor.role,
            action=KEEP_ACTION,
            target_user_id=retrain.user_id,
            reason=why,
            details={
                "retrain_id": retrain_id,
                "kept_version": retrain.previous_version,
                "new_version": retrain.new_version,
                "comparison_id": retrain.comparison_id,
                "decision_id": decision_id,
                "without_gate": skipped_gate,
            },
        )


def current_row(conn: Connection, user_id: str) -> dict[str, Any]:
    """The user's row as it is now (through the app's connection)."""
    return read_row(conn, user_id)


def _reason(reason: str) -> str:
    why = reason.strip()
    if not why:
        raise DataRejected("Say why (it is kept in the audit log).")
    return why


def _decide(
    conn: Connection,
    actor: Actor,
    retrain_id: int,
    decision: str,
    reason: str,
    without_gate: str | None,
) -> None:
    decided = RETRAIN.move(
        conn,
        retrain_id,
        "decide",
        where=[retrains.c.decision.is_(None)],
        values={
            "decision": decision,
            "decided_by": actor.email,
            "decided_at": func.now(),
            "decision_reason": reason.strip()
            + (f" (decided without the gate: {without_gate})" if without_gate else ""),
            "active": False,
        },
    )
    if decided is None:
        raise Conflict(f"Retrain #{retrain_id} was decided by someone else just now.")
