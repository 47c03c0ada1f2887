"""Replicate's API as the plain ``replicate`` client sees it, answered by the sandbox.

Each test goes through ``replicate.Client(base_url=<sandbox>)`` over real HTTP: if the
sandbox's shapes drift from Replicate's, the client's own parsing fails here.
"""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
import replicate
from PIL import Image
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.training import Training

from core.gateway.client import build_client
from core.sandbox.catalog import FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION, OSTRIS_TRAINER
from core.sandbox.server import RunningSandbox
from tests.conftest import TEST_TOKEN
from tests.photos import selfie_zip
from tests.waits import wait_for

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}


def _train(
    client: Client, destination: str, zip_url: str, trigger: str, **extra_input: object
) -> Training:
    training = client.trainings.create(
        model=FAST_FLUX_TRAINER,
        version=FAST_FLUX_TRAINER_VERSION,
        input={"input_images": zip_url, "trigger_word": trigger, **extra_input},
        destination=destination,
    )

    def reloaded() -> bool:
        training.reload()
        return training.status in ("succeeded", "failed", "canceled")

    wait_for(reloaded, timeout=30, what="the training to end", every=0.05)
    return training


def _output(training: Training) -> Any:
    """A finished training's output (a JSON object the client leaves untyped)."""
    assert training.output is not None, "training has no output"
    return training.output


def _zip_url(client: Client, count: int = 10) -> str:
    uploaded = client.files.create(
        io.BytesIO(selfie_zip(count, long_side=700)),
        filename="images.zip",
        content_type="application/zip",
    )
    return uploaded.urls["get"]


def test_trainer_is_there_out_of_the_box(client: Client) -> None:
    trainer = client.models.get(FAST_FLUX_TRAINER)
    assert trainer.latest_version is not None
    assert trainer.latest_version.id == FAST_FLUX_TRAINER_VERSION
    schema = trainer.latest_version.openapi_schema["components"]["schemas"]["TrainingInput"]
    assert "input_images" in schema["required"]
    ostris = client.models.get(OSTRIS_TRAINER).latest_version
    assert ostris is not None
    assert (
        "lora_rank" in ostris.openapi_schema["components"]["schemas"]["TrainingInput"]["properties"]
    )


def test_no_token_is_401(sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_from_the_environment")
    anonymous = build_client("", sandbox.base_url)  # blank means none, never the env's
    with pytest.raises(ReplicateError) as caught:
        anonymous.client.models.get(FAST_FLUX_TRAINER)
    anonymous.close()
    assert caught.value.status == 401
    assert caught.value.title == "Unauthenticated"


def test_unknown_model_is_404(client: Client) -> None:
    with pytest.raises(ReplicateError) as caught:
        client.models.get("sandrasocial/no-such-model")
    assert caught.value.status == 404


def test_create_model_then_conflict(client: Client) -> None:
    model = client.models.create(
        "sandrasocial", "user-1-selfie-lora", visibility="private", hardware="gpu-t4"
    )
    assert (model.owner, model.name, model.visibility) == (
        "sandrasocial",
        "user-1-selfie-lora",
        "private",
    )
    assert model.latest_version is None
    with pytest.raises(ReplicateError) as caught:
        client.models.create(
            "sandrasocial", "user-1-selfie-lora", visibility="private", hardware="gpu-t4"
        )
    assert caught.value.status == 409
    with pytest.raises(ReplicateError) as foreign:
        client.models.create("someoneelse", "x", visibility="private", hardware="gpu-t4")
    assert foreign.value.status == 403


def test_training_to_unknown_destination_is_404(client: Client) -> None:
    with pytest.raises(ReplicateError) as caught:
        client.trainings.create(
            model=FAST_FLUX_TRAINER,
            version=FAST_FLUX_TRAINER_VERSION,
            input={"input_images": "http://127.0.0.1:9/x.zip"},
            destination="sandrasocial/missing",
        )
    assert caught.value.status == 404
    assert caught.value.detail == "The specified training destination does not exist"


def test_training_to_a_model_we_do_not_own_is_404(client: Client) -> None:
    with pytest.raises(ReplicateError) as caught:
        client.trainings.create(
            model=FAST_FLUX_TRAINER,
            version=FAST_FLUX_TRAINER_VERSION,
            input={"input_images": "http://127.0.0.1:9/x.zip"},
            destination=OSTRIS_TRAINER,
        )
    assert caught.value.status == 404


def test_training_input_is_validated(client: Client) -> None:
    client.models.create("sandrasocial", "dest", visibility="private", hardware="gpu-t4")
    with pytest.raises(ReplicateError) as caught:
        client.trainings.create(
            model=FAST_FLUX_TRAINER,
            version=FAST_FLUX_TRAINER_VERSION,
            input={"trigger_word": "x"},
            destination="sandrasocial/dest",
        )
    assert caught.value.status == 422
    assert caught.value.title == "Input validation failed"
    assert "input_images is required" in (caught.value.detail or "")


def test_unknown_version_is_422(client: Client) -> None:
    with pytest.raises(ReplicateError) as caught:
        client.predictions.create(version="0" * 64, input={"prompt": "hello"})
    assert caught.value.status == 422
    assert caught.value.title == "Invalid version or not permitted"
    with pytest.raises(ReplicateError) as trainer_version:
        client.trainings.create(
            model=FAST_FLUX_TRAINER,
            version="1" * 64,
            input={"input_images": "x"},
            destination="sandrasocial/x",
        )
    assert trainer_version.value.status == 422


def test_prediction_without_prompt_is_422(client: Client) -> None:
    client.models.create("sandrasocial", "dest", visibility="private", hardware="gpu-t4")
    training = _train(client, "sandrasocial/dest", _zip_url(client), "userx")
    version = _output(training)["version"].split(":")[1]
    with pytest.raises(ReplicateError) as caught:
        client.predictions.create(version=version, input={"seed": 1})
    assert caught.value.status == 422
    assert "prompt is required" in (caught.value.detail or "")


def test_full_journey_with_the_plain_client(client: Client) -> None:
    """The issue's journey: model, upload, train, latest version, predict, download."""
    model = client.models.create(
        "sandrasocial", "user-5040000c-selfie-lora", visibility="private", hardware="gpu-t4"
    )
    uploaded = client.files.create(
        io.BytesIO(selfie_zip(12, long_side=800)),
        filename="images.zip",
        content_type="application/zip",
    )
    assert uploaded.size > 0 and uploaded.checksums["sha256"]
    training = _train(client, model.id, uploaded.urls["get"], "user5040000c", training_steps=1400)
    assert training.status == "succeeded", training.error
    assert training.model == FAST_FLUX_TRAINER  # the trainer, not the destination
    assert training.version == FAST_FLUX_TRAINER_VERSION
    assert training.destination == model.id
    assert "step 1400/1400" in (training.logs or "")
    version_hash = _output(training)["version"].split(":")[1]
    assert len(version_hash) == 64 and version_hash == version_hash.lower()
    latest = client.models.get(model.id).latest_version
    assert latest is not None and latest.id == version_hash
    assert _output(training)["weights"].endswith(".tar")
    assert httpx.get(_output(training)["weights"]).status_code == 200

    prediction = client.predictions.create(
        version=version_hash,
        input={
            "prompt": "user5040000c, woman, reading in a cafe",
            "seed": 11,
            "output_format": "png",
            "aspect_ratio": "4:5",
        },
        wait=True,
    )
    assert prediction.status == "succeeded"
    assert prediction.version == version_hash and prediction.model == model.id
    assert prediction.output is not None
    image_bytes = httpx.get(prediction.output[0]).content
    image = Image.open(io.BytesIO(image_bytes))
    image.verify()
    assert image.format == "PNG"
    assert image.size[0] < image.size[1]  # 4:5 is portrait


def test_versions_paginate_beyond_one_page(client: Client, control: httpx.Client) -> None:
    control.post("/config", json={"page_size": 2}).raise_for_status()
    client.models.create("sandrasocial", "paged", visibility="private", hardware="gpu-t4")
    zip_url = _zip_url(client, 5)
    produced = [
        _output(_train(client, "sandrasocial/paged", zip_url, "userp"))["version"] for _ in range(5)
    ]
    first = client.models.get("sandrasocial/paged").versions.list()
    assert len(first.results) == 2
    assert first.next is not None and first.next.startswith("http://127.0.0.1:")
    seen = [version.id for version in first.results]
    next_url = first.next
    while next_url:
        page = httpx.get(next_url, headers=AUTH).json()
        seen += [item["id"] for item in page["results"]]
        next_url = page["next"]
    assert seen == [ref.split(":")[1] for ref in reversed(produced)]


def test_trainings_paginate_account_wide(client: Client, control: httpx.Client) -> None:
    control.post("/config", json={"page_size": 2}).raise_for_status()
    client.models.create("sandrasocial", "a", visibility="private", hardware="gpu-t4")
    zip_url = _zip_url(client, 5)
    ids = [_train(client, "sandrasocial/a", zip_url, "usera").id for _ in range(5)]
    pages = list(replicate.paginate(client.trainings.list))
    assert len(pages) == 3
    assert [training.id for page in pages for training in page] == list(reversed(ids))


def test_files_create_get_download_delete(client: Client, sandbox: RunningSandbox) -> None:
    payload = selfie_zip(3, long_side=300)
    uploaded = client.files.create(
        io.BytesIO(payload),
        filename="images.zip",
        content_type="application/zip",
        metadata={"user": "u1"},
    )
    assert uploaded.metadata == {"user": "u1"}
    assert client.files.get(uploaded.id).size == len(payload)
    download = httpx.get(f"{sandbox.base_url}/v1/files/{uploaded.id}/download", headers=AUTH)
    assert download.content == payload
    assert client.files.delete(uploaded.id)
    with pytest.raises(ReplicateError) as caught:
        client.files.get(uploaded.id)
    assert caught.value.status == 404


def test_cancel_a_running_training_and_prediction(client: Client, control: httpx.Client) -> None:
    control.post("/config", json={"training_seconds": 60, "prediction_seconds": 60})
    client.models.create("sandrasocial", "slow", visibility="private", hardware="gpu-t4")
    training = client.trainings.create(
        model=FAST_FLUX_TRAINER,
        version=FAST_FLUX_TRAINER_VERSION,
        input={"input_images": _zip_url(client), "trigger_word": "users"},
        destination="sandrasocial/slow",
    )
    canceled = client.trainings.cancel(training.id)
    assert canceled.status == "canceled"
    assert client.models.get("sandrasocial/slow").latest_version is None
    control.post("/config", json={"training_seconds": 0})
    control.post("/trainings/finish")
    assert client.trainings.get(training.id).status == "canceled"


def test_prefer_wait_returns_a_finished_prediction(client: Client, control: httpx.Client) -> None:
    client.models.create("sandrasocial", "w", visibility="private", hardware="gpu-t4")
    version = _output(_train(client, "sandrasocial/w", _zip_url(client), "userw"))["version"]
    control.post("/config", json={"prediction_seconds": 0.5})
    waited = client.predictions.create(version=version, input={"prompt": "userw portrait"}, wait=5)
    assert waited.status == "succeeded"
    queued = client.predictions.create(version=version, input={"prompt": "userw portrait"})
    # A local, so mypy's narrowing of the status does not outlive wait(), which reloads it.
    queued_status = queued.status
    assert queued_status in ("starting", "processing")
    queued.wait()
    assert queued.status == "succeeded"


def test_owner_name_colon_hash_is_accepted_as_version(client: Client) -> None:
    client.models.create("sandrasocial", "v", visibility="private", hardware="gpu-t4")
    ref = _output(_train(client, "sandrasocial/v", _zip_url(client), "userv"))["version"]
    prediction = client.predictions.create(version=ref, input={"prompt": "userv"}, wait=True)
    assert prediction.status == "succeeded"
    with pytest.raises(ReplicateError) as caught:
        client.predictions.create(
            version="sandrasocial/other:" + ref.split(":")[1], input={"prompt": "userv"}
        )
    assert caught.value.status == 422
