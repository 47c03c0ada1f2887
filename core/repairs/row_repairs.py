"""Planners for the repairs of the row's other fields: restore_trigger_word, sync_status.

Choices where the brief leaves room:
- restore_trigger_word reads the trained word exactly as the drift engine does (the
  training that produced the stored version, else the latest succeeded one; compared
  stripped), so it applies exactly when TRIGGER_WORD_MISMATCH is raised.
- sync_status applies only when the row's status disagrees with Replicate's (as
  STATUS_OUT_OF_SYNC); it writes what the app's progress poll writes (``core.demo.app_row``
  models the same poll): on success the training's own version and weights (not the
  model's newest version, which the app would prefer), progress 100, no failure reason
  and the training's completion time; on failure the error, or ``Training <status>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.drift.codes import ROW_STATUS_FOR_REPLICATE, RepairAction
from core.drift.context import Context
from core.drift.facts import blank_to_none
from core.errors import DataRejected
from core.repairs.values import RepairPlan, completed_target, make_plan


def plan_restore_trigger_word(ctx: Context, row: Mapping[str, Any]) -> RepairPlan:
    record, reference = ctx.stored_producer, "made the stored version"
    if record is None:
        record, reference = ctx.last_succeeded, "is the user's latest succeeded training"
    if record is None:
        raise DataRejected(
            "No training in this user's ledger made the stored version and "
            "none succeeded, so the trained trigger word is unknown."
        )
    trained = blank_to_none(record.trigger_word)
    if trained is None:
        raise DataRejected(
            f"Training {record.id} ({reference}) has no trigger_word in its "
            "input, so the trained word is unknown."
        )
    stored = ctx.row.trigger_word
    if blank_to_none(stored) == trained:
        raise DataRejected(
            f"The row's trigger word is already {trained!r}, the word training "
            f"{record.id} taught the LoRA; nothing to restore."
        )
    return make_plan(
        RepairAction.RESTORE_TRIGGER_WORD,
        row,
        {"trigger_word": trained},
        explanation=(
            f"The row's trigger word {stored!r} is not the word {trained!r} that the "
            f"user's training ({reference}) taught the model, so the app's prompts get no "
            f"likeness. Put back {trained!r}."
        ),
        evidence={
            "stored_trigger_word": stored,
            "trained_trigger_word": trained,
            "training_id": record.id,
            "training_is": reference,
            "version": record.version_hash,
        },
        already=f"The row's trigger word is already {trained!r}; nothing to restore.",
    )


def plan_sync_status(ctx: Context, row: Mapping[str, Any]) -> RepairPlan:
    training_id = blank_to_none(ctx.row.training_id)
    if training_id is None:
        raise DataRejected(
            "The row has no training_id, so there is no Replicate status to sync with."
        )
    record = ctx.training(training_id)
    if record is None:
        raise DataRejected(
            f"Training {training_id} is not in this user's ledger; fetch it "
            "from Replicate (scan the user again), then preview again."
        )
    expected = ROW_STATUS_FOR_REPLICATE.get(record.status)
    if expected is None:
        raise DataRejected(
            f"Replicate reports training {record.id} as {record.status!r}, a "
            "status the app does not map; nothing to sync."
        )
    status = ctx.row.training_status
    if status == expected:
        raise DataRejected(
            f"The row already says {status!r}, matching Replicate's "
            f"{record.status!r} for training {record.id}; nothing to sync."
        )
    target: dict[str, Any]
    if record.succeeded:
        version, weights = record.version_hash, blank_to_none(record.output_weights)
        if version is None or weights is None:
            raise DataRejected(
                f"Training {record.id} succeeded but Replicate returned no "
                "version or no weights for it; the row cannot be completed."
            )
        target = {
            **completed_target(record, version, completed_at=True),
            "lora_weights_url": weights,
        }
        outcome = (
            f"completed with the version it made ({ctx.names.version(version)}) and its "
            "weights file"
        )
    elif expected == "failed":
        reason = record.error or f"Training {record.status}"
        target = {"training_status": "failed", "failure_reason": reason}
        outcome = f"failed with the reason {reason!r}"
    else:
        target = {"training_status": "training"}
        outcome = "training, as Replicate is still running it"
    return make_plan(
        RepairAction.SYNC_STATUS,
        row,
        target,
        explanation=(
            f"The row says {status!r} but Replicate says its training "
            f"{record.status}: the app never checked it to the end. Mark the row "
            f"{outcome}, as the app's progress check would have."
        ),
        evidence={
            "training_id": record.id,
            "row_status": status,
            "replicate_status": record.status,
            "expected_row_status": expected,
            "training_error": record.error,
            "output_version": record.output_version,
            "output_weights": record.output_weights,
            "training_completed_at": record.completed_at,
        },
        already=f"The row already matches training {record.id}; nothing to sync.",
    )
