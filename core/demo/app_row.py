"""The app's writes to a user's ``user_models`` row, as pure transitions of a frozen value.

The app keeps one row per user and overwrites it on every training (app-facts,
"Training"): the submit resets it, the progress poll fills it on success or marks it
failed. The demo replays those writes in order, including the faulty variants in
``Completion``, so each persona's row is what the app would have left.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from core.app.calls import APP_MODEL_TYPE, first_trigger_word
from core.demo.script import Completion
from core.gateway.values import Training


@dataclass(frozen=True)
class ModelRow:
    """The ``user_models`` columns the app writes (the rest keep their defaults)."""

    user_id: str
    trigger_word: str
    replicate_model_id: str | None
    replicate_version_id: str | None
    training_status: str
    training_id: str | None
    lora_weights_url: str | None
    lora_scale: float
    training_progress: int
    failure_reason: str | None
    model_name: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None

    def columns(self) -> dict[str, Any]:
        """The row as ``user_models`` column values."""
        return {
            "user_id": self.user_id,
            "replicate_model_id": self.replicate_model_id,
            "replicate_version_id": self.replicate_version_id,
            "trigger_word": self.trigger_word,
            "training_status": self.training_status,
            "training_id": self.training_id,
            "lora_weights_url": self.lora_weights_url,
            "lora_scale": self.lora_scale,
            "training_progress": self.training_progress,
            "failure_reason": self.failure_reason,
            "model_name": self.model_name,
            "model_type": APP_MODEL_TYPE,
            "is_luxury": False,
            "is_test": False,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
        }


def is_retrain(row: ModelRow | None) -> bool:
    """The app's only retrain test: the row exists and says ``completed``."""
    return row is not None and row.training_status == "completed"


def trigger_for_next_training(row: ModelRow | None, user_id: str) -> str:
    """A retrain keeps the row's trigger; anything else looks like a first training."""
    if row is not None and is_retrain(row):
        return row.trigger_word
    return first_trigger_word(user_id)


def reset_for_submit(
    row: ModelRow | None,
    *,
    user_id: str,
    trigger_word: str,
    lora_scale: float,
    at: datetime,
    keep_version: bool = False,
) -> ModelRow:
    """Step 4 of the upload route: ``pending``, and the last attempt's values cleared
    (``replicate_model_id`` kept). ``keep_version`` is the older retrain path that skipped
    clearing the version and weights."""
    if row is None:
        return ModelRow(
            user_id=user_id,
            trigger_word=trigger_word,
            replicate_model_id=None,
            replicate_version_id=None,
            training_status="pending",
            training_id=None,
            lora_weights_url=None,
            lora_scale=lora_scale,
            training_progress=0,
            failure_reason=None,
            model_name=None,
            created_at=at,
            updated_at=at,
            started_at=None,
            completed_at=None,
        )
    return replace(
        row,
        trigger_word=trigger_word,
        training_status="pending",
        training_id=None,
        replicate_version_id=row.replicate_version_id if keep_version else None,
        lora_weights_url=row.lora_weights_url if keep_version else None,
        started_at=None,
        completed_at=None,
        failure_reason=None,
        training_progress=0,
        updated_at=at,
    )


def submitted(row: ModelRow, *, training: Training, destination: str, at: datetime) -> ModelRow:
    """Step 7: the training id, the destination and ``training``."""
    return replace(
        row,
        training_id=training.id,
        replicate_model_id=destination,
        model_name=destination.split("/", 1)[1],
        training_status="training",
        started_at=at,
        updated_at=at,
    )


def polled(
    row: ModelRow,
    *,
    training: Training,
    newest_version: str | None,
    completion: Completion,
    at: datetime,
) -> ModelRow:
    """What the progress poll writes once the training is terminal."""
    if completion is Completion.NEVER_POLLED:
        return row
    if training.status != "succeeded":
        return replace(
            row,
            training_status="failed",
            failure_reason=training.error or f"Training {training.status}",
            updated_at=at,
        )
    done = replace(
        row,
        training_status="completed",
        training_progress=100,
        completed_at=at,
        updated_at=at,
        failure_reason=None,
    )
    if completion is Completion.KEPT_PREVIOUS and row.replicate_version_id:
        return done
    recorded_hash = training.version_hash
    if newest_version and newest_version != recorded_hash:
        recorded_hash = newest_version  # the app prefers the model's newest listed version
    stored: str | None = recorded_hash
    if completion is Completion.FULL_VERSION:
        stored = training.output_version
    elif completion is Completion.TRAINER_VERSION:
        stored = training.trainer_version
    return replace(done, replicate_version_id=stored, lora_weights_url=training.output_weights)
