"""Where a retrain goes, from the ledger alone: the user's existing model and the trigger
word their current version learnt, never new ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.drift.facts import TrainingRecord
from core.errors import DataRejected
from core.retrain.plan import plan_training, retrain_target

pytestmark = pytest.mark.timeout(30)

V1, V2 = "1" * 64, "2" * 64
MODEL = "sandrasocial/user-abc-selfie-lora"
FORK = "sandrasocial/user-abc-selfie-lora-2"


def _training(
    training_id: str, day: int, version: str | None, *, model: str = MODEL, trigger: str = "userabc"
) -> TrainingRecord:
    return TrainingRecord(
        id=training_id,
        trainer_model="replicate/fast-flux-trainer",
        trainer_version="f" * 64,
        status="succeeded" if version else "failed",
        input={"trigger_word": trigger, "input_images": f"https://blob/{training_id}.zip"},
        output_version=f"{model}:{version}" if version else None,
        created_at=datetime(2026, 11, day, tzinfo=UTC),
    )


HISTORY = (
    _training("t1", 1, V1, trigger="userabc"),
    _training("t2", 5, V2, model=FORK, trigger="userabc2"),  # a forked model, a new trigger
    _training("t3", 9, None),  # failed: made nothing
)


def test_the_version_the_row_stores_decides_model_trigger_and_previous_photos() -> None:
    target = retrain_target(HISTORY, stored_version=f"{MODEL}:{V1}", row_model=MODEL)
    assert (target.destination, target.trigger_word) == (MODEL, "userabc")
    assert target.previous_training_id == "t1"
    assert target.previous_zip_url == "https://blob/t1.zip"
    assert target.photo_zips == (("v1", "https://blob/t1.zip"), ("v2", "https://blob/t2.zip"))
    assert target.current_version == V1
    assert target.notes == ()


def test_a_row_that_lost_its_model_id_still_retrains_into_the_existing_model() -> None:
    target = retrain_target(HISTORY, stored_version=V2, row_model=None)
    assert target.destination == FORK
    assert any("lost its model id" in note for note in target.notes)


def test_a_version_the_ledger_does_not_know_falls_back_to_the_latest_succeeded() -> None:
    target = retrain_target(HISTORY, stored_version="  ", row_model=MODEL)
    assert (target.destination, target.trigger_word, target.previous_training_id) == (
        FORK,
        "userabc2",
        "t2",
    )
    assert any("is empty" in note for note in target.notes)
    assert any(f"goes to {FORK!r}" in note for note in target.notes)


def test_no_succeeded_training_or_no_trigger_word_is_refused() -> None:
    with pytest.raises(DataRejected, match="no succeeded training"):
        retrain_target((HISTORY[2],), stored_version=None, row_model=MODEL)
    with pytest.raises(DataRejected, match="records no trigger word"):
        retrain_target((_training("t4", 2, V1, trigger=""),), stored_version=V1, row_model=MODEL)


def test_the_app_parameters_by_photo_count_and_the_inputs_the_trainer_drops() -> None:
    target = retrain_target(HISTORY, stored_version=V1, row_model=MODEL)
    schema: dict[str, object] = {
        "properties": {"input_images": {}, "trigger_word": {}, "steps": {}}
    }
    plan = plan_training(target, schema, image_count=12)
    assert plan.training_input["lora_rank"] == 40  # 10-14 photos: rank 40
    assert plan.training_input["num_repeats"] == 15  # max(15, 1.3 x 12)
    assert plan.training_input["trigger_word"] == "userabc"
    assert "input_images" not in plan.training_input
    assert "steps" not in plan.ignored and "lora_rank" in plan.ignored
    assert plan.with_zip("https://files/z.zip")["input_images"] == "https://files/z.zip"
    unknown = plan_training(target, None, image_count=20)
    assert not unknown.schema_known and unknown.ignored == ()
    assert unknown.training_input["lora_rank"] == 48
