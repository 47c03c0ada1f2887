"""``build_client``: the one place that knows how replicate 1.x is wired.

These tests fail on a client version that stops forwarding httpx options to its session
(``mounts``, ``event_hooks``): then its hidden retry loop would be back, its answers would
no longer reach the gateway, and its creates would again wait without a timeout.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest
import replicate.exceptions

from core.errors import ConfigError
from core.gateway.client import ReplicateConnection, build_client, check_client_version
from core.sandbox.catalog import FAST_FLUX_TRAINER
from core.sandbox.server import RunningSandbox
from tests.conftest import TEST_TOKEN


@pytest.fixture
def connection(sandbox: RunningSandbox) -> Iterator[ReplicateConnection]:
    built = build_client(TEST_TOKEN, sandbox.base_url, timeout=httpx.Timeout(0.5))
    yield built
    built.close()


def _count(control: httpx.Client, key: str) -> int:
    return int(control.get("/stats").json()["counts"].get(key, 0))


def test_the_clients_own_retry_loop_is_bypassed(
    connection: ReplicateConnection, control: httpx.Client
) -> None:
    """replicate 1.0.7 alone would resend this GET on 503 up to 10 times (and succeed)."""
    control.post("/faults", json={"status": 503, "count": 3, "path": "^/v1/models/"})
    with pytest.raises(replicate.exceptions.ReplicateError) as caught:
        connection.client.models.get(FAST_FLUX_TRAINER)
    assert caught.value.status == 503
    assert _count(control, "GET /v1/models/replicate/fast-flux-trainer") == 1


def test_every_answer_the_client_gets_is_kept_for_its_thread(
    connection: ReplicateConnection, control: httpx.Client
) -> None:
    connection.forget_answer()
    assert connection.last_answer() is None
    connection.client.models.get(FAST_FLUX_TRAINER)
    answer = connection.last_answer()
    assert answer is not None and answer.status == 200
    assert b'"name":"fast-flux-trainer"' in answer.body
    control.post(
        "/faults", json={"status": 503, "retry_after": 7, "count": 1, "path": "^/v1/models/"}
    )
    with pytest.raises(replicate.exceptions.ReplicateError):
        connection.client.models.get(FAST_FLUX_TRAINER)
    answer = connection.last_answer()
    assert answer is not None and answer.headers["retry-after"] == "7"  # the client drops it


@pytest.mark.parametrize("what", ["prediction", "upload"])
def test_creates_the_client_sends_without_a_timeout_get_the_gateways(
    connection: ReplicateConnection, control: httpx.Client, what: str
) -> None:
    """replicate 1.0.7 sends these with timeout=None: a hung Replicate would hold a worker
    forever. Here the sandbox holds the request 3 s; the connection's timeout is 0.5 s."""
    control.post("/faults", json={"timeout": True, "hang_seconds": 3, "methods": ["POST"]})
    # Without the timeout the sandbox would answer after 3 s and nothing would be raised.
    with pytest.raises(httpx.ReadTimeout):
        if what == "prediction":
            connection.client.predictions.create(version="a" * 64, input={"prompt": "x"})
        else:
            connection.client.files.create(io.BytesIO(b"zip"), filename="x.zip")


def test_a_blank_token_sends_no_authorization_not_the_environments(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_from_the_environment")
    anonymous = build_client("", sandbox.base_url)
    try:
        with pytest.raises(replicate.exceptions.ReplicateError) as caught:
            anonymous.client.models.get(FAST_FLUX_TRAINER)
        assert caught.value.status == 401
        assert anonymous.api.get("/v1/models/replicate/fast-flux-trainer").status_code == 401
    finally:
        anonymous.close()


def test_only_replicate_1x_and_http_base_urls_are_accepted() -> None:
    check_client_version("1.0.7")
    for version in ("2.0.0", "0.34.1", ""):
        with pytest.raises(ConfigError, match=r"requirements\.txt"):
            check_client_version(version)
    with pytest.raises(ConfigError, match="REPLICATE_BASE_URL"):
        build_client(TEST_TOKEN, "ftp://api.replicate.com")


def test_close_is_idempotent(sandbox: RunningSandbox) -> None:
    built = build_client(TEST_TOKEN, sandbox.base_url)
    built.client.models.get(FAST_FLUX_TRAINER)
    built.api.get("/v1/account").raise_for_status()
    built.close()
    built.close()
