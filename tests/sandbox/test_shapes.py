"""The sandbox answers in Replicate's real shapes on request: shape rules
(``/_sandbox/shapes``), id styles, throttling wordings and ``Retry-After`` forms, rate-limit
headers, redirects, answers cut short. Checked on the wire, with plain HTTP."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from core.gateway.gateway import ReplicateGateway
from core.sandbox.catalog import FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION
from core.sandbox.server import RunningSandbox
from tests.conftest import TEST_TOKEN
from tests.photos import selfie_zip
from tests.waits import until_ended, wait_for

MODEL = "sandrasocial/wire"
MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
NS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


@dataclass(frozen=True)
class Wire:
    api: httpx.Client  # the sandbox's /v1 with a token
    control: httpx.Client
    version: str
    training_id: str
    zip_url: str

    def shape(self, shape: str, **rule: object) -> dict[str, object]:
        answer = self.control.post("/shapes", json={"shape": shape, **rule})
        answer.raise_for_status()
        return dict(answer.json())


@pytest.fixture
def wire(
    sandbox: RunningSandbox, gateway: ReplicateGateway, control: httpx.Client
) -> Iterator[Wire]:
    gateway.create_model(MODEL)
    zip_url = gateway.upload_file(
        selfie_zip(5, long_side=300), filename="images.zip", content_type="application/zip"
    ).url
    training = gateway.create_training(
        FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION, MODEL, {"input_images": zip_url}
    )
    training = until_ended(lambda: gateway.get_training(training.id), what="the training")
    assert training.version_hash is not None
    with httpx.Client(
        base_url=f"{sandbox.base_url}/v1", headers={"Authorization": f"Bearer {TEST_TOKEN}"}
    ) as api:
        yield Wire(api, control, training.version_hash, training.id, zip_url)


def _start_training(wire: Wire) -> dict[str, object]:
    answer = wire.api.post(
        f"/models/{FAST_FLUX_TRAINER}/versions/{FAST_FLUX_TRAINER_VERSION}/trainings",
        json={"destination": MODEL, "input": {"input_images": wire.zip_url}},
    )
    answer.raise_for_status()
    return dict(answer.json())


# -- the control API -------------------------------------------------------------------------
def test_rules_are_listed_counted_and_cleared(wire: Wire) -> None:
    rule = wire.shape("no_run_count", id=MODEL)
    assert (
        rule["shape"] == "no_run_count" and rule["hits"] == 0 and "run_count" in str(rule["help"])
    )
    wire.api.get(f"/models/{MODEL}").raise_for_status()
    assert wire.control.get("/shapes").json()["rules"][0]["hits"] == 1
    assert wire.control.get("/stats").json()["shapes"][0]["shape"] == "no_run_count"
    for bad in ({"shape": "nope"}, {"shape": "no_run_count", "share": 2}, {"shape": "x", "y": 1}):
        answer = wire.control.post("/shapes", json=bad)
        assert answer.status_code == 400 and answer.json()["title"] == "Bad shape"
    wire.control.delete("/shapes").raise_for_status()
    assert "run_count" in wire.api.get(f"/models/{MODEL}").json()
    wire.shape("no_run_count")
    wire.control.post("/reset").raise_for_status()
    assert wire.control.get("/shapes").json() == {"rules": []}


def test_a_share_picks_the_same_objects_every_time(wire: Wire) -> None:
    wire.shape("hidden_version", share=0.5)
    ids = [str(_start_training(wire)["id"]) for _ in range(16)]
    first = {i: wire.api.get(f"/trainings/{i}").json()["version"] == "hidden" for i in ids}
    again = {i: wire.api.get(f"/trainings/{i}").json()["version"] == "hidden" for i in ids}
    assert first == again and 0 < sum(first.values()) < 16


# -- models ----------------------------------------------------------------------------------
def test_model_shapes_on_the_wire(wire: Wire) -> None:
    for shape in ("null_cog_version", "null_openapi_schema", "aborted_default_example"):
        wire.shape(shape, id=MODEL)
    wire.shape("no_run_count", id=MODEL)
    wire.shape("ms_timestamps", id=MODEL)
    model = wire.api.get(f"/models/{MODEL}").json()
    assert "run_count" not in model
    assert model["default_example"]["status"] == "aborted"
    latest = model["latest_version"]
    assert latest["cog_version"] is None and latest["openapi_schema"] is None
    assert MS.match(latest["created_at"])
    listed = wire.api.get(f"/models/{MODEL}/versions").json()["results"]
    assert listed == [latest] == [wire.api.get(f"/models/{MODEL}/versions/{wire.version}").json()]
    trainer = wire.api.get(f"/models/{FAST_FLUX_TRAINER}").json()  # other models unchanged
    assert trainer["latest_version"]["cog_version"] and trainer["run_count"] == 0


# -- trainings and predictions ---------------------------------------------------------------
def test_training_shapes_on_the_wire(wire: Wire) -> None:
    wire.shape("bare_output_version", id=wire.training_id)
    wire.shape("hidden_version", id=wire.training_id)
    wire.shape("ns_timestamps", id=wire.training_id)
    done = wire.api.get(f"/trainings/{wire.training_id}").json()
    assert done["output"]["version"] == wire.version and done["version"] == "hidden"
    assert all(NS.match(done[key]) for key in ("created_at", "started_at", "completed_at"))
    assert next(iter(done)) == "id"  # Replicate's answers start with the id
    wire.control.delete("/shapes")
    wire.shape("null_output_version")
    assert wire.api.get(f"/trainings/{wire.training_id}").json()["output"]["version"] is None
    listed = wire.api.get("/trainings").json()["results"]
    assert [t["output"]["version"] for t in listed] == [None]


def test_logs_are_null_while_processing_and_after_a_cancel(wire: Wire) -> None:
    wire.control.post("/config", json={"training_seconds": 60, "prediction_seconds": 60})
    wire.shape("null_logs")
    started = _start_training(wire)
    assert started["logs"] == "" and started["status"] == "starting"
    running = wait_for(
        lambda: (
            answer
            if (answer := wire.api.get(f"/trainings/{started['id']}").json())["status"]
            == "processing"
            else None
        ),
        timeout=10,
        what="the training to be processing",
        every=0.02,
    )
    assert running["logs"] is None
    canceled = wire.api.post(f"/trainings/{started['id']}/cancel").json()
    assert canceled["status"] == "canceled" and canceled["logs"] is None
    prediction = wire.api.post(
        "/predictions", json={"version": wire.version, "input": {"prompt": "x"}}
    ).json()
    assert prediction["status"] == "processing" and prediction["logs"] is None


def test_waited_creates_echo_the_wait_and_may_still_be_processing(wire: Wire) -> None:
    body = {"version": wire.version, "input": {"prompt": "x"}}
    waited = wire.api.post("/predictions", json=body, headers={"Prefer": "wait=5"})
    assert waited.headers["preference-applied"] == "wait=5"
    assert waited.json()["status"] == "succeeded" and "stream" not in waited.json()["urls"]
    plain = wire.api.post("/predictions", json=body, headers={"Prefer": "wait"})
    assert plain.headers["preference-applied"] == "wait"
    assert "preference-applied" not in wire.api.post("/predictions", json=body).headers
    wire.shape("sync_processing")
    early = wire.api.post("/predictions", json=body, headers={"Prefer": "wait=5"}).json()
    assert early["status"] == "processing" and early["completed_at"] is None
    assert early["output"] and early["urls"]["stream"].endswith(f"/v1/streams/{early['id']}")
    assert wire.api.get(f"/predictions/{early['id']}").json()["status"] == "succeeded"


def test_prediction_data_is_removed_after_its_age(wire: Wire) -> None:
    body = {"version": wire.version, "input": {"prompt": "x"}}
    done = wire.api.post("/predictions", json=body, headers={"Prefer": "wait"}).json()
    image = done["output"][0]
    assert done["data_removed"] is False and httpx.get(image).status_code == 200
    wire.shape("data_removed")  # an hour by default
    assert wire.api.get(f"/predictions/{done['id']}").json()["output"] == [image]
    wire.shape("data_removed", after_seconds=0)
    removed = wire.api.get(f"/predictions/{done['id']}").json()
    assert removed["output"] is None and removed["data_removed"] is True
    assert removed["status"] == "succeeded"
    assert httpx.get(image).status_code == 404


# -- files and ids ---------------------------------------------------------------------------
def test_files_without_name_or_etag_and_ids_of_the_current_alphabet(wire: Wire) -> None:
    wire.shape("no_name_etag")
    wire.control.post("/config", json={"id_style": "current"}).raise_for_status()
    uploaded = wire.api.post("/files", files={"content": ("a.zip", b"zip", "application/zip")})
    doc = uploaded.json()
    assert "name" not in doc and "etag" not in doc and doc["size"] == 3
    assert re.fullmatch(r"[A-Za-z0-9]{48}", doc["id"])
    assert wire.api.get(f"/files/{doc['id']}/download").content == b"zip"
    training = _start_training(wire)
    assert re.fullmatch(r"[0-9abcdefghjkmnpqrstvwxyz]{26}", str(training["id"]))
    wire.control.post("/reset").raise_for_status()
    assert wire.control.get("/config").json()["id_style"] == "legacy"


# -- errors, throttling, rate limits ---------------------------------------------------------
def test_error_bodies_with_only_a_detail(wire: Wire, sandbox: RunningSandbox) -> None:
    wire.shape("detail_only_errors")
    assert wire.api.get("/models/sandrasocial/absent").json() == {"detail": "Not found."}
    invalid = wire.api.post("/predictions", json={"version": "0" * 64, "input": {}})
    assert invalid.status_code == 422 and list(invalid.json()) == ["detail"]
    assert httpx.get(f"{sandbox.base_url}/v1/account").json() == {
        "detail": "You did not pass a valid authentication token"
    }
    wire.control.post("/faults", json={"status": 503, "count": 1})
    assert wire.api.get("/account").json() == {
        "detail": "Service Unavailable (injected by the sandbox)"
    }
    assert wire.control.post("/shapes", json={"shape": "nope"}).json()["title"] == "Bad shape"


def test_input_errors_name_their_field(wire: Wire) -> None:
    invalid = wire.api.post("/predictions", json={"version": wire.version, "input": {"seed": 1}})
    problem = invalid.json()
    assert problem["detail"] == "- input: prompt is required\n"
    assert problem["invalid_fields"][0]["field"] == "input"


@pytest.mark.parametrize(
    ("wording", "sentence"),
    [
        ("resets", "Request was throttled. Your rate limit resets in ~3s."),
        ("expected", "Request was throttled. Expected available in 3 seconds."),
    ],
)
@pytest.mark.parametrize("retry_after_as", ["seconds", "date", "none"])
def test_429s_in_both_wordings_and_every_retry_after_form(
    wire: Wire, wording: str, sentence: str, retry_after_as: str
) -> None:
    rule = {"status": 429, "retry_after": 3, "wording": wording, "retry_after_as": retry_after_as}
    wire.control.post("/faults", json=rule).raise_for_status()
    answer = wire.api.get(f"/models/{MODEL}")
    assert answer.status_code == 429 and answer.json() == {"detail": sentence}
    assert answer.headers["ratelimit-remaining"] == "0" and answer.headers["ratelimit-reset"] == "3"
    if retry_after_as == "seconds":
        assert answer.headers["retry-after"] == "3"
    elif retry_after_as == "date":
        # Measured from the answer's own Date (whole seconds, rounded down), not from this
        # machine's clock after the answer arrived: a loaded machine cannot move it.
        when = email.utils.parsedate_to_datetime(answer.headers["retry-after"])
        sent = email.utils.parsedate_to_datetime(answer.headers["date"])
        assert 3 <= (when - sent).total_seconds() <= 5
    else:
        assert "retry-after" not in answer.headers


def test_rate_limit_headers_while_limits_are_on(wire: Wire) -> None:
    assert "ratelimit-remaining" not in wire.api.get(f"/models/{MODEL}").headers
    limits = {"other_per_minute": 120, "burst_seconds": 2, "wording": "expected"}
    wire.control.post("/rate-limits", json=limits).raise_for_status()
    remaining = [
        int(wire.api.get(f"/models/{MODEL}").headers["ratelimit-remaining"]) for _ in "abc"
    ]
    assert remaining == [3, 2, 1]
    for _ in range(2):
        throttled = wire.api.get(f"/models/{MODEL}")
    assert throttled.status_code == 429 and "Expected available in" in throttled.json()["detail"]
    assert throttled.headers["retry-after"] == throttled.headers["ratelimit-reset"] == "1"
    bad = wire.control.post("/rate-limits", json={"wording": "sometime"})
    assert bad.status_code == 400


def test_redirect_truncated_and_custom_body_faults(wire: Wire, sandbox: RunningSandbox) -> None:
    rule = {"path": "^/_blob/a$", "redirect_to": "/_blob/b", "status": 307}
    wire.control.post("/faults", json=rule).raise_for_status()
    moved = httpx.get(f"{sandbox.base_url}/_blob/a")
    assert moved.status_code == 307 and moved.headers["location"] == "/_blob/b"
    assert (
        wire.control.post("/faults", json={"redirect_to": "/x", "status": 500}).status_code == 400
    )
    wire.control.post("/faults", json={"when": "truncated", "count": 1, "path": "^/v1/trainings/"})
    cut = wire.api.get(f"/trainings/{wire.training_id}")
    assert cut.status_code == 200 and cut.content.startswith(
        f'{{"id":"{wire.training_id}"'.encode()
    )
    with pytest.raises(ValueError):
        cut.json()
    body = {
        "detail": "- input.x: version of x is wrong\n",
        "invalid_fields": [{"field": "input.x"}],
    }
    wire.control.post("/faults", json={"status": 422, "body": body, "count": 1})
    assert wire.api.get("/account").json() == body
