"""Reading the training ledger: one user's trainings for the drift engine, whose a version
is, when the account's trainings were last listed, and the app's rows the attach rules
read. Written by ``core.ledger.sync``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import TIMESTAMP, Connection, RowMapping, func, or_, select

from core.drift.facts import AppRow, DatasetFacts, TrainingRecord, VersionOwner
from core.ledger.attach import Attachable, upload_path_user
from core.ledger.datasets import facts_from_json
from core.ledger.tables import dataset_facts, ledger_state, trainings
from core.schema import user_models

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


# -- the app's rows, for attaching trainings to users ------------------------------------


def app_rows(conn: Connection, *, where: Any = None) -> list[AppRow]:
    """``user_models`` rows as ``AppRow`` values (all of them, or those ``where`` picks)."""
    statement = select(
        user_models.c.user_id,
        user_models.c.replicate_model_id,
        user_models.c.replicate_version_id,
        user_models.c.trigger_word,
        user_models.c.training_status,
        user_models.c.training_id,
        user_models.c.lora_weights_url,
        user_models.c.failure_reason,
        user_models.c.updated_at,
    )
    if where is not None:
        statement = statement.where(where)
    return [AppRow(**row._mapping) for row in conn.execute(statement)]


def candidate_rows(app: Connection, batch: Sequence[Attachable]) -> list[AppRow]:
    """The rows any attach rule could pick for these trainings, in one query."""
    ids = {training.id.strip() for training in batch}
    models = {training.destination.strip() for training in batch if training.destination}
    triggers = {
        value.strip()
        for training in batch
        if isinstance(value := training.input.get("trigger_word"), str)
    }
    users = {
        user for training in batch if (user := upload_path_user(training.input.get("input_images")))
    }
    tests = [func.btrim(user_models.c.training_id).in_(sorted(ids))]
    if models:
        tests.append(func.btrim(user_models.c.replicate_model_id).in_(sorted(models)))
    if triggers:
        tests.append(func.btrim(user_models.c.trigger_word).in_(sorted(triggers)))
    if users:
        tests.append(user_models.c.user_id.in_(sorted(users)))
    return app_rows(app, where=or_(*tests))
