"""Carrying out a previewed repair, and undoing one: admin only, one transaction, audited.

Both run in ONE transaction on the caller's connection: a savepoint when the caller
already has a transaction open (the caller's commit makes the repair durable), else a
transaction of their own that commits on success. Inside it the row is locked
(``FOR UPDATE``), compared with what the preview (or the repair being undone) saw, written,
and the audit record inserted; any refusal or error rolls all of it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Transaction, select
from sqlalchemy.exc import IntegrityError

from core import audit
from core.audit import AuditRecord
from core.errors import Conflict, DataRejected, NotFound
from core.repairs.rows import (
    from_audit,
    lock_row,
    refuse_if_changed,
    refuse_taken_trigger_word,
    trigger_word_taken,
    write_row,
)
from core.repairs.values import RepairPlan
from core.roles import Actor, Permission, require
from core.schema import audit_log

REPAIR_PREFIX = "repair:"
UNDO_PREFIX = "undo:"
TRIGGER_WORD_CONSTRAINT = "user_models_trigger_word_key"


def apply_repair(conn: Connection, *, actor: Actor, plan: RepairPlan, reason: str) -> int:
    """Write ``plan`` to the user's row if it still holds ``plan.before``; return the id of
    the audit record ``repair:<action>``.

    PermissionDenied unless the actor may repair; DataRejected without a reason; Conflict
    when the row changed since the preview or the trigger word is another user's; NotFound
    when the row is gone. Nothing is written unless everything is.
    """
    require(actor, Permission.REPAIR)
    why = _reason(reason)
    try:
        with _transaction(conn):
            current = lock_row(conn, plan.user_id)
            refuse_if_changed(
                current, plan.before, since="the preview", then="Preview the repair again."
            )
            refuse_taken_trigger_word(conn, plan.user_id, plan.after)
            write_row(conn, plan.user_id, plan.after)
            return audit.record(
                conn,
                actor_email=actor.email,
                actor_role=actor.role,
                action=f"{REPAIR_PREFIX}{plan.action.value}",
                target_user_id=plan.user_id,
                before=plan.before,
                after=plan.after,
                reason=why,
                details={"explanation": plan.explanation, "evidence": plan.evidence},
            )
    except IntegrityError as exc:
        raise _conflict(exc, plan.after) from exc


def undo_repair(conn: Connection, *, actor: Actor, audit_id: int, reason: str) -> int:
    """Put back the values repair ``audit_id`` replaced, if the row still holds what it
    wrote; return the id of the audit record ``undo:<action>``.

    Refused (Conflict) when the repair was already undone or the row changed since;
    DataRejected when the record is not a repair; same permission and reason rules as
    ``apply_repair``.
    """
    require(actor, Permission.REPAIR)
    why = _reason(reason)
    restored: dict[str, Any] = {}
    try:
        with _transaction(conn):
            repair = _lock_repair_record(conn, audit_id)
            user_id, action = _undoable(conn, repair)
            restored, written = from_audit(repair.before), from_audit(repair.after)
            current = lock_row(conn, user_id)
            refuse_if_changed(
                current,
                written,
                since=f"repair #{audit_id}",
                then="Undoing it would overwrite a later change; preview a new repair instead.",
            )
            refuse_taken_trigger_word(conn, user_id, restored)
            write_row(conn, user_id, restored)
            return audit.record(
                conn,
                actor_email=actor.email,
                actor_role=actor.role,
                action=f"{UNDO_PREFIX}{action}",
                target_user_id=user_id,
                before={column: current[column] for column in restored},
                after=restored,
                reason=why,
                details={"undoes": audit_id},
            )
    except IntegrityError as exc:
        raise _conflict(exc, restored) from exc


def _transaction(conn: Connection) -> Transaction:
    return conn.begin_nested() if conn.in_transaction() else conn.begin()


def _reason(reason: str) -> str:
    stripped = (reason or "").strip()
    if not stripped:
        raise DataRejected(
            "Give a reason (what the user reported, the ticket): every repair is audited with one."
        )
    return stripped


def _lock_repair_record(conn: Connection, audit_id: int) -> AuditRecord:
    statement = select(audit_log).where(audit_log.c.id == audit_id).with_for_update()
    row = conn.execute(statement).mappings().one_or_none()
    if row is None:
        raise NotFound(f"There is no audit record #{audit_id}.")
    return AuditRecord(**dict(row))


def last_undoable_repair(conn: Connection, user_id: str) -> AuditRecord | None:
    """The user's newest repair when no undo names it yet (undoing it may still be refused
    if the row changed since): what the User page offers to undo after a reload."""
    row = (
        conn.execute(
            select(audit_log)
            .where(
                audit_log.c.target_user_id == user_id,
                audit_log.c.action.startswith(REPAIR_PREFIX),
            )
            .order_by(audit_log.c.id.desc())
            .limit(1)
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        return None
    undone = conn.execute(
        select(audit_log.c.id)
        .where(
            audit_log.c.target_user_id == user_id,
            audit_log.c.action.startswith(UNDO_PREFIX),
            audit_log.c.details["undoes"].as_integer() == row["id"],
        )
        .limit(1)
    ).first()
    return None if undone is not None else AuditRecord(**dict(row))


def _undoable(conn: Connection, repair: AuditRecord) -> tuple[str, str]:
    """The repaired user and the action name, if ``repair`` is a repair not yet undone."""
    if not repair.action.startswith(REPAIR_PREFIX) or not repair.target_user_id:
        raise DataRejected(
            f"Audit record #{repair.id} is {repair.action!r}, not a repair of a "
            "user's row; only repairs can be undone."
        )
    undone_by = conn.execute(
        select(audit_log.c.id)
        .where(
            audit_log.c.target_user_id == repair.target_user_id,
            audit_log.c.action.startswith(UNDO_PREFIX),
            audit_log.c.details["undoes"].as_integer() == repair.id,
        )
        .limit(1)
    ).scalar_one_or_none()
    if undone_by is not None:
        raise Conflict(
            f"Repair #{repair.id} was already undone by audit record #{undone_by}; "
            "it cannot be undone twice."
        )
    return repair.target_user_id, repair.action.removeprefix(REPAIR_PREFIX)


def _conflict(exc: IntegrityError, values: Mapping[str, Any]) -> Conflict:
    """A UNIQUE violation that slipped past the pre-check (a concurrent write)."""
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if constraint == TRIGGER_WORD_CONSTRAINT:
        return trigger_word_taken(values.get("trigger_word"))
    return Conflict(
        f"The database refused the change ({constraint or 'a constraint'}); "
        "nothing was changed. Read the row again and preview again."
    )
