"""The app's training and generation calls, and its row writes, as pure functions."""

from __future__ import annotations

from datetime import datetime

import pytest

from core.app.calls import (
    adaptive_params,
    bare_version,
    destination_model,
    first_trigger_word,
    generation_prompt,
    pbxt_weights_url,
    prediction_input,
    training_input,
    training_zip_path,
)
from core.demo import app_row
from core.demo.script import Completion
from core.gateway.values import Training

HASH = "a" * 64
LATER = "b" * 64
AT = datetime(2026, 1, 5, 12, 0)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (None, (1400, 48, 48, 20)),
        (20, (1400, 48, 48, 20)),
        (15, (1400, 48, 48, 20)),
        (14, (1400, 40, 40, 18)),
        (10, (1400, 40, 40, 15)),
        (9, (1200, 32, 32, 13)),
        (5, (1200, 32, 32, 10)),
    ],
)
def test_adaptive_parameters_follow_the_app_table(
    count: int | None, expected: tuple[int, ...]
) -> None:
    params = adaptive_params(count)
    assert (params.steps, params.lora_rank, params.network_alpha, params.num_repeats) == expected


def test_training_input_is_the_adaptive_part_the_fixed_part_and_the_user_part() -> None:
    sent = training_input(
        image_count=12, trigger_word="user45038279", input_images="https://blob/x.zip"
    )
    assert sent["lora_rank"] == 40 and sent["num_repeats"] == 15
    assert sent["optimizer"] == "adamw_bf16" and sent["resolution"] == "1024"
    assert sent["trigger_word"] == "user45038279"
    assert sent["input_images"] == "https://blob/x.zip"


def test_names_come_from_the_first_eight_characters_of_the_id() -> None:
    user_id = "5040000c-5ce6-4114-8319-6ec1a632f749"
    assert first_trigger_word(user_id) == "user5040000c"
    assert destination_model("sandrasocial", user_id) == ("sandrasocial/user-5040000c-selfie-lora")
    assert training_zip_path(user_id, 1767614400000) == (
        f"training/{user_id}/1767614400000-images.zip"
    )


def test_prompt_template_leaves_out_other_ethnicity_and_maps_gender() -> None:
    assert (
        generation_prompt(
            trigger_word="userx", ethnicity="Latina", gender="female", prompt="on a beach"
        )
        == "userx, Latina woman, on a beach"
    )
    assert (
        generation_prompt(
            trigger_word="userx", ethnicity="Other", gender="non-binary", prompt="userx, studio"
        )
        == "userx, person, studio"
    )
    assert (
        generation_prompt(trigger_word="userx", ethnicity=None, gender="male", prompt="city")
        == "userx, man, city"
    )


def test_prediction_input_is_the_preset_with_the_users_weights() -> None:
    sent = prediction_input(
        prompt="p", lora_weights_url="https://w.tar", lora_scale=0.9, seed=7, category="headshot"
    )
    assert sent["hf_lora"] == "https://w.tar" and sent["lora_scale"] == 0.9
    assert sent["aspect_ratio"] == "1:1" and sent["seed"] == 7
    assert sent["num_inference_steps"] == 50 and sent["output_format"] == "png"
    assert (
        prediction_input(prompt="p", lora_weights_url=None, lora_scale=None, seed=1)["aspect_ratio"]
        == "4:5"
    )


def test_version_helpers() -> None:
    assert bare_version(f"o/n:{HASH}") == HASH == bare_version(HASH)
    assert pbxt_weights_url(HASH) == f"https://replicate.delivery/pbxt/{HASH}/flux-lora.tar"


def _training(status: str, *, version: str | None = HASH, error: str | None = None) -> Training:
    return Training.from_api(
        {
            "id": "t1",
            "model": "replicate/fast-flux-trainer",
            "version": "f" * 64,
            "status": status,
            "input": {"trigger_word": "userx"},
            "error": error,
            "output": {"version": f"o/m:{version}", "weights": "https://w/1.tar"}
            if version
            else None,
        }
    )


def _trained_row() -> app_row.ModelRow:
    row = app_row.reset_for_submit(None, user_id="x", trigger_word="userx", lora_scale=1.0, at=AT)
    row = app_row.submitted(
        row, training=_training("starting", version=None), destination="o/m", at=AT
    )
    return app_row.polled(
        row,
        training=_training("succeeded"),
        newest_version=HASH,
        completion=Completion.RECORDED,
        at=AT,
    )


def test_a_succeeded_training_records_the_bare_hash_and_weights() -> None:
    row = _trained_row()
    assert (row.training_status, row.replicate_version_id, row.lora_weights_url) == (
        "completed",
        HASH,
        "https://w/1.tar",
    )
    assert app_row.is_retrain(row)


def test_the_poll_prefers_the_models_newest_version() -> None:
    row = app_row.polled(
        _trained_row(),
        training=_training("succeeded"),
        newest_version=LATER,
        completion=Completion.RECORDED,
        at=AT,
    )
    assert row.replicate_version_id == LATER


def test_a_failed_retrain_leaves_no_version_but_keeps_the_model() -> None:
    row = app_row.reset_for_submit(
        _trained_row(), user_id="x", trigger_word="userx", lora_scale=1.0, at=AT
    )
    assert row.replicate_version_id is None and row.replicate_model_id == "o/m"
    row = app_row.polled(
        row,
        training=_training("failed", version=None, error="OOM"),
        newest_version=None,
        completion=Completion.RECORDED,
        at=AT,
    )
    assert (row.training_status, row.failure_reason, row.replicate_version_id) == (
        "failed",
        "OOM",
        None,
    )
    assert app_row.trigger_for_next_training(row, "xyz") == "userxyz"


@pytest.mark.parametrize(
    ("completion", "stored"),
    [
        (Completion.FULL_VERSION, f"o/m:{HASH}"),
        (Completion.TRAINER_VERSION, "f" * 64),
    ],
)
def test_faulty_completions_store_what_the_app_stored(completion: Completion, stored: str) -> None:
    row = app_row.polled(
        _trained_row(),
        training=_training("succeeded"),
        newest_version=HASH,
        completion=completion,
        at=AT,
    )
    assert row.replicate_version_id == stored


def test_kept_previous_and_never_polled_leave_the_version_alone() -> None:
    kept = app_row.reset_for_submit(
        _trained_row(), user_id="x", trigger_word="userx", lora_scale=1.0, at=AT, keep_version=True
    )
    kept = app_row.polled(
        kept,
        training=_training("succeeded", version=LATER),
        newest_version=LATER,
        completion=Completion.KEPT_PREVIOUS,
        at=AT,
    )
    assert (kept.training_status, kept.replicate_version_id) == ("completed", HASH)
    waiting = app_row.submitted(kept, training=_training("starting"), destination="o/m", at=AT)
    waiting = app_row.polled(
        waiting,
        training=_training("succeeded"),
        newest_version=None,
        completion=Completion.NEVER_POLLED,
        at=AT,
    )
    assert waiting.training_status == "training"
