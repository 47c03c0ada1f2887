"""Planners for the version repairs: repoint_latest, normalise_version and
restore_last_good_version. Each reads the drift ``Context`` (built from the row as read)
and returns a ``RepairPlan`` or raises ``DataRejected`` saying why it does not apply.

Choices where the brief leaves room:
- A repair that sets ``completed`` writes what the app's success poll writes for the
  training that made the version (``completed_target``), including ``training_id``: a
  completed row pointing at a failed training would be STATUS_OUT_OF_SYNC at once, and
  the next poll of that training would undo the repair.
- repoint_latest and restore_last_good_version refuse while a training is running.
- normalise_version refuses when the hash it names is known not to be a version of the
  row's model: normalising would keep a wrong version (repoint instead).
- restore_last_good_version takes the newest succeeded training whose version still
  exists, and refuses when that version lives in another model than the row's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.drift.codes import RepairAction
from core.drift.context import Context
from core.drift.facts import TrainingRecord, blank_to_none
from core.drift.findings import short
from core.errors import DataRejected
from core.gateway.values import is_version_hash
from core.repairs.values import (
    RepairPlan,
    completed_target,
    make_plan,
    refuse_while_training,
    when_text,
)
from core.versions import normalise_version


def _model_versions_known(ctx: Context, repair: str) -> None:
    if ctx.model_id is None:
        raise DataRejected(
            f"The row names no replicate_model_id, so there is nothing to "
            f"{repair}; find the user's model first."
        )
    if ctx.model is None:
        raise DataRejected(
            f"The versions of {ctx.model_id} were not fetched from Replicate; "
            "scan the user again, then preview again."
        )
    if not ctx.model.found:
        raise DataRejected(
            f"{ctx.model_id} does not exist on Replicate (404), so it has no version to point to."
        )


def _stored_description(ctx: Context) -> str:
    comparison = ctx.comparison
    if ctx.stored_hash is None:
        return "no version"
    named = ctx.names.version(ctx.stored_hash)
    if comparison is not None and comparison.is_version_of_model is False:
        return f"{named}, which is not a version of the user's model"
    if comparison is not None and comparison.versions_behind:
        plural = "version" if comparison.versions_behind == 1 else "versions"
        return f"{named}, {comparison.versions_behind} {plural} behind"
    return named


def plan_repoint_latest(ctx: Context, row: Mapping[str, Any]) -> RepairPlan:
    refuse_while_training(ctx, "repointing")
    _model_versions_known(ctx, "repoint")
    latest = ctx.latest_version
    if latest is None:
        raise DataRejected(f"{ctx.model_id} has no versions yet; retrain into it instead.")
    record = ctx.latest_producer
    if record is None:
        raise DataRejected(
            f"No succeeded training of this user produced the latest version {short(latest)}… "
            f"of {ctx.model_id}, so its weights are unknown; find that training on Replicate "
            "before repointing."
        )
    weights = blank_to_none(record.output_weights)
    if weights is None:
        raise DataRejected(
            f"Training {record.id} made the latest version but Replicate "
            "returned no weights URL for it; repointing would leave hf_lora "
            "empty."
        )
    target = {**completed_target(record, latest, completed_at=False), "lora_weights_url": weights}
    return make_plan(
        RepairAction.REPOINT_LATEST,
        row,
        target,
        explanation=(
            f"The app generates with {_stored_description(ctx)}. Point it at "
            f"{ctx.names.version(latest)}, the model's newest version, made by the user's "
            f"training of {when_text(record.completed_at)}, with that training's weights "
            "file, so the app generates with what Replicate's site runs."
        ),
        evidence={
            "model_id": ctx.model_id,
            "stored_version": ctx.row.replicate_version_id,
            "latest_version": latest,
            "latest_training_id": record.id,
            "latest_weights_url": weights,
            "versions_behind": ctx.comparison.versions_behind if ctx.comparison else None,
            "version_count": ctx.comparison.version_count if ctx.comparison else None,
        },
        already=(
            f"The row already points at the latest version {short(latest)}… with the "
            f"weights of training {record.id}; there is nothing to repoint."
        ),
    )


def plan_normalise_version(ctx: Context, row: Mapping[str, Any]) -> RepairPlan:
    raw = ctx.row.replicate_version_id
    bare = normalise_version(raw)
    if bare is None:
        raise DataRejected("No version is stored, so there is nothing to normalise.")
    if not is_version_hash(bare):
        raise DataRejected(
            f"The stored value {raw!r} does not name a 64-hex version id (it ends in "
            f"{len(bare)} characters that are not one), so there is nothing to "
            "normalise; repoint to the latest version instead."
        )
    comparison = ctx.comparison
    if comparison is not None and comparison.is_version_of_model is False:
        raise DataRejected(
            f"The hash the row names, {short(bare)}…, is not a version of {ctx.model_id}; "
            "normalising would keep a wrong version. Repoint to the latest version instead."
        )
    member = comparison.is_version_of_model if comparison is not None else None
    checked = (
        ""
        if member
        else " The model's versions were not fetched, so it is not checked against them."
    )
    return make_plan(
        RepairAction.NORMALISE_VERSION,
        row,
        {"replicate_version_id": bare},
        explanation=(
            f"The row stores the version with more around it ({raw!r}) than the version "
            f"id alone. Store {ctx.names.version(bare)} on its own, the way the app "
            f"should have.{checked}"
        ),
        evidence={
            "stored_version": raw,
            "normalised_version": bare,
            "model_id": ctx.model_id,
            "is_version_of_model": member,
            "latest_version": ctx.latest_version,
        },
        already="The stored version is already a bare 64-hex version id; nothing to normalise.",
    )


def _last_good(ctx: Context) -> TrainingRecord:
    for record in reversed(ctx.succeeded):
        model = ctx.facts.model_facts(record.destination)
        if model is not None and model.has_version(record.version_hash):
            return record
    raise DataRejected(
        "No succeeded training of this user made a version that still exists (or the models' "
        "versions were not fetched); there is no good version to restore. Retrain instead."
    )


def plan_restore_last_good_version(ctx: Context, row: Mapping[str, Any]) -> RepairPlan:
    status = ctx.row.training_status
    if status not in ("failed", "pending"):
        raise DataRejected(
            f"Restoring the last good version is for a row a failed retrain left 'failed' or "
            f"'pending'; this row is {status!r}. Use repoint_latest or sync_status instead."
        )
    refuse_while_training(ctx, "restoring the last good version")
    good = _last_good(ctx)
    version = good.version_hash
    weights = blank_to_none(good.output_weights)
    if version is None or weights is None:
        raise DataRejected(
            f"Training {good.id} made the last good version but Replicate "
            "returned no weights URL for it; it cannot be restored as it was."
        )
    if good.destination != ctx.model_id:
        raise DataRejected(
            f"The last good version {short(version)}… belongs to {good.destination}, but the "
            f"row's model is {ctx.model_id or '(none)'}; decide which model the user should "
            "use before restoring."
        )
    failed_id = blank_to_none(ctx.row.training_id)
    failed = ctx.training(failed_id)
    what_failed = (
        f"Retrain {failed_id} {failed.status if failed else 'did not finish'}"
        if failed_id
        else "The last retrain did not finish"
    )
    target = {**completed_target(good, version, completed_at=True), "lora_weights_url": weights}
    return make_plan(
        RepairAction.RESTORE_LAST_GOOD_VERSION,
        row,
        target,
        explanation=(
            f"{what_failed} after the app had cleared the row, so the user has "
            f"nothing to generate with. Point the app back at "
            f"{ctx.names.version(version)}, made by the user's training of "
            f"{when_text(good.completed_at)}, with that training's weights file: it still "
            "exists in the user's model."
        ),
        evidence={
            "training_status": status,
            "stored_version": ctx.row.replicate_version_id,
            "failed_training_id": failed_id,
            "failure_reason": ctx.row.failure_reason,
            "last_good_training_id": good.id,
            "last_good_version": version,
            "last_good_weights_url": weights,
            "model_id": good.destination,
            "last_good_completed_at": good.completed_at,
        },
        already="The row already holds the last good version; nothing to restore.",
    )
