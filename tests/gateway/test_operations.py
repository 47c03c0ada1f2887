"""Each gateway operation against the sandbox, returning the project's own values."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from core.errors import ReplicateNotFound
from core.gateway.gateway import ReplicateGateway
from core.gateway.values import ModelVersion, Prediction, ReplicateModel, Training
from core.sandbox.catalog import FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION
from tests.photos import selfie_zip
from tests.waits import until_ended, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _finish(gateway: ReplicateGateway, training: Training) -> Training:
    return until_ended(lambda: gateway.get_training(training.id), what=f"training {training.id}")


def _start(gateway: ReplicateGateway, destination: str, trigger: str = "userq") -> Training:
    zip_url = gateway.upload_file(
        selfie_zip(5, long_side=300), filename="images.zip", content_type="application/zip"
    ).url
    return gateway.create_training(
        FAST_FLUX_TRAINER,
        FAST_FLUX_TRAINER_VERSION,
        destination,
        {"input_images": zip_url, "trigger_word": trigger},
    )


def test_models_and_versions_are_typed_values(gateway: ReplicateGateway) -> None:
    created = gateway.create_model("sandrasocial/typed", description="demo")
    assert isinstance(created, ReplicateModel) and created.latest_version is None
    assert gateway.create_model("sandrasocial/typed").key == "sandrasocial/typed"  # 409 -> read
    training = _finish(gateway, _start(gateway, "sandrasocial/typed"))
    model = gateway.get_model("sandrasocial/typed")
    assert model is not None and isinstance(model.latest_version, ModelVersion)
    assert model.latest_version.id == training.version_hash
    assert model.latest_version.created_at is not None
    assert gateway.list_versions("sandrasocial/typed") == [model.latest_version]
    with pytest.raises(ReplicateNotFound):
        gateway.list_versions("sandrasocial/absent")


def test_list_trainings_until_a_known_id(gateway: ReplicateGateway, control: httpx.Client) -> None:
    control.post("/config", json={"page_size": 2})
    gateway.create_model("sandrasocial/ledger")
    ids = [_finish(gateway, _start(gateway, "sandrasocial/ledger")).id for _ in range(5)]
    everything = gateway.list_trainings()
    assert [t.id for t in everything] == list(reversed(ids))
    newer = gateway.list_trainings(until_id=ids[1])
    assert [t.id for t in newer] == [ids[4], ids[3], ids[2]]
    assert gateway.list_trainings(until_id=ids[4]) == []


def test_cancel_training_and_prediction(gateway: ReplicateGateway, control: httpx.Client) -> None:
    gateway.create_model("sandrasocial/c")
    version = _finish(gateway, _start(gateway, "sandrasocial/c")).version_hash
    assert version is not None
    control.post("/config", json={"training_seconds": 60, "prediction_seconds": 60})
    running = _start(gateway, "sandrasocial/c")
    canceled = gateway.cancel_training(running.id)
    assert canceled.status == "canceled" and canceled.is_terminal
    assert gateway.cancel_training(running.id).status == "canceled"  # repeatable
    prediction = gateway.create_prediction(version, {"prompt": "userq"})
    assert isinstance(prediction, Prediction) and not prediction.is_terminal
    assert gateway.cancel_prediction(prediction.id).status == "canceled"
    assert gateway.get_prediction(prediction.id).status == "canceled"


def test_prediction_wait_and_get(gateway: ReplicateGateway) -> None:
    gateway.create_model("sandrasocial/p")
    version = _finish(gateway, _start(gateway, "sandrasocial/p")).version_hash
    assert version is not None
    prediction = gateway.create_prediction(version, {"prompt": "userq", "seed": 1}, wait=True)
    assert prediction.status == "succeeded" and len(prediction.output) == 1
    again = gateway.get_prediction(prediction.id)
    assert again.output == prediction.output and again.version == version
    assert httpx.get(prediction.output[0]).headers["content-type"].startswith("image/")


def test_the_cli_sandbox_answers_the_module_level_client(tmp_path: Path) -> None:
    """The issue's first check: `python -m core.sandbox --port P`, then plain
    `replicate.models.get(...)` with REPLICATE_BASE_URL and any token."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "core.sandbox", "--port", str(port), "--data", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                httpx.get(f"{base_url}/_sandbox/health")
            except httpx.TransportError:
                return False
            return True

        wait_for(answers, timeout=30, what="the sandbox CLI to start")
        env = {**os.environ, "REPLICATE_BASE_URL": base_url, "REPLICATE_API_TOKEN": "r8_any"}
        printed = subprocess.run(
            [
                sys.executable,
                "-c",
                "import replicate; print(replicate.models.get("
                "'replicate/fast-flux-trainer').latest_version.id)",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        assert printed == FAST_FLUX_TRAINER_VERSION
    finally:
        server.terminate()
        server.wait(timeout=10)
