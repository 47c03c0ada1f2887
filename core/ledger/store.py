"""Writing the training ledger's tables (schema ops) for ``core.ledger.sync``: upserts that
keep the strongest attachment, the ids Replicate answered 404 for, bookmarks.

A training is kept with the URLs in its input, weights and error as ``core.redaction``
stores them (no userinfo, no signature): the ZIP a presigned ``input_images`` names is read
again from Replicate's record of the training when its photos are downloaded
(``core.ledger.sources``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, case, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert

from core.gateway.values import Training
from core.ledger.attach import ATTACH_RULES
from core.ledger.tables import ledger_state, trainings, trainings_not_found
from core.redaction import storable

T = TypeVar("T")


def row_values(
    training: Training, attachment: tuple[str, str] | tuple[None, None]
) -> dict[str, Any]:
    user_id, rule = attachment
    return {
        "id": training.id,
        "user_id": user_id,
        "attached_by": rule,
        "trainer_model": training.trainer_model,
        "trainer_version": training.trainer_version,
        "destination": training.destination,
        "status": training.status,
        "input": storable(dict(training.input)),
        "output_version": training.output_version,
        "output_weights": storable(training.output_weights),
        "error": storable(training.error),
        "created_at": training.created_at,
        "started_at": training.started_at,
        "completed_at": training.completed_at,
    }


def upsert(conn: Connection, values: list[dict[str, Any]]) -> None:
    if not values:
        return
    statement = insert(trainings).values(values)
    new = statement.excluded
    replaced = {
        name: new[name]
        for name in (
            "trainer_model",
            "trainer_version",
            "destination",
            "status",
            "input",
            "output_version",
            "output_weights",
            "error",
            "created_at",
            "started_at",
            "completed_at",
        )
    }
    # The strongest evidence ever seen wins: the app's rows forget (a retrain clears
    # training_id), so a weaker rule or none never overrides a stronger earlier one.
    keeps_old = or_(
        new.user_id.is_(None), rule_rank(new.attached_by) > rule_rank(trainings.c.attached_by)
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[trainings.c.id],
            set_={
                **replaced,
                "synced_at": func.now(),
                "user_id": case((keeps_old, trainings.c.user_id), else_=new.user_id),
                "attached_by": case((keeps_old, trainings.c.attached_by), else_=new.attached_by),
            },
        )
    )


def rule_rank(column: Any) -> Any:
    """0 for the strongest attach rule, larger for weaker ones, 99 for none."""
    return case({rule: rank for rank, rule in enumerate(ATTACH_RULES)}, value=column, else_=99)


def ledger_users(conn: Connection, ids: Iterable[str]) -> dict[str, str | None]:
    """Which of ``ids`` the ledger holds, each with its user (None: unattached)."""
    wanted = sorted(set(ids))
    found: dict[str, str | None] = {}
    for chunk in chunks(wanted, 5000):
        found.update(
            (row.id, row.user_id)
            for row in conn.execute(
                select(trainings.c.id, trainings.c.user_id).where(trainings.c.id.in_(chunk))
            )
        )
    return found


def remember_missing(conn: Connection, missing: Sequence[str], found: Iterable[str]) -> None:
    """Remember the ids answered 404 (when, again); forget those Replicate now has."""
    if missing:
        statement = insert(trainings_not_found).values([{"id": id_} for id_ in missing])
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[trainings_not_found.c.id],
                set_={"last_answered_at": func.now()},
            )
        )
    # The table holds a few ids; a full listing sees every training of the account.
    remembered = set(conn.execute(select(trainings_not_found.c.id)).scalars())
    now_found = sorted(remembered.intersection(found))
    if now_found:
        conn.execute(delete(trainings_not_found).where(trainings_not_found.c.id.in_(now_found)))


def read_state(conn: Connection, key: str) -> str | None:
    value: str | None = conn.execute(
        select(ledger_state.c.value).where(ledger_state.c.key == key)
    ).scalar_one_or_none()
    return value


def set_state(conn: Connection, key: str, value: str | ColumnElement[str]) -> None:
    statement = insert(ledger_state).values(key=key, value=value)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[ledger_state.c.key], set_={"value": statement.excluded.value}
        )
    )


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
