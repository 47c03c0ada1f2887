"""The audit log: every write and paid action, written in the caller's transaction.

``record`` inserts into ``ops.audit_log`` on the connection it is given and does not
commit, so the audit row and the change it describes commit (or roll back) together
when schema ops shares the app's database. ``before``/``after`` take plain row mappings;
datetimes, decimals and UUIDs are stored as strings, exactly as given.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from core.redaction import storable
from core.roles import Role
from core.schema import audit_log

MAX_PAGE = 1000


@dataclass(frozen=True)
class AuditRecord:
    """One row of ``ops.audit_log``; ``at`` is timezone-aware."""

    id: int
    at: datetime
    actor_email: str
    actor_role: str
    action: str
    target_user_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None
    details: dict[str, Any] | None


def record(
    conn: Connection,
    *,
    actor_email: str,
    actor_role: Role | str,
    action: str,
    target_user_id: str | None = None,
    before: Mapping[str, object] | None = None,
    after: Mapping[str, object] | None = None,
    reason: str | None = None,
    details: Mapping[str, object] | None = None,
) -> int:
    """Insert one audit row inside the caller's transaction; return its id."""
    email = actor_email.strip().lower()
    if not email or not action.strip():
        raise ValueError("An audit record needs the actor's email and an action name.")
    statement = (
        audit_log.insert()
        .values(
            actor_email=email,
            actor_role=Role(actor_role).value,
            action=action.strip(),
            target_user_id=target_user_id,
            before=_json_object(before),
            after=_json_object(after),
            reason=reason.strip() if reason and reason.strip() else None,
            details=_json_object(details),
        )
        .returning(audit_log.c.id)
    )
    return int(conn.execute(statement).scalar_one())


def list_records(
    conn: Connection,
    *,
    limit: int = 100,
    offset: int = 0,
    actor: str | None = None,
    action: str | None = None,
    user_id: str | None = None,
) -> list[AuditRecord]:
    """Newest first, optionally filtered by actor email, action and target user."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ValueError(f"limit must be 1..{MAX_PAGE} and offset >= 0 (got {limit}, {offset}).")
    statement = (
        select(audit_log)
        .where(*_filters(actor=actor, action=action, user_id=user_id))
        .order_by(audit_log.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [AuditRecord(**row) for row in conn.execute(statement).mappings()]


def count_records(
    conn: Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    user_id: str | None = None,
) -> int:
    """How many rows ``list_records`` would page through with the same filters."""
    statement = (
        select(func.count())
        .select_from(audit_log)
        .where(*_filters(actor=actor, action=action, user_id=user_id))
    )
    return int(conn.execute(statement).scalar_one())


def distinct_actions(conn: Connection) -> list[str]:
    """Every action name the log holds, sorted (for the Audit page's filter)."""
    statement = select(audit_log.c.action).distinct().order_by(audit_log.c.action)
    return [str(action) for action in conn.execute(statement).scalars()]


def _filters(
    *, actor: str | None, action: str | None, user_id: str | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if actor is not None:
        conditions.append(audit_log.c.actor_email == actor.strip().lower())
    if action is not None:
        conditions.append(audit_log.c.action == action)
    if user_id is not None:
        conditions.append(audit_log.c.target_user_id == user_id)
    return conditions


def _json_object(value: Mapping[str, object] | None) -> dict[str, Any] | None:
    """``value`` as stored: JSON, with every URL in it without its secrets."""
    if value is None:
        return None
    return {str(key): storable(_json_value(item)) for key, item in value.items()}


def _json_value(value: object) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return _json_value(value.value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, Sequence | set | frozenset) and not isinstance(value, bytes | bytearray):
        return [_json_value(item) for item in value]
    raise TypeError(f"Cannot store {type(value).__name__} in the audit log: {value!r}")
