"""The sandbox's behaviour model: the failure modes of the SSELFIE app show on Replicate's
side the way they would on the real one."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from pydantic.v1 import ValidationError
from replicate.client import Client

from core.gateway.client import build_client
from core.gateway.gateway import ReplicateGateway
from core.gateway.values import Training
from core.imaging.faces import SAME_PERSON_DISTANCE, FaceReader, distance
from core.sandbox.catalog import FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION
from core.sandbox.server import start_sandbox
from tests.conftest import TEST_TOKEN
from tests.photos import face_photo, selfie_zip
from tests.waits import until_ended, wait_for


def _upload(client: Client, zip_bytes: bytes) -> str:
    return client.files.create(
        io.BytesIO(zip_bytes), filename="images.zip", content_type="application/zip"
    ).urls["get"]


def _train(gateway: ReplicateGateway, destination: str, zip_url: str, trigger: str) -> Training:
    training = gateway.create_training(
        FAST_FLUX_TRAINER,
        FAST_FLUX_TRAINER_VERSION,
        destination,
        {"input_images": zip_url, "trigger_word": trigger},
    )
    return until_ended(lambda: gateway.get_training(training.id), what=f"training {training.id}")


def _image(gateway: ReplicateGateway, version: str, **prediction_input: object) -> bytes:
    prediction = gateway.create_prediction(
        version, {"output_format": "png", "megapixels": "0.25", **prediction_input}, wait=True
    )
    assert prediction.status == "succeeded", prediction.error
    return httpx.get(prediction.output[0]).content


def _gray(png: bytes, size: int = 256) -> np.ndarray:
    image = Image.open(io.BytesIO(png)).convert("L")
    return np.asarray(image.resize((size, size)), dtype=np.float64)


def sharpness(png: bytes) -> float:
    """Variance of the Laplacian: high for crisp detail, low for soft images."""
    g = _gray(png)
    laplacian = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    return float(laplacian.var())


@pytest.fixture
def trained(gateway: ReplicateGateway, client: Client) -> str:
    gateway.create_model("sandrasocial/user-good-selfie-lora")
    training = _train(
        gateway,
        "sandrasocial/user-good-selfie-lora",
        _upload(client, selfie_zip(16, long_side=1280)),
        "usergood",
    )
    assert training.version_hash is not None
    return training.version_hash


def test_second_training_adds_version_two_to_the_same_model(
    gateway: ReplicateGateway,
    client: Client,
) -> None:
    gateway.create_model("sandrasocial/user-2-selfie-lora")
    zip_url = _upload(client, selfie_zip(10, long_side=600))
    first = _train(gateway, "sandrasocial/user-2-selfie-lora", zip_url, "user2")
    second = _train(gateway, "sandrasocial/user-2-selfie-lora", zip_url, "user2")
    assert first.destination == second.destination == "sandrasocial/user-2-selfie-lora"
    assert first.version_hash != second.version_hash
    versions = gateway.list_versions("sandrasocial/user-2-selfie-lora")
    assert [v.id for v in versions] == [second.version_hash, first.version_hash]
    model = gateway.get_model("sandrasocial/user-2-selfie-lora")
    assert model is not None and model.latest_version is not None
    assert model.latest_version.id == second.version_hash


def test_predictions_are_deterministic(gateway: ReplicateGateway, trained: str) -> None:
    one = _image(gateway, trained, prompt="usergood on a beach", seed=5)
    again = _image(gateway, trained, prompt="usergood on a beach", seed=5)
    other_seed = _image(gateway, trained, prompt="usergood on a beach", seed=6)
    assert one == again
    assert one != other_seed


def test_prompt_without_trigger_word_loses_likeness(
    gateway: ReplicateGateway,
    trained: str,
    face_reader: FaceReader,
) -> None:
    """With the trigger word the user's face is there (same person for dlib); without it
    there is no face at all, as with a LoRA that was never invoked."""
    own_face = face_reader.read(face_photo(0, long_side=800))[0]
    for seed in range(3):
        with_trigger = face_reader.read(
            _image(gateway, trained, prompt="usergood portrait", seed=seed)
        )
        assert with_trigger, f"no face with the trigger word (seed {seed})"
        assert min(distance(face, own_face) for face in with_trigger) < SAME_PERSON_DISTANCE
        without = face_reader.read(_image(gateway, trained, prompt="a woman, portrait", seed=seed))
        assert without == [], f"a face without the trigger word (seed {seed})"


def test_foreign_hf_lora_degrades_the_image(
    gateway: ReplicateGateway,
    trained: str,
    face_reader: FaceReader,
) -> None:
    own = _image(gateway, trained, prompt="usergood portrait", seed=2)
    constructed = _image(
        gateway,
        trained,
        prompt="usergood portrait",
        seed=2,
        hf_lora=f"https://replicate.delivery/pbxt/{trained}/flux-lora.tar",
    )
    assert sharpness(constructed) < sharpness(own) * 0.5
    reference = face_reader.read(face_photo(0, long_side=800))[0]
    own_faces, constructed_faces = face_reader.read(own), face_reader.read(constructed)
    assert own_faces
    own_distance = min(distance(face, reference) for face in own_faces)
    assert not constructed_faces or (
        min(distance(face, reference) for face in constructed_faces) > own_distance
    )


def test_own_weights_url_or_model_ref_as_hf_lora_is_not_degraded(
    gateway: ReplicateGateway,
    client: Client,
    trained: str,
) -> None:
    training = next(t for t in gateway.list_trainings() if t.version_hash == trained)
    plain = _image(gateway, trained, prompt="usergood portrait", seed=3)
    assert training.output_weights is not None
    with_weights = _image(
        gateway, trained, prompt="usergood portrait", seed=3, hf_lora=training.output_weights
    )
    with_ref = _image(
        gateway,
        trained,
        prompt="usergood portrait",
        seed=3,
        hf_lora=f"sandrasocial/user-good-selfie-lora:{trained}",
    )
    assert plain == with_weights == with_ref


def test_small_squeezed_or_blurry_datasets_give_softer_images(
    gateway: ReplicateGateway,
    client: Client,
    trained: str,
) -> None:
    good = np.mean(
        [sharpness(_image(gateway, trained, prompt="usergood", seed=s)) for s in range(3)]
    )
    for name, zip_bytes in {
        "few": selfie_zip(5, long_side=1280),
        "squeezed": selfie_zip(14, long_side=600, jpeg_quality=55),
        "blurry": selfie_zip(14, long_side=1280, blur=4.0),
    }.items():
        gateway.create_model(f"sandrasocial/{name}")
        version = _train(
            gateway, f"sandrasocial/{name}", _upload(client, zip_bytes), "usergood"
        ).version_hash
        assert version is not None
        worse = np.mean(
            [sharpness(_image(gateway, version, prompt="usergood", seed=s)) for s in range(3)]
        )
        assert worse < good * 0.8, (name, worse, good)


def test_planned_failure_adds_no_version(
    gateway: ReplicateGateway, client: Client, control: httpx.Client
) -> None:
    gateway.create_model("sandrasocial/fails")
    control.post("/trainings/next", json={"outcome": "fail", "error": "GPU fell over"})
    failed = _train(
        gateway, "sandrasocial/fails", _upload(client, selfie_zip(6, long_side=400)), "userf"
    )
    assert failed.status == "failed"
    assert failed.error == "GPU fell over"
    assert failed.version_hash is None
    model = gateway.get_model("sandrasocial/fails")
    assert model is not None and model.latest_version is None


def test_a_failure_planned_for_one_destination_waits_for_a_training_into_it(
    gateway: ReplicateGateway, client: Client, control: httpx.Client
) -> None:
    for name in ("sandrasocial/other", "sandrasocial/mine"):
        gateway.create_model(name)
    zip_url = _upload(client, selfie_zip(6, long_side=400))
    planned = control.post(
        "/trainings/next",
        json={"outcome": "fail", "error": "GPU fell over", "destination": "sandrasocial/mine"},
    )
    assert planned.status_code == 201
    assert _train(gateway, "sandrasocial/other", zip_url, "usero").status == "succeeded"
    failed = _train(gateway, "sandrasocial/mine", zip_url, "userm")
    assert (failed.status, failed.error) == ("failed", "GPU fell over")
    # Used once: the next training into it succeeds.
    assert _train(gateway, "sandrasocial/mine", zip_url, "userm").status == "succeeded"
    refused = control.post("/trainings/next", json={"outcome": "fail", "destination": "mine"})
    assert refused.status_code == 400


def test_broken_zip_fails_the_training_with_a_reason(
    gateway: ReplicateGateway, client: Client
) -> None:
    gateway.create_model("sandrasocial/broken")
    failed = _train(gateway, "sandrasocial/broken", _upload(client, b"not a zip at all"), "ub")
    assert failed.status == "failed"
    assert failed.error and "zip" in failed.error.lower()


def test_aborted_training_is_terminal_not_a_crash(
    gateway: ReplicateGateway, client: Client, control: httpx.Client
) -> None:
    gateway.create_model("sandrasocial/aborts")
    control.post("/trainings/next", json={"outcome": "abort"})
    aborted = _train(
        gateway, "sandrasocial/aborts", _upload(client, selfie_zip(6, long_side=400)), "usera"
    )
    assert aborted.status == "aborted" and aborted.is_terminal
    assert aborted.started_at is None
    # The plain client cannot even read it: the gateway exists to absorb this.
    with pytest.raises(ValidationError):
        client.trainings.get(aborted.id)
    listed = gateway.list_trainings()
    assert [t.status for t in listed if t.id == aborted.id] == ["aborted"]


def test_paced_training_moves_through_statuses_with_step_logs(
    gateway: ReplicateGateway,
    client: Client,
    control: httpx.Client,
) -> None:
    control.post("/config", json={"training_start_seconds": 0.2, "training_seconds": 1.0})
    gateway.create_model("sandrasocial/paced")
    started = gateway.create_training(
        FAST_FLUX_TRAINER,
        FAST_FLUX_TRAINER_VERSION,
        "sandrasocial/paced",
        {
            "input_images": _upload(client, selfie_zip(6, long_side=400)),
            "trigger_word": "up",
            "training_steps": 1000,
        },
    )
    assert started.status == "starting"
    seen = {started.status}
    logs = ""

    def read() -> Training:
        nonlocal logs
        current = gateway.get_training(started.id)
        seen.add(current.status)
        logs = current.logs or logs
        return current

    until_ended(read, what="the paced training to end")
    assert seen == {"starting", "processing", "succeeded"}
    assert "step 1000/1000" in logs and "step 100/1000" in logs


def test_state_survives_a_restart(tmp_path: Path) -> None:
    first = start_sandbox(
        tmp_path, training_start_seconds=0, training_seconds=0, prediction_seconds=0
    )
    connection = build_client(TEST_TOKEN, first.base_url)
    client = connection.client
    client.models.create("sandrasocial", "kept", visibility="private", hardware="gpu-t4")
    zip_url = client.files.create(io.BytesIO(selfie_zip(5, long_side=400)), filename="i.zip").urls[
        "get"
    ]
    training = client.trainings.create(
        model=FAST_FLUX_TRAINER,
        version=FAST_FLUX_TRAINER_VERSION,
        input={"input_images": zip_url, "trigger_word": "userk"},
        destination="sandrasocial/kept",
    )

    def reloaded() -> bool:
        training.reload()
        return training.status == "succeeded"

    wait_for(reloaded, timeout=30, what="the training to succeed", every=0.05)
    connection.close()
    first.stop()

    second = start_sandbox(tmp_path, prediction_seconds=0)
    connection = build_client(TEST_TOKEN, second.base_url)
    client = connection.client
    try:
        model = client.models.get("sandrasocial/kept")
        assert model.latest_version is not None
        assert training.output is not None
        assert model.latest_version.id == training.output["version"].split(":")[1]
        again = client.trainings.get(training.id)
        assert again.status == "succeeded"
        assert again.urls is not None
        assert again.urls["get"].startswith(second.base_url)
        prediction = client.predictions.create(
            version=model.latest_version.id, input={"prompt": "userk"}, wait=True
        )
        assert prediction.status == "succeeded"
        assert prediction.output is not None
        assert httpx.get(prediction.output[0]).status_code == 200
    finally:
        connection.close()
        second.stop()
