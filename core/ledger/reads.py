"""Reading the training ledger: one user's trainings for the drift engine, whose a version
is, and when the account's trainings were last listed. Written by ``core.ledger.sync``.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import TIMESTAMP, Connection, RowMapping, func, select

from core.drift.facts import DatasetFacts, TrainingRecord, VersionOwner
from core.ledger.datasets import facts_from_json
from core.ledger.tables import dataset_facts, ledger_state, trainings

# When the last listing of the account's trainings completed (the database's clock, text):
# how fresh the ledger is, for pages deciding whether to ask the workers for a sync.
LISTED_AT_KEY = "trainings.listed_at"


def version_owner(conn: Connection, version_hash: str) -> VersionOwner | None:
    """The newest training in the ledger whose output is this version, whoever's it is
    (indexed by the hash: ``ix_trainings_version_hash``)."""
    row = conn.execute(
        select(trainings.c.id, trainings.c.user_id, trainings.c.destination)
        .where(func.right(trainings.c.output_version, 64) == version_hash)
        .order_by(trainings.c.created_at.desc().nulls_last(), trainings.c.id.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    return VersionOwner(training_id=row.id, user_id=row.user_id, destination=row.destination)


def ledger_for_user(conn: Connection, user_id: str) -> tuple[TrainingRecord, ...]:
    """The user's trainings as the drift engine reads them, oldest first, each with its
    dataset's facts when ``ops.dataset_facts`` has them."""
    url = trainings.c.input["input_images"].astext
    rows = conn.execute(
        select(trainings, dataset_facts.c.facts.label("dataset"))
        .select_from(trainings.outerjoin(dataset_facts, dataset_facts.c.url == func.btrim(url)))
        .where(trainings.c.user_id == user_id)
        .order_by(trainings.c.created_at.asc().nulls_first(), trainings.c.id)
    )
    return tuple(record_of(row._mapping) for row in rows)


def last_listing(conn: Connection) -> tuple[str, timedelta] | None:
    """When the last listing of the account's trainings completed (as stored: a mark that
    changes with every listing) and how long ago; None when none ever did."""
    row = conn.execute(
        select(
            ledger_state.c.value,
            func.now() - ledger_state.c.value.cast(TIMESTAMP(timezone=True)),
        ).where(ledger_state.c.key == LISTED_AT_KEY)
    ).one_or_none()
    if row is None or row[0] is None:
        return None
    return str(row[0]), row[1]


def record_of(row: RowMapping) -> TrainingRecord:
    stored = row.get("dataset")
    dataset: DatasetFacts | None = facts_from_json(stored) if stored is not None else None
    return TrainingRecord(
        id=row["id"],
        trainer_model=row["trainer_model"],
        trainer_version=row["trainer_version"],
        status=row["status"],
        input=row["input"] or {},
        output_version=row["output_version"],
        output_weights=row["output_weights"],
        error=row["error"],
        created_at=row["created_at"],
        completed_at=row["completed_at"],
        dataset=dataset,
    )
