"""Reading, locking and writing one user's ``user_models`` row for repairs.

Values travel through the audit log as JSON (datetimes as ISO strings, decimals as
strings); ``from_audit`` turns them back into the column's Python type so an undo writes
and compares exactly what was there.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select, update

from core.errors import Conflict, DataRejected, NotFound
from core.redaction import lost_secrets, storable
from core.repairs.values import WRITABLE_COLUMNS
from core.schema import user_models


def read_row(conn: Connection, user_id: str) -> dict[str, Any]:
    """Every column of the user's ``user_models`` row; NotFound when there is none."""
    found = conn.execute(select(user_models).where(user_models.c.user_id == user_id))
    row = found.mappings().one_or_none()
    if row is None:
        raise NotFound(
            f"User {user_id} has no user_models row (they never started a "
            "training), so there is nothing to repair."
        )
    return dict(row)


def lock_row(conn: Connection, user_id: str) -> dict[str, Any]:
    """The row, locked (``FOR UPDATE``) until the caller's transaction ends."""
    statement = select(user_models).where(user_models.c.user_id == user_id).with_for_update()
    row = conn.execute(statement).mappings().one_or_none()
    if row is None:
        raise NotFound(f"User {user_id} no longer has a user_models row; nothing was changed.")
    return dict(row)


def _shown(value: Any) -> str:
    return repr(value.isoformat() if isinstance(value, datetime) else value)


def refuse_if_changed(
    current: Mapping[str, Any], expected: Mapping[str, Any], *, since: str, then: str
) -> None:
    """Conflict naming every column whose current value is not ``expected``'s."""
    changed = [
        f"{column} is now {_shown(current.get(column))}, {since} had {_shown(value)}"
        for column, value in expected.items()
        # Audit records keep URLs without their secrets: compared as kept.
        if storable(current.get(column)) != storable(value)
    ]
    if changed:
        raise Conflict(f"The row changed since {since}: {'; '.join(changed)}. {then}")


def refuse_taken_trigger_word(conn: Connection, user_id: str, values: Mapping[str, Any]) -> None:
    """Conflict when ``values`` sets a trigger word another user's row holds (UNIQUE)."""
    word = values.get("trigger_word")
    if word is None:
        return
    holder = conn.execute(
        select(user_models.c.user_id).where(
            user_models.c.trigger_word == word, user_models.c.user_id != user_id
        )
    ).scalar_one_or_none()
    if holder is not None:
        raise trigger_word_taken(word, holder)


def trigger_word_taken(word: object, holder: str | None = None) -> Conflict:
    who = f"user {holder}" if holder else "another user"
    return Conflict(
        f"The trigger word {word!r} is held by {who} (trigger words are unique); "
        "nothing was changed. Resolve that user's row first."
    )


def write_row(conn: Connection, user_id: str, values: Mapping[str, Any]) -> None:
    """UPDATE the given columns, and ``updated_at = now()`` as the app does."""
    unknown = set(values) - set(WRITABLE_COLUMNS)
    if unknown:
        raise DataRejected(f"Repairs never write {sorted(unknown)}.")
    conn.execute(
        update(user_models)
        .where(user_models.c.user_id == user_id)
        .values(**values, updated_at=func.now())
    )


def from_audit(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Column values stored in an audit record, back in their columns' Python types."""
    if not values:
        raise DataRejected("The audit record holds no column values to restore.")
    unknown = set(values) - set(WRITABLE_COLUMNS)
    if unknown:
        raise DataRejected(
            f"The audit record names columns repairs never write: {sorted(unknown)}."
        )
    lost = sorted(
        column for column, value in values.items() if isinstance(value, str) and lost_secrets(value)
    )
    if lost:
        raise DataRejected(
            f"The audit record keeps {', '.join(lost)} without the URL's signature or "
            "password, so it cannot be written back from here; set it by hand."
        )
    return {column: _typed(column, value) for column, value in values.items()}


def _typed(column: str, value: Any) -> Any:
    if value is None:
        return None
    python_type = user_models.c[column].type.python_type
    if python_type is datetime:
        return datetime.fromisoformat(value)
    if python_type is Decimal:
        return Decimal(value)
    return value
