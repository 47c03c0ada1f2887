"""Facts built in memory, shaped exactly as the app and Replicate leave them.

Why these helpers exist: every drift test starts from a user whose row the app wrote
correctly after their latest training (``healthy``) and changes the one value the test is
about, so a test reads as "this user, but ...". Trainings carry the app's real input:
the fast-flux trainer, ``user`` + 8 chars as trigger, and the adaptive parameters the
app picks from the photo count (app-facts.md), so parameter findings follow honestly
from the photo counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from core.drift import AppRow, DatasetFacts, ModelFacts, TrainingRecord, UserFacts, diagnose
from core.gateway.values import ModelVersion

USER_ID = "5040000c-5ce6-4114-8319-6ec1a632f749"
MODEL_ID = "sandrasocial/user-5040000c-selfie-lora"
TRIGGER = "user5040000c"
FAST_TRAINER = "replicate/fast-flux-trainer"
FAST_TRAINER_VERSION = "f463fbfc97389e10a2f443a8a84b6953b1058eafbf0c9af4d84457ff07cb04db"
OSTRIS_TRAINER = "ostris/flux-dev-lora-trainer"
OSTRIS_TRAINER_VERSION = "00a42d5ae794dc298e544598c60479a1295414987216ceaf96f936b40a2bfe70"
T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


def version_hash(label: str) -> str:
    """A stable 64-lowercase-hex version id named by ``label``."""
    return hashlib.sha256(label.encode()).hexdigest()


def adaptive_input(
    photo_count: int,
    *,
    trigger: str = TRIGGER,
    zip_url: str = "https://blob.example/zips/selfies.zip",
) -> dict[str, Any]:
    """The input the app sends the trainer for ``photo_count`` photos (app-facts.md)."""
    if photo_count >= 15:
        steps, rank, repeats = 1400, 48, 20
    elif photo_count >= 10:
        steps, rank, repeats = 1400, 40, max(15, int(1.3 * photo_count))
    else:
        steps, rank, repeats = 1200, 32, max(10, int(1.5 * photo_count))
    return {
        "input_images": zip_url,
        "trigger_word": trigger,
        "steps": steps,
        "lora_rank": rank,
        "network_alpha": rank,
        "num_repeats": repeats,
        "optimizer": "adamw_bf16",
        "batch_size": 1,
        "resolution": "1024",
        "autocaption": True,
        "learning_rate": 0.00008,
        "caption_dropout_rate": 0.15,
        "cache_latents_to_disk": False,
        "save_every_n_steps": 250,
        "guidance_scale_training": 1.0,
        "lr_scheduler": "constant_with_warmup",
    }


def dataset(
    count: int = 16,
    *,
    short_side: int = 1024,
    jpeg_quality: int | None = 88,
    sharpness: float = 180.0,
    failing: int = 0,
    by_reason: Mapping[str, int] | None = None,
) -> DatasetFacts:
    """A measured dataset: by default 16 sharp 1024 px single-face selfies."""
    return DatasetFacts(
        image_count=count,
        median_short_side=short_side,
        jpeg_quality=jpeg_quality,
        median_sharpness=sharpness,
        photos_failing=failing,
        failing_by_reason=dict(by_reason or ({"blurry": failing} if failing else {})),
    )


def training(
    n: int,
    *,
    photos: int = 16,
    destination: str = MODEL_ID,
    status: str = "succeeded",
    trigger: str = TRIGGER,
    trainer: str = FAST_TRAINER,
    trainer_version: str = FAST_TRAINER_VERSION,
    data: DatasetFacts | None = None,
    input_changes: Mapping[str, Any] | None = None,
) -> TrainingRecord:
    """The ``n``-th training of the user (created ``n`` days after T0)."""
    training_id = f"tr{n:02d}{destination.rsplit('/', 1)[-1][:6]}"
    created = T0 + timedelta(days=n)
    done = status == "succeeded"
    return TrainingRecord(
        id=training_id,
        trainer_model=trainer,
        trainer_version=trainer_version,
        status=status,
        input={**adaptive_input(photos, trigger=trigger), **(input_changes or {})},
        output_version=f"{destination}:{version_hash(training_id)}" if done else None,
        output_weights=(
            f"https://replicate.delivery/xezq/{training_id}/trained_model.tar" if done else None
        ),
        error="CUDA out of memory" if status == "failed" else None,
        created_at=created,
        completed_at=created + timedelta(minutes=20)
        if status not in ("starting", "processing")
        else None,
        dataset=data if data is not None else dataset(photos),
    )


def model_of(
    trainings: Iterable[TrainingRecord],
    *,
    model_id: str = MODEL_ID,
    extra_newer: Iterable[str] = (),
) -> ModelFacts:
    """The model as Replicate lists it: one version per succeeded training into it, newest
    first, plus ``extra_newer`` version ids on top (versions of unknown origin)."""
    ours = [
        ModelVersion(id=record.version_hash or "", created_at=record.completed_at)
        for record in trainings
        if record.destination == model_id
    ]
    newer = [
        ModelVersion(id=version_id, created_at=T0 + timedelta(days=90))
        for version_id in extra_newer
    ]
    return ModelFacts(model_id=model_id, found=True, versions=(*newer, *reversed(ours)))


def row_for(record: TrainingRecord, **changes: Any) -> AppRow:
    """The row the app writes when it polls ``record`` to success, with ``changes``."""
    row = AppRow(
        user_id=USER_ID,
        replicate_model_id=record.destination,
        replicate_version_id=record.version_hash,
        trigger_word=TRIGGER,
        training_status="completed",
        training_id=record.id,
        lora_weights_url=record.output_weights,
        failure_reason=None,
        updated_at=record.completed_at,
    )
    return replace(row, **changes)


def healthy(*trainings: TrainingRecord, **row_changes: Any) -> UserFacts:
    """A user whose row is on the last training's version, with every other fact true."""
    records = trainings or (training(1),)
    return UserFacts(
        row=row_for(records[-1], **row_changes), model=model_of(records), trainings=records
    )


def codes(facts: UserFacts) -> set[str]:
    return {finding.code for finding in diagnose(facts)}


def only(facts: UserFacts, code: str) -> Any:
    """The one finding of ``code`` (fails when it is absent)."""
    matches = [finding for finding in diagnose(facts) if finding.code == code]
    assert len(matches) == 1, [finding.code for finding in diagnose(facts)]
    return matches[0]
