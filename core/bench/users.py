"""Benchmark figure: the Users page's Replicate part with Replicate up, down and hanging
(registered in ``core.bench``; nothing asserts a threshold).

The page reads one page of 50 users from the database and the latest version of each
user's model from Replicate, 8 at a time, through the gateway the console's pages use
(``core.runtime.INTERACTIVE``: short timeouts and retries, the circuit breaker). Against a
standalone sandbox: no fault, every ``/v1/`` answer a plain 503 (no ``Retry-After``), and
every ``/v1/`` request hanging. Each is measured with a fresh gateway (a closed breaker),
as the first page load after Replicate went down; the figure is each time and its ratio
to the time with Replicate up.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from core import users
from core.bench.scan import create_models
from core.gateway.breaker import CircuitBreaker
from core.gateway.gateway import ReplicateGateway, build_client
from core.gateway.limits import RateLimits
from core.runtime import INTERACTIVE

MODELS = 50
OWNER = "sandrasocial"
FAULTS: dict[str, dict[str, Any] | None] = {
    "up": None,
    "plain_503": {"status": 503, "path": "^/v1/"},
    "hanging": {"timeout": True, "hang_seconds": 10, "path": "^/v1/"},
}


def _page_gateway(base_url: str) -> ReplicateGateway:
    return ReplicateGateway(
        build_client("r8_bench_pages", base_url, timeout=INTERACTIVE.timeout),
        limits=RateLimits.per_minute(600, 3000),
        policy=INTERACTIVE.policy,
        breaker=CircuitBreaker(),
    )


def users_page_replicate_down() -> dict[str, Any]:
    """Seconds for the Users page's latest versions (50 models) up, down and hanging."""
    from core.bench.common import standalone_sandbox

    model_ids = [f"{OWNER}/page-{index:03d}-selfie-lora" for index in range(MODELS)]
    seconds: dict[str, float] = {}
    unreachable: dict[str, int] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        standalone_sandbox(Path(tmp)) as base_url,
        httpx.Client(base_url=base_url, headers={"Authorization": "Bearer r8_b"}) as http,
    ):
        create_models(base_url, model_ids)
        for label, fault in FAULTS.items():
            http.delete("/_sandbox/faults").raise_for_status()
            if fault is not None:
                http.post("/_sandbox/faults", json=fault).raise_for_status()
            gateway = _page_gateway(base_url)
            try:
                started = time.perf_counter()
                found = users.latest_versions(gateway, model_ids, max_workers=8)
                seconds[label] = time.perf_counter() - started
            finally:
                gateway.close()
            unreachable[label] = sum(
                1 for item in found.values() if item.state is users.LatestState.UNREACHABLE
            )
        http.delete("/_sandbox/faults").raise_for_status()
    up = max(seconds["up"], 1e-6)
    return {
        "models": MODELS,
        "seconds_up": round(seconds["up"], 3),
        "seconds_plain_503": round(seconds["plain_503"], 3),
        "seconds_hanging": round(seconds["hanging"], 3),
        "ratio_plain_503_to_up": round(seconds["plain_503"] / up, 1),
        "ratio_hanging_to_up": round(seconds["hanging"] / up, 1),
        "unreachable_shown": unreachable,
        "target": "Replicate down: the page in at most 3 s",
    }
