"""How a sandbox training or prediction moves through its statuses, as pure functions.

A job carries its own schedule (``start_at``, ``done_at``, fixed when it was created
from the pace then in force) and its planned ``outcome``. ``step`` looks at the clock and
says what the job's document should now say; the engine applies it and performs the
side effects (adding the new version, rendering images) that a finish requires.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})


def iso(at: float) -> str:
    """Replicate's timestamp format: UTC, microseconds, ``Z``."""
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> float:
    return time.time()


@dataclass(frozen=True)
class Step:
    """What a job should look like at a given moment."""

    status: str
    logs: str
    finishing: bool = False  # True when the engine must now run the job's finish
    error: str | None = None


def training_logs(steps_done: int, steps_total: int, *, every: int | None = None) -> str:
    """``step N/M`` lines the way the trainers print progress, one line per tenth."""
    interval = every or max(1, steps_total // 10)
    lines = ["Preparing dataset", "Loading FLUX.1-dev and the LoRA adapter"]
    lines += [
        f"flux_train_replicate: step {n}/{steps_total}, loss: {0.42 - 0.2 * n / steps_total:.4f}"
        for n in range(interval, steps_done + 1, interval)
    ]
    return "\n".join(lines) + "\n"


def step_training(doc: dict[str, Any], extra: dict[str, Any], at: float) -> Step | None:
    """The training's status at time ``at``; None when nothing changes."""
    if doc["status"] in TERMINAL:
        return None
    outcome = extra.get("outcome") or {}
    steps_total = int(extra.get("steps") or 1000)
    if at < extra["start_at"]:
        return None
    if outcome.get("kind") == "abort":
        return Step(status="aborted", logs="", finishing=True)
    if at < extra["done_at"]:
        span = max(extra["done_at"] - extra["start_at"], 1e-9)
        done = int(steps_total * (at - extra["start_at"]) / span)
        return Step(status="processing", logs=training_logs(done, steps_total))
    if outcome.get("kind") == "fail":
        partial = training_logs(steps_total // 3, steps_total)
        return Step(
            status="failed",
            logs=partial + f"Training failed: {outcome['error']}\n",
            finishing=True,
            error=str(outcome["error"]),
        )
    return Step(
        status="succeeded",
        logs=training_logs(steps_total, steps_total) + "Training complete. Uploading weights\n",
        finishing=True,
    )


def step_prediction(doc: dict[str, Any], extra: dict[str, Any], at: float) -> Step | None:
    """The prediction's status at time ``at``; None when nothing changes."""
    if doc["status"] in TERMINAL or at < extra["start_at"]:
        return None
    if at < extra["done_at"]:
        if doc["status"] == "processing":
            return None
        return Step(status="processing", logs="Loading LoRA weights\n")
    return Step(status="succeeded", logs="Loading LoRA weights\n", finishing=True)
