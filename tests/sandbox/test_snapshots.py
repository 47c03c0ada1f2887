"""Snapshots of the sandbox's state (``POST /_sandbox/snapshots``, ``…/{name}/restore``):
a world trained once is put back as it was, cheaply, however much a test added to it;
rules and counters start afresh, and the restored state survives a restart."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from core.gateway.gateway import ReplicateGateway
from core.sandbox.catalog import FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION
from core.sandbox.server import RunningSandbox, start_sandbox
from tests.conftest import quick_gateway
from tests.photos import selfie_zip
from tests.waits import until_ended

pytestmark = pytest.mark.timeout(60)


def _train(gateway: ReplicateGateway, model: str) -> str:
    gateway.create_model(model)
    zip_url = gateway.upload_file(
        selfie_zip(5, long_side=300), filename="i.zip", content_type="application/zip"
    ).url
    started = gateway.create_training(
        FAST_FLUX_TRAINER,
        FAST_FLUX_TRAINER_VERSION,
        model,
        {"input_images": zip_url, "trigger_word": "usersnap"},
    )
    ended = until_ended(lambda: gateway.get_training(started.id), what="the training")
    assert ended.version_hash
    return ended.version_hash


def test_a_restore_puts_back_the_world_as_it_was_saved(
    sandbox: RunningSandbox, gateway: ReplicateGateway, control: httpx.Client
) -> None:
    kept = _train(gateway, "sandrasocial/kept")
    assert control.post("/snapshots", json={"name": "world"}).status_code == 201
    added = _train(gateway, "sandrasocial/added")
    _train(gateway, "sandrasocial/kept")  # a second version of the saved model
    control.post("/faults", json={"status": 500}).raise_for_status()
    assert control.post("/snapshots/world/restore").json() == {"restored": "world"}
    assert control.get("/faults").json()["rules"] == []  # rules start afresh
    assert control.get("/stats").json()["counts"] == {}
    assert gateway.get_model("sandrasocial/added") is None
    model = gateway.get_model("sandrasocial/kept")
    assert model is not None and model.latest_version is not None
    assert model.latest_version.id == kept
    assert added not in [version.id for version in gateway.list_versions("sandrasocial/kept")]
    # New objects after a restore are listed newest first, as always.
    again = _train(gateway, "sandrasocial/again")
    assert gateway.list_trainings()[0].output_version == f"sandrasocial/again:{again}"


def test_names_are_checked_and_an_unknown_snapshot_is_a_404(control: httpx.Client) -> None:
    assert control.post("/snapshots", json={"name": "../escape"}).status_code == 400
    assert control.post("/snapshots", json={}).status_code == 400
    assert control.post("/snapshots/never-saved/restore").status_code == 404


def test_the_restored_state_survives_a_restart(tmp_path: Path) -> None:
    first = start_sandbox(tmp_path, training_start_seconds=0, training_seconds=0)
    gateway = quick_gateway(first.base_url)
    try:
        kept = _train(gateway, "sandrasocial/kept")
        httpx.post(f"{first.base_url}/_sandbox/snapshots", json={"name": "s"}).raise_for_status()
        _train(gateway, "sandrasocial/later")
        httpx.post(f"{first.base_url}/_sandbox/snapshots/s/restore").raise_for_status()
    finally:
        gateway.close()
        first.stop()
    second = start_sandbox(tmp_path, training_start_seconds=0, training_seconds=0)
    gateway = quick_gateway(second.base_url)
    try:
        assert gateway.get_model("sandrasocial/later") is None
        model = gateway.get_model("sandrasocial/kept")
        assert model is not None and model.latest_version is not None
        assert model.latest_version.id == kept
    finally:
        gateway.close()
        second.stop()
