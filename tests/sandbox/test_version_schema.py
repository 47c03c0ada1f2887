"""Versions that declare fewer inputs (``POST /_sandbox/versions/{id}/schema``), and what
Replicate does with an input a version does not declare: it ignores it. It is no
validation error, and it changes neither the rendered image nor the training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.training import Training

from core.gateway.client import build_client
from core.sandbox.catalog import (
    FAST_FLUX_TRAINER,
    FAST_FLUX_TRAINER_VERSION,
    LUCATACO_TRAINER,
    LUCATACO_TRAINER_VERSION,
)
from core.sandbox.server import start_sandbox
from tests.conftest import TEST_TOKEN
from tests.sandbox.conftest import COLUMN_A, COLUMN_B, TRIGGER, Columns
from tests.waits import wait_for

# Weights that are not the version's own: a version that declares hf_lora loads them.
FOREIGN_WEIGHTS = f"https://replicate.delivery/pbxt/{'0' * 64}/flux-lora.tar"


def _drop(control: httpx.Client, version: str, *names: str) -> dict[str, Any]:
    answer = control.post(f"/versions/{version}/schema", json={"drop_inputs": list(names)})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _image(client: Client, version: str, **prediction_input: object) -> bytes:
    prediction = client.predictions.create(
        version=version,
        input={"megapixels": "0.25", "output_format": "png", **prediction_input},
        wait=True,
    )
    assert prediction.status == "succeeded", prediction.error
    assert prediction.output is not None
    return httpx.get(prediction.output[0]).content


def _inputs(client: Client, model: str, version: str, component: str = "Input") -> set[str]:
    schema = client.models.get(model).versions.get(version).openapi_schema
    return set(schema["components"]["schemas"][component]["properties"])


def _finished(training: Training) -> Training:
    def reloaded() -> bool:
        training.reload()
        return training.status in ("succeeded", "failed", "canceled")

    wait_for(reloaded, timeout=30, what="the instant sandbox's training to end", every=0.02)
    return training


@pytest.mark.timeout(30)
def test_dropped_inputs_leave_the_schema_the_client_reads(
    client: Client, control: httpx.Client, columns: Columns
) -> None:
    changed = _drop(control, columns.a, "hf_lora", "extra_lora")
    assert changed["version"] == columns.a and changed["model"] == COLUMN_A
    assert changed["component"] == "Input"
    assert changed["dropped_inputs"] == ["hf_lora", "extra_lora"]
    assert "prompt" in changed["inputs"] and "hf_lora" not in changed["inputs"]
    declared = _inputs(client, COLUMN_A, columns.a)
    assert {"hf_lora", "extra_lora"}.isdisjoint(declared) and "prompt" in declared
    latest = client.models.get(COLUMN_A).latest_version
    assert latest is not None
    assert "hf_lora" not in latest.openapi_schema["components"]["schemas"]["Input"]["properties"]
    assert {"hf_lora", "extra_lora"} <= _inputs(client, COLUMN_B, columns.b)  # untouched
    again = _drop(control, columns.a, "hf_lora")  # already gone: nothing changes
    assert again == changed
    assert control.get(f"/versions/{columns.a}/schema").json() == changed


@pytest.mark.timeout(30)
def test_an_undeclared_hf_lora_renders_the_same_bytes_as_none(
    client: Client, control: httpx.Client, columns: Columns
) -> None:
    _drop(control, columns.a, "hf_lora")
    prompt = f"{TRIGGER} portrait"
    plain = _image(client, columns.a, prompt=prompt, seed=4)
    assert _image(client, columns.a, prompt=prompt, seed=4, hf_lora=FOREIGN_WEIGHTS) == plain
    # On a version that declares it, the same foreign weights change the image.
    declared_plain = _image(client, columns.b, prompt=prompt, seed=4)
    assert _image(client, columns.b, prompt=prompt, seed=4, hf_lora=FOREIGN_WEIGHTS) != (
        declared_plain
    )


@pytest.mark.timeout(30)
def test_an_undeclared_input_is_no_validation_error_and_is_echoed(
    client: Client, control: httpx.Client, columns: Columns
) -> None:
    _drop(control, columns.a, "hf_lora")
    wrong_type = {"prompt": f"{TRIGGER} portrait", "hf_lora": 12}
    with pytest.raises(ReplicateError) as caught:
        client.predictions.create(version=columns.b, input=wrong_type)
    assert caught.value.status == 422 and "hf_lora" in (caught.value.detail or "")
    accepted = client.predictions.create(version=columns.a, input=wrong_type, wait=True)
    assert accepted.status == "succeeded"
    assert accepted.input == wrong_type  # Replicate echoes the input as it was sent


@pytest.mark.timeout(30)
def test_an_input_no_version_declares_does_not_change_the_image(
    client: Client, columns: Columns
) -> None:
    """Without a seed the image is still chosen by the input, but only by what the version
    reads: the app's ``num_repeats`` is no input of a LoRA version."""
    prompt = f"{TRIGGER} portrait"
    assert _image(client, columns.b, prompt=prompt, num_repeats=20) == _image(
        client, columns.b, prompt=prompt
    )


@pytest.mark.timeout(30)
def test_a_dropped_required_input_is_neither_required_nor_read(
    client: Client, control: httpx.Client, columns: Columns
) -> None:
    changed = _drop(control, columns.a, "prompt")
    assert changed["required"] == []
    without = _image(client, columns.a, seed=1)
    assert _image(client, columns.a, seed=1, prompt=f"{TRIGGER} on a beach") == without
    with pytest.raises(ReplicateError) as caught:
        client.predictions.create(version=columns.b, input={"seed": 1})
    assert caught.value.status == 422


@pytest.mark.timeout(30)
def test_an_undeclared_trainer_input_does_not_affect_the_training(
    client: Client, control: httpx.Client, columns: Columns
) -> None:
    changed = _drop(control, LUCATACO_TRAINER_VERSION, "training_steps")
    assert changed["component"] == "TrainingInput" and "training_steps" not in changed["inputs"]
    assert "training_steps" not in _inputs(
        client, LUCATACO_TRAINER, LUCATACO_TRAINER_VERSION, "TrainingInput"
    )
    training_input = {"input_images": columns.zip_url, "training_steps": 200}
    dropped = _finished(
        client.trainings.create(
            model=LUCATACO_TRAINER,
            version=LUCATACO_TRAINER_VERSION,
            input={**training_input, "training_steps": "many"},  # not checked either
            destination=COLUMN_A,
        )
    )
    assert dropped.status == "succeeded", dropped.error
    assert "step 1000/1000" in (dropped.logs or "")  # the trainer's own default
    # fast-flux-trainer declares training_steps, and not the ostris trainer's steps.
    declared = _finished(
        client.trainings.create(
            model=FAST_FLUX_TRAINER,
            version=FAST_FLUX_TRAINER_VERSION,
            input={**training_input, "steps": 300},
            destination=COLUMN_B,
        )
    )
    assert declared.status == "succeeded", declared.error
    assert "step 200/200" in (declared.logs or "") and "/300" not in (declared.logs or "")


@pytest.mark.timeout(30)
def test_a_schema_change_survives_a_restart(tmp_path: Path) -> None:
    first = start_sandbox(tmp_path)
    try:
        answer = httpx.post(
            f"{first.base_url}/_sandbox/versions/{FAST_FLUX_TRAINER_VERSION}/schema",
            json={"drop_inputs": ["lora_type"]},
        )
        assert answer.status_code == 200, answer.text
    finally:
        first.stop()
    second = start_sandbox(tmp_path)
    connection = build_client(TEST_TOKEN, second.base_url)
    try:
        trainer = connection.client.models.get(FAST_FLUX_TRAINER).latest_version
        assert trainer is not None
        declared = trainer.openapi_schema["components"]["schemas"]["TrainingInput"]["properties"]
        assert "lora_type" not in declared and "trigger_word" in declared
    finally:
        connection.close()
        second.stop()


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("version", "body", "status"),
    [
        ("0" * 64, {"drop_inputs": ["hf_lora"]}, 404),
        (FAST_FLUX_TRAINER_VERSION, {"drop_inputs": []}, 400),
        (FAST_FLUX_TRAINER_VERSION, {"drop_inputs": "lora_type"}, 400),
        (FAST_FLUX_TRAINER_VERSION, {"drop_inputs": [""]}, 400),
        (FAST_FLUX_TRAINER_VERSION, {"drop_inputs": ["lora_type"], "add": ["x"]}, 400),
        (FAST_FLUX_TRAINER_VERSION, {"drop_inputs": ["lora_type", "no_such_input"]}, 400),
    ],
)
def test_bad_schema_changes_are_refused_and_change_nothing(
    client: Client, control: httpx.Client, version: str, body: dict[str, object], status: int
) -> None:
    answer = control.post(f"/versions/{version}/schema", json=body)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    if "no_such_input" in str(body):
        assert "no_such_input" in answer.json()["detail"]
    assert "lora_type" in _inputs(
        client, FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION, "TrainingInput"
    )
