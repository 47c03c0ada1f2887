"""The gateway under trouble the sandbox injects: throttling, server errors, slow and hung
responses, and creates whose answer is lost. Reads recover; paid creates are never
sent twice; what cannot be recovered becomes the project's own error."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from core.errors import (
    CreateOutcomeUnknown,
    DataRejected,
    InvalidInput,
    InvalidVersion,
    RateLimited,
    ReplicateUnavailable,
    Unauthorized,
)
from core.gateway.gateway import ReplicateGateway
from core.gateway.limits import RateLimits
from core.gateway.retry import RetryPolicy
from core.sandbox.catalog import FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION
from tests.photos import selfie_zip
from tests.waits import until_ended

MakeGateway = Callable[..., ReplicateGateway]  # the make_gateway fixture


def _counts(control: httpx.Client) -> dict[str, int]:
    return dict(control.get("/stats").json()["counts"])


def _fault(control: httpx.Client, **rule: object) -> None:
    control.post("/faults", json=rule).raise_for_status()


@pytest.fixture
def version(gateway: ReplicateGateway) -> str:
    gateway.create_model("sandrasocial/faulty")
    zip_url = gateway.upload_file(
        selfie_zip(5, long_side=400), filename="i.zip", content_type="application/zip"
    ).url
    training = gateway.create_training(
        FAST_FLUX_TRAINER,
        FAST_FLUX_TRAINER_VERSION,
        "sandrasocial/faulty",
        {"input_images": zip_url, "trigger_word": "userz"},
    )
    training = until_ended(lambda: gateway.get_training(training.id), what="the training")
    assert training.version_hash
    return training.version_hash


def test_429_burst_with_retry_after_is_waited_out(
    gateway: ReplicateGateway, control: httpx.Client
) -> None:
    _fault(control, status=429, count=2, retry_after=1, path="^/v1/models/replicate/")
    started = time.monotonic()
    model = gateway.get_model(FAST_FLUX_TRAINER)
    waited = time.monotonic() - started
    assert model is not None and model.latest_version is not None
    assert model.latest_version.id == FAST_FLUX_TRAINER_VERSION
    assert _counts(control)["GET /v1/models/replicate/fast-flux-trainer"] == 3
    # Retry-After said 1 s twice: the gateway slept at least that, not its own 10 ms backoff.
    assert waited >= 2.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_on_reads_are_retried(
    gateway: ReplicateGateway, control: httpx.Client, status: int
) -> None:
    _fault(control, status=status, count=3, path="^/v1/models/")
    model = gateway.get_model(FAST_FLUX_TRAINER)
    assert model is not None and model.key == FAST_FLUX_TRAINER
    assert _counts(control)["GET /v1/models/replicate/fast-flux-trainer"] == 4


def test_outage_becomes_replicate_unavailable_within_budget(
    make_gateway: MakeGateway, control: httpx.Client
) -> None:
    _fault(control, status=503, path="^/v1/")
    gateway = make_gateway(
        policy=RetryPolicy(base_delay=0.05, max_delay=0.2, total_seconds=1.0, max_attempts=50)
    )
    with pytest.raises(ReplicateUnavailable) as caught:
        gateway.get_model(FAST_FLUX_TRAINER)
    # The 1 s budget ended the retries, not the 50 attempts allowed.
    assert 2 <= _counts(control)["GET /v1/models/replicate/fast-flux-trainer"] < 50
    assert "try again" in str(caught.value)
    assert caught.value.status == 503


def test_hung_response_times_out_and_is_retried(
    make_gateway: MakeGateway, control: httpx.Client
) -> None:
    _fault(control, timeout=True, hang_seconds=3, count=1, path="^/v1/models/")
    gateway = make_gateway(timeout=0.5)
    model = gateway.get_model(FAST_FLUX_TRAINER)
    assert model is not None and model.key == FAST_FLUX_TRAINER
    assert _counts(control)["GET /v1/models/replicate/fast-flux-trainer"] == 2


def test_slow_responses_still_answer(gateway: ReplicateGateway, control: httpx.Client) -> None:
    _fault(control, latency_ms=150, path="^/v1/models/")
    started = time.monotonic()
    assert gateway.get_model(FAST_FLUX_TRAINER) is not None
    assert time.monotonic() - started >= 0.15


def test_prediction_create_lost_answer_is_not_resent(
    gateway: ReplicateGateway, control: httpx.Client, version: str
) -> None:
    """The create went through but its answer was a 500: never send it again."""
    _fault(control, status=500, count=1, when="after", path="^/v1/predictions$", methods=["POST"])
    with pytest.raises(CreateOutcomeUnknown) as caught:
        gateway.create_prediction(version, {"prompt": "userz"})
    assert "check" in str(caught.value).lower()
    assert _counts(control)["POST /v1/predictions"] == 1
    # ...and it did happen: the sandbox holds exactly one prediction.
    assert len(control.get("/stats").json()["counts"]) > 0
    assert sandbox_predictions(control) == 1


def sandbox_predictions(control: httpx.Client) -> int:
    return int(_counts(control).get("predictions.create", 0))


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_prediction_create_is_never_retried_on_server_errors(
    gateway: ReplicateGateway,
    control: httpx.Client,
    version: str,
    status: int,
) -> None:
    _fault(control, status=status, count=1, path="^/v1/predictions$", methods=["POST"])
    with pytest.raises(CreateOutcomeUnknown):
        gateway.create_prediction(version, {"prompt": "userz"})
    assert _counts(control)["POST /v1/predictions"] == 1


def test_prediction_create_is_retried_after_429(
    gateway: ReplicateGateway, control: httpx.Client, version: str
) -> None:
    _fault(control, status=429, count=2, retry_after=1, path="^/v1/predictions$", methods=["POST"])
    prediction = gateway.create_prediction(version, {"prompt": "userz"}, wait=True)
    assert prediction.status == "succeeded"
    assert _counts(control)["POST /v1/predictions"] == 3
    assert sandbox_predictions(control) == 1  # two throttled, one created


def test_training_create_lost_answer_is_not_resent(
    gateway: ReplicateGateway, control: httpx.Client
) -> None:
    gateway.create_model("sandrasocial/t")
    zip_url = gateway.upload_file(
        selfie_zip(5, long_side=300), filename="i.zip", content_type="application/zip"
    ).url
    _fault(control, status=502, count=1, when="after", path="/trainings$", methods=["POST"])
    with pytest.raises(CreateOutcomeUnknown):
        gateway.create_training(
            FAST_FLUX_TRAINER,
            FAST_FLUX_TRAINER_VERSION,
            "sandrasocial/t",
            {"input_images": zip_url},
        )
    assert _counts(control)["trainings.create"] == 1
    assert len(gateway.list_trainings()) == 1  # the caller can find it before resending


def test_create_model_is_idempotent_across_a_lost_answer(
    gateway: ReplicateGateway, control: httpx.Client
) -> None:
    _fault(control, status=500, count=1, when="after", path="^/v1/models$", methods=["POST"])
    model = gateway.create_model("sandrasocial/once")
    assert model.key == "sandrasocial/once"
    assert _counts(control)["models.create"] == 1


def test_twenty_percent_errors_on_200_reads_all_correct(
    gateway: ReplicateGateway, control: httpx.Client
) -> None:
    for index in range(20):
        gateway.create_model(f"sandrasocial/user-{index:02d}-selfie-lora")
    _fault(control, status=500, share=0.1, path="^/v1/models/", seed=42)
    _fault(control, status=429, share=0.1 / 0.9, retry_after=1, path="^/v1/models/")
    names = [f"sandrasocial/user-{index % 20:02d}-selfie-lora" for index in range(200)]
    outcomes = gateway.get_models(names, max_workers=16)
    assert [outcome.error for outcome in outcomes] == [None] * 200
    assert [outcome.value.key for outcome in outcomes if outcome.value] == names
    rules = control.get("/faults").json()["rules"]
    assert sum(rule["hits"] for rule in rules) >= 20  # the faults really fired


def test_errors_are_translated(
    gateway: ReplicateGateway, make_gateway: MakeGateway, version: str
) -> None:
    with pytest.raises(InvalidVersion):
        gateway.create_prediction("0" * 64, {"prompt": "x"})
    with pytest.raises(InvalidInput):
        gateway.create_prediction(version, {"seed": 1})
    with pytest.raises(DataRejected):
        gateway.create_prediction(f"sandrasocial/faulty:{version}", {"prompt": "x"})
    with pytest.raises(DataRejected):
        gateway.get_model("not-a-model-id")
    assert gateway.get_model("sandrasocial/does-not-exist") is None
    anonymous = make_gateway(token="")  # no Authorization header at all
    with pytest.raises(Unauthorized) as caught:
        anonymous.get_model(FAST_FLUX_TRAINER)
    assert "REPLICATE_API_TOKEN" in str(caught.value)


def test_sandbox_rate_limit_is_respected(make_gateway: MakeGateway, control: httpx.Client) -> None:
    """The sandbox enforces 120/min; the gateway paces itself to the same limit, so at most
    a throttle or two at the edges (clock jitter), each retried, and all reads succeed."""
    control.post("/rate-limits", json={"other_per_minute": 120, "burst_seconds": 1})
    gateway = make_gateway(limits=RateLimits.per_minute(600, 120))
    outcomes = gateway.get_models([FAST_FLUX_TRAINER] * 8, max_workers=4)
    assert all(outcome.value is not None for outcome in outcomes)
    assert 8 <= _counts(control)["GET /v1/models/replicate/fast-flux-trainer"] <= 10


def test_throttled_until_the_budget_ends_is_rate_limited(
    make_gateway: MakeGateway, control: httpx.Client
) -> None:
    _fault(control, status=429, retry_after=5, path="^/v1/")
    gateway = make_gateway(policy=RetryPolicy(total_seconds=2))
    with pytest.raises(RateLimited) as caught:
        gateway.get_model(FAST_FLUX_TRAINER)
    assert caught.value.status == 429
    # Retry-After (5 s) is past the 2 s budget: it gives up at once instead of sleeping.
    assert _counts(control)["GET /v1/models/replicate/fast-flux-trainer"] == 1


@pytest.mark.parametrize("wording", ["resets", "expected"])
@pytest.mark.parametrize("retry_after_as", ["seconds", "date", "none"])
def test_429s_in_every_documented_form_are_waited_out(
    gateway: ReplicateGateway,
    control: httpx.Client,
    version: str,
    wording: str,
    retry_after_as: str,
) -> None:
    """Retry-After in seconds, as an HTTP date, or absent (then ratelimit-reset and the
    body's wording say it): a read and a paid create each wait about a second, once."""
    throttle = {"status": 429, "count": 1, "retry_after": 1, "wording": wording}
    throttle["retry_after_as"] = retry_after_as
    _fault(control, **throttle, path="^/v1/models/replicate/")
    _fault(control, **throttle, path="^/v1/predictions$", methods=["POST"])
    started = time.monotonic()
    assert gateway.get_model(FAST_FLUX_TRAINER) is not None
    assert gateway.create_prediction(version, {"prompt": "userz"}).id
    assert time.monotonic() - started >= 1.5  # two waits of (about) a second, not 10 ms
    assert sandbox_predictions(control) == 1


@pytest.mark.parametrize("retry_after_as", ["seconds", "date", "none"])
def test_rate_limited_keeps_the_wait_replicate_asked_for(
    make_gateway: MakeGateway, control: httpx.Client, retry_after_as: str
) -> None:
    _fault(
        control,
        status=429,
        retry_after=20,
        retry_after_as=retry_after_as,
        wording="expected",
        path="^/v1/",
    )
    gateway = make_gateway(policy=RetryPolicy(total_seconds=2))
    with pytest.raises(RateLimited) as caught:
        gateway.get_model(FAST_FLUX_TRAINER)
    assert caught.value.retry_after is not None and 18 <= caught.value.retry_after <= 21
    assert "about" in str(caught.value)


def test_the_sandbox_rate_limit_headers_alone_pace_the_gateway(
    make_gateway: MakeGateway, control: httpx.Client
) -> None:
    """No Retry-After at all: the gateway waits as ratelimit-reset (and the wording) say."""
    control.post(
        "/rate-limits",
        json={"other_per_minute": 60, "burst_seconds": 1, "retry_after_as": "none"},
    ).raise_for_status()
    gateway = make_gateway(limits=RateLimits.per_minute(60_000, 60_000))  # no pacing of its own
    started = time.monotonic()
    outcomes = gateway.get_models([FAST_FLUX_TRAINER] * 3, max_workers=1)
    assert all(outcome.value is not None for outcome in outcomes)
    assert time.monotonic() - started >= 1.5  # one request a second
    answer = httpx.get(
        f"{gateway.base_url}/v1/models/{FAST_FLUX_TRAINER}", headers={"Authorization": "Bearer x"}
    )
    assert answer.status_code == 429 and "retry-after" not in answer.headers
    assert answer.headers["ratelimit-remaining"] == "0" and answer.headers["ratelimit-reset"]


def test_a_422_that_only_mentions_version_is_invalid_input(
    gateway: ReplicateGateway, control: httpx.Client, version: str
) -> None:
    body = {
        "title": "Input validation failed",
        "detail": "- input.hf_lora: weights of another model version cannot be loaded\n",
        "status": 422,
        "invalid_fields": [{"type": "invalid", "field": "input.hf_lora", "description": "..."}],
    }
    _fault(control, status=422, count=1, body=body, path="^/v1/predictions$")
    with pytest.raises(InvalidInput, match="weights of another model version"):
        gateway.create_prediction(version, {"prompt": "userz", "hf_lora": "x"})
    with pytest.raises(InvalidVersion):
        gateway.create_prediction("1" * 64, {"prompt": "userz"})


def test_a_hung_create_is_cut_by_the_gateways_timeout(
    make_gateway: MakeGateway, control: httpx.Client, version: str
) -> None:
    """replicate 1.0.7 sends a create without ``wait`` with no timeout at all."""
    _fault(control, timeout=True, hang_seconds=4, count=1, path="^/v1/predictions$")
    gateway = make_gateway(timeout=0.5)
    # Without the timeout the sandbox would answer after 4 s: a prediction, no error.
    with pytest.raises(CreateOutcomeUnknown, match="no answer in time"):
        gateway.create_prediction(version, {"prompt": "userz"})
