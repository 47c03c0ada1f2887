"""Recording and reading the admins' decisions to leave a finding as it is.

A decision (``ops.decisions``) is written with who, when, why, and the values of the
user's row it was made against; the drift engine reports a finding it covers as kept by
it while it holds (``core.drift.decisions``). Admins only (checked here), audited as
``decision:keep`` / ``decision:leave_as_is`` and ``decision:withdraw``; the caller owns
the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from core import audit
from core.drift.codes import CODE_ORDER
from core.drift.decisions import Decision, row_fingerprint, row_values
from core.errors import Conflict, DataRejected, NotFound
from core.redaction import storable
from core.roles import Actor, Permission, require
from core.schema import DECISION_KINDS, decisions

DECISION_PREFIX = "decision:"
WITHDRAW_ACTION = "decision:withdraw"


def record_decision(
    conn: Connection,
    actor: Actor,
    *,
    user_id: str,
    code: str,
    kind: str,
    reason: str,
    app_row: Mapping[str, Any],
    retrain_id: int | None = None,
) -> int:
    """Leave finding ``code`` of ``user_id`` as it is, against the row as ``app_row``
    holds it; the decision's id (audited)."""
    require(actor, Permission.REPAIR)
    why = reason.strip()
    if not why:
        raise DataRejected("Say why the finding is left as it is (it is kept with the decision).")
    if kind not in DECISION_KINDS:
        raise DataRejected(f"A decision is one of {', '.join(DECISION_KINDS)}, not {kind!r}.")
    if code not in CODE_ORDER:
        raise DataRejected(f"{code!r} is not a finding code.")
    values = row_values(app_row)
    decision_id = int(
        conn.execute(
            insert(decisions)
            .values(
                user_id=user_id,
                code=code,
                kind=kind,
                reason=why,
                decided_by=actor.email,
                decided_role=actor.role.value,
                row_fingerprint=row_fingerprint(app_row),
                row_values=storable(values),  # the fingerprint (of the full row) is compared
                retrain_id=retrain_id,
            )
            .returning(decisions.c.id)
        ).scalar_one()
    )
    audit.record(
        conn,
        actor_email=actor.email,
        actor_role=actor.role,
        action=f"{DECISION_PREFIX}{kind}",
        target_user_id=user_id,
        reason=why,
        details={
            "decision_id": decision_id,
            "code": code,
            "row": values,
            "retrain_id": retrain_id,
        },
    )
    return decision_id


def withdraw_decision(conn: Connection, actor: Actor, decision_id: int, *, reason: str) -> None:
    """Withdraw a decision: the finding is judged afresh from the next diagnosis on."""
    require(actor, Permission.REPAIR)
    why = reason.strip()
    if not why:
        raise DataRejected("Say why the decision is withdrawn (it is audited).")
    row = conn.execute(
        update(decisions)
        .where(decisions.c.id == decision_id, decisions.c.withdrawn_at.is_(None))
        .values(withdrawn_at=func.now(), withdrawn_by=actor.email)
        .returning(decisions.c.user_id, decisions.c.code)
    ).one_or_none()
    if row is None:
        found = conn.execute(
            select(decisions.c.withdrawn_by).where(decisions.c.id == decision_id)
        ).one_or_none()
        if found is None:
            raise NotFound(f"There is no decision #{decision_id}.")
        raise Conflict(f"Decision #{decision_id} was already withdrawn by {found.withdrawn_by}.")
    audit.record(
        conn,
        actor_email=actor.email,
        actor_role=actor.role,
        action=WITHDRAW_ACTION,
        target_user_id=row.user_id,
        reason=why,
        details={"decision_id": decision_id, "code": row.code},
    )


def decisions_for(conn: Connection, user_ids: Iterable[str]) -> dict[str, tuple[Decision, ...]]:
    """The decisions in force (not withdrawn) for each of ``user_ids``, oldest first; a
    user without any is absent. Whether each still holds is the drift engine's to judge."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    found: dict[str, list[Decision]] = {}
    for row in conn.execute(
        select(decisions)
        .where(decisions.c.user_id.in_(wanted), decisions.c.withdrawn_at.is_(None))
        .order_by(decisions.c.id)
    ):
        found.setdefault(row.user_id, []).append(
            Decision(
                id=int(row.id),
                user_id=row.user_id,
                code=row.code,
                kind=row.kind,
                reason=row.reason,
                decided_by=row.decided_by,
                decided_at=row.decided_at,
                row_fingerprint=row.row_fingerprint,
                retrain_id=row.retrain_id,
            )
        )
    return {user_id: tuple(items) for user_id, items in found.items()}
