"""Broken users as the app leaves them: drift facts in memory, their rows in PostgreSQL.

Why these helpers exist: each repair test starts from one realistic broken user (the
drift builders' histories, with the one fault the repair cures), stores the app's
``users`` and ``user_models`` rows for it on the test connection, and reads the row back
exactly as the console would before previewing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert

from core.drift import RepairAction, UserFacts
from core.repairs import read_row
from core.repairs.values import naive_utc
from core.roles import Actor, Role
from core.schema import user_models, users
from tests.drift.builders import MODEL_ID, TRIGGER, healthy, model_of, row_for, training

ADMIN = Actor("ada@example.test", Role.ADMIN)
SUPPORT = Actor("sam@example.test", Role.SUPPORT)
PRODUCT = Actor("pat@example.test", Role.PRODUCT)
OTHER_USER_ID = "45038279"


def store_user(conn: Connection, facts: UserFacts, **columns: Any) -> dict[str, Any]:
    """Insert the user and the ``user_models`` row ``facts.row`` describes (plus
    ``columns``, e.g. ``training_progress``), as the app wrote them; return the row read."""
    row = facts.row
    conn.execute(insert(users).values(id=row.user_id, email=f"{row.user_id[:8]}@example.test"))
    completed = row.training_status == "completed"
    values: dict[str, Any] = {
        "user_id": row.user_id,
        "replicate_model_id": row.replicate_model_id,
        "replicate_version_id": row.replicate_version_id,
        "trigger_word": row.trigger_word,
        "training_status": row.training_status,
        "training_id": row.training_id,
        "lora_weights_url": row.lora_weights_url,
        "failure_reason": row.failure_reason,
        "lora_scale": Decimal("1.0"),
        "training_progress": 100 if completed else 0,
        "model_name": (row.replicate_model_id or "/").split("/", 1)[1] or None,
        "model_type": "flux-dev-lora",
        "updated_at": naive_utc(row.updated_at),
        "completed_at": naive_utc(row.updated_at) if completed else None,
        **columns,
    }
    conn.execute(insert(user_models).values(**values))
    return read_row(conn, row.user_id)


def store_other_user(conn: Connection, *, trigger_word: str) -> None:
    """A legacy user whose row holds ``trigger_word``."""
    conn.execute(insert(users).values(id=OTHER_USER_ID, email="legacy@example.test"))
    conn.execute(
        insert(user_models).values(
            user_id=OTHER_USER_ID, trigger_word=trigger_word, training_status="completed"
        )
    )


@dataclass(frozen=True)
class Case:
    """One broken user, the repair that cures it, and the values it must write."""

    name: str
    action: RepairAction
    facts: UserFacts
    expected_after: Mapping[str, Any]
    columns: Mapping[str, Any] = field(default_factory=dict)


def _stale() -> Case:
    # Four retrains; the row kept the first version and its weights.
    records = tuple(training(n, photos=15) for n in range(1, 5))
    first, last = records[0], records[-1]
    facts = healthy(
        *records, replicate_version_id=first.version_hash, lora_weights_url=first.output_weights
    )
    return Case(
        "stale version",
        RepairAction.REPOINT_LATEST,
        facts,
        {"replicate_version_id": last.version_hash, "lora_weights_url": last.output_weights},
    )


def _colon_form() -> Case:
    first = training(1)
    shouted = (first.version_hash or "").upper()
    facts = healthy(first, replicate_version_id=f" {MODEL_ID}:{shouted}\n")
    return Case(
        "owner/name:HASH stored",
        RepairAction.NORMALISE_VERSION,
        facts,
        {"replicate_version_id": first.version_hash},
    )


def _renamed_trigger() -> Case:
    facts = healthy(training(1), training(2), trigger_word="user5040000c_v2")
    return Case(
        "trigger word overwritten",
        RepairAction.RESTORE_TRIGGER_WORD,
        facts,
        {"trigger_word": TRIGGER},
    )


def _version_lost() -> Case:
    first, failed = training(1, photos=15), training(2, photos=12, status="failed")
    row = row_for(
        first,
        replicate_version_id=None,
        lora_weights_url=None,
        training_status="failed",
        training_id=failed.id,
        failure_reason=failed.error,
        updated_at=failed.completed_at,
    )
    facts = UserFacts(row=row, model=model_of([first, failed]), trainings=(first, failed))
    return Case(
        "failed retrain wiped the version",
        RepairAction.RESTORE_LAST_GOOD_VERSION,
        facts,
        {
            "replicate_version_id": first.version_hash,
            "lora_weights_url": first.output_weights,
            "training_status": "completed",
            "training_id": first.id,
            "training_progress": 100,
            "failure_reason": None,
            "completed_at": naive_utc(first.completed_at),
        },
    )


def _never_polled() -> Case:
    first, second = training(1), training(2)
    facts = healthy(
        first, second, replicate_version_id=None, lora_weights_url=None, training_status="training"
    )
    return Case(
        "succeeded but never polled",
        RepairAction.SYNC_STATUS,
        facts,
        {
            "replicate_version_id": second.version_hash,
            "lora_weights_url": second.output_weights,
            "training_status": "completed",
            "training_progress": 100,
            "completed_at": naive_utc(second.completed_at),
        },
    )


def _failed_never_polled() -> Case:
    first, failed = training(1), training(2, status="failed")
    facts = UserFacts(
        row=replace(
            row_for(first),
            replicate_version_id=None,
            lora_weights_url=None,
            training_status="training",
            training_id=failed.id,
        ),
        model=model_of([first]),
        trainings=(first, failed),
    )
    return Case(
        "failed but never polled",
        RepairAction.SYNC_STATUS,
        facts,
        {"training_status": "failed", "failure_reason": "CUDA out of memory"},
    )


CASES: tuple[Case, ...] = (
    _stale(),
    _colon_form(),
    _renamed_trigger(),
    _version_lost(),
    _never_polled(),
    _failed_never_polled(),
)
