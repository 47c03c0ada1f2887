"""The sandbox's control API (it resets the world and injects faults) refuses requests a
web page of another origin makes, and accepts the console's and the tests' own."""

from __future__ import annotations

import httpx

from core.sandbox.server import RunningSandbox


def test_a_cross_origin_request_is_refused(sandbox: RunningSandbox) -> None:
    faults = f"{sandbox.base_url}/_sandbox/faults"
    refused = httpx.post(faults, json={"status": 503}, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert "cross-origin" in refused.json()["detail"]
    assert httpx.get(faults).json()["rules"] == []  # nothing was injected


def test_same_origin_and_no_origin_are_served(sandbox: RunningSandbox) -> None:
    own = sandbox.base_url
    assert httpx.get(f"{own}/_sandbox/health", headers={"Origin": own}).status_code == 200
    assert httpx.get(f"{own}/_sandbox/health").status_code == 200


def test_a_rebound_name_is_refused_even_from_its_own_origin(sandbox: RunningSandbox) -> None:
    """DNS rebinding: evil.example resolved to 127.0.0.1 sends Host and Origin of its own."""
    port = sandbox.base_url.rsplit(":", 1)[-1]
    host = f"evil.example:{port}"
    refused = httpx.post(
        f"{sandbox.base_url}/_sandbox/faults",
        json={"status": 503},
        headers={"Host": host, "Origin": f"http://{host}"},
    )
    assert refused.status_code == 403
    assert "loopback name" in refused.json()["detail"]
    assert httpx.get(f"{sandbox.base_url}/_sandbox/faults").json()["rules"] == []
