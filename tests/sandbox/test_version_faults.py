"""Fault rules that name a version (``"version"`` in ``POST /_sandbox/faults``) hit only
requests about that version: the creates that run it or train on it, and the reads and
cancels of what was created with it. Through the official client and on the wire."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from replicate.client import Client
from replicate.exceptions import ReplicateError

from core.sandbox.catalog import (
    FAST_FLUX_TRAINER,
    FAST_FLUX_TRAINER_VERSION,
    OSTRIS_TRAINER,
    OSTRIS_TRAINER_VERSION,
)
from core.sandbox.server import RunningSandbox
from tests.conftest import TEST_TOKEN
from tests.sandbox.conftest import COLUMN_A, COLUMN_B, TRIGGER, Columns

PROMPT = {"prompt": f"{TRIGGER} portrait", "megapixels": "0.25", "output_format": "png"}


@pytest.fixture
def api(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    """The sandbox's ``/v1`` with a token, for answers the client would not show as sent."""
    with httpx.Client(
        base_url=f"{sandbox.base_url}/v1", headers={"Authorization": f"Bearer {TEST_TOKEN}"}
    ) as http:
        yield http


def _add_rule(control: httpx.Client, **rule: object) -> dict[str, Any]:
    answer = control.post("/faults", json=rule)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _counts(control: httpx.Client) -> dict[str, int]:
    return dict(control.get("/stats").json()["counts"])


def _seconds(call: Callable[[], object]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


@pytest.mark.timeout(30)
def test_a_502_after_rule_loses_only_that_versions_create_answers(
    client: Client, control: httpx.Client, columns: Columns
) -> None:
    rule = _add_rule(control, status=502, when="after", version=f"{COLUMN_A}:{columns.a}")
    assert rule["version"] == columns.a  # an owner/name:id is kept as its id
    other = client.predictions.create(version=columns.b, input=PROMPT, wait=True)
    assert other.status == "succeeded"
    for ref in (columns.a, f"{COLUMN_A}:{columns.a}"):
        with pytest.raises(ReplicateError) as caught:
            client.predictions.create(version=ref, input=PROMPT)
        assert caught.value.status == 502
    counts = _counts(control)
    assert counts["POST /v1/predictions"] == 3
    assert counts["predictions.create"] == 3  # the two lost answers' creates were carried out
    (listed,) = control.get("/faults").json()["rules"]
    assert listed["hits"] == 2 and listed["version"] == columns.a
    created = [prediction.version for prediction in client.predictions.list().results]
    assert sorted(created) == sorted([columns.a, columns.a, columns.b])


@pytest.mark.timeout(30)
def test_a_counted_rule_is_spent_only_by_its_versions_requests(
    client: Client, control: httpx.Client, columns: Columns
) -> None:
    _add_rule(control, status=500, count=1, version=columns.a)
    assert client.predictions.create(version=columns.b, input=PROMPT).id
    with pytest.raises(ReplicateError) as caught:
        client.predictions.create(version=columns.a, input=PROMPT)
    assert caught.value.status == 500
    assert client.predictions.create(version=columns.a, input=PROMPT).id
    assert control.get("/faults").json()["rules"] == []  # spent by its one hit, and retired
    assert _counts(control)["predictions.create"] == 2  # "before": the faulted one never ran


@pytest.mark.timeout(30)
def test_latency_on_a_version_delays_only_its_requests(
    client: Client, control: httpx.Client, columns: Columns
) -> None:
    slow = client.predictions.create(version=columns.a, input=PROMPT, wait=True)
    fast = client.predictions.create(version=columns.b, input=PROMPT, wait=True)
    delay = 0.6
    _add_rule(control, latency_ms=delay * 1000, version=columns.a)

    def hits() -> int:
        (listed,) = control.get("/faults").json()["rules"]
        return int(listed["hits"])

    # A delayed request takes at least the delay (a floor a busy machine cannot break);
    # which requests the rule delayed is its hit count, not a stopwatch.
    assert _seconds(lambda: client.predictions.get(slow.id)) >= delay
    assert hits() == 1
    client.predictions.get(fast.id)
    client.predictions.list()  # about no version
    assert hits() == 1
    assert _seconds(lambda: client.predictions.create(version=columns.a, input=PROMPT)) >= delay
    assert hits() == 2
    client.predictions.create(version=columns.b, input=PROMPT)
    assert hits() == 2


@pytest.mark.timeout(30)
def test_reads_and_cancels_are_about_the_version_stored_with_the_job(
    api: httpx.Client, client: Client, control: httpx.Client, columns: Columns
) -> None:
    control.post("/config", json={"prediction_seconds": 60}).raise_for_status()
    on_a = client.predictions.create(version=columns.a, input=PROMPT)
    on_b = client.predictions.create(version=columns.b, input=PROMPT)
    _add_rule(control, status=503, version=columns.a, path="^/v1/predictions/")
    assert api.get(f"/predictions/{on_a.id}").status_code == 503
    assert api.post(f"/predictions/{on_a.id}/cancel").status_code == 503
    assert api.get(f"/predictions/{on_b.id}").status_code == 200
    assert api.post(f"/predictions/{on_b.id}/cancel").json()["status"] == "canceled"
    assert api.get("/predictions").status_code == 200

    control.delete("/faults").raise_for_status()
    control.post("/config", json={"training_seconds": 60}).raise_for_status()
    body = {"destination": COLUMN_A, "input": {"input_images": columns.zip_url}}
    fast_flux = api.post(
        f"/models/{FAST_FLUX_TRAINER}/versions/{FAST_FLUX_TRAINER_VERSION}/trainings", json=body
    ).json()
    ostris = api.post(
        f"/models/{OSTRIS_TRAINER}/versions/{OSTRIS_TRAINER_VERSION}/trainings", json=body
    ).json()
    _add_rule(control, status=503, version=OSTRIS_TRAINER_VERSION, path="^/v1/trainings/")
    assert api.get(f"/trainings/{ostris['id']}").status_code == 503
    assert api.post(f"/trainings/{ostris['id']}/cancel").status_code == 503
    assert api.get(f"/trainings/{fast_flux['id']}").status_code == 200
    assert api.post(f"/trainings/{fast_flux['id']}/cancel").json()["status"] == "canceled"


@pytest.mark.timeout(30)
def test_a_training_create_rule_matches_the_trainer_version(
    client: Client, control: httpx.Client, columns: Columns
) -> None:
    _add_rule(control, status=500, when="after", version=OSTRIS_TRAINER_VERSION)
    trained_before = _counts(control)["trainings.create"]
    passed = client.trainings.create(
        model=FAST_FLUX_TRAINER,
        version=FAST_FLUX_TRAINER_VERSION,
        input={"input_images": columns.zip_url},
        destination=COLUMN_A,
    )
    assert passed.version == FAST_FLUX_TRAINER_VERSION
    with pytest.raises(ReplicateError) as caught:
        client.trainings.create(
            model=OSTRIS_TRAINER,
            version=OSTRIS_TRAINER_VERSION,
            input={"input_images": columns.zip_url},
            destination=COLUMN_B,
        )
    assert caught.value.status == 500
    assert _counts(control)["trainings.create"] == trained_before + 2  # both were carried out


@pytest.mark.timeout(30)
def test_a_model_addressed_create_is_about_the_models_latest_version(
    api: httpx.Client, control: httpx.Client, columns: Columns
) -> None:
    _add_rule(control, status=503, version=columns.a, methods=["POST"])
    assert api.post(f"/models/{COLUMN_A}/predictions", json={"input": PROMPT}).status_code == 503
    # Column B runs another version, so its create goes on: to the 404 Replicate answers
    # a model-addressed create on a model that is not an official one.
    assert api.post(f"/models/{COLUMN_B}/predictions", json={"input": PROMPT}).status_code == 404


@pytest.mark.timeout(30)
def test_a_rule_for_a_version_nobody_runs_never_fires(
    client: Client, control: httpx.Client, columns: Columns
) -> None:
    _add_rule(control, status=500, version="f" * 64)
    assert client.predictions.create(version=columns.a, input=PROMPT, wait=True).status == (
        "succeeded"
    )
    (listed,) = control.get("/faults").json()["rules"]
    assert listed["hits"] == 0


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "version", ["not-a-version", "A" * 64, "a" * 63, 7, "sandrasocial:" + "a" * 64, ""]
)
def test_a_version_that_is_not_a_version_id_is_a_bad_fault(
    control: httpx.Client, version: object
) -> None:
    answer = control.post("/faults", json={"status": 500, "version": version})
    assert answer.status_code == 400
    assert answer.json()["title"] == "Bad fault"
    assert control.get("/faults").json()["rules"] == []


@pytest.mark.timeout(30)
def test_a_held_answer_carries_the_create_out_before_its_client_gives_up(
    api: httpx.Client, control: httpx.Client, columns: Columns
) -> None:
    """``when="after"`` with only ``latency_ms``: the create happens at once, its answer
    waits; a client that gives up (or dies) meanwhile never learns what was done."""
    _add_rule(control, latency_ms=3000, when="after", path=r"^/v1/predictions$", methods=["POST"])
    before = _counts(control).get("predictions.create", 0)
    with pytest.raises(httpx.ReadTimeout):
        api.post("/predictions", json={"version": columns.a, "input": PROMPT}, timeout=0.5)
    assert _counts(control)["predictions.create"] == before + 1  # done, answer still held
    listed = api.get("/predictions").json()["results"]
    assert [item["version"] for item in listed].count(columns.a) == 1
