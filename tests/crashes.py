"""Crash injection for paid and long work: a real worker process killed with SIGKILL at a
step boundary, found by watching the database (a row's state, a job running) while the
sandbox holds the request in flight (latency faults) or the worker's own pace holds it
back; then a fresh worker, and what both left behind checked against the sandbox's own
record of what was created.

Why: a claim, a lease and a compare-and-set only prove themselves when a run dies where
it hurts most. Workers here run with ``RECOVERY_SECONDS`` of a few seconds so a dead
worker's jobs, lapsed leases and unowned steps are resumed within the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import Engine, text

from tests.workers import wait_for

# Short enough for a test, long enough that a live worker always renews in time.
RECOVERY_SECONDS = "4"


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no handler runs, no job is finished, no lease released."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def watch(check: Callable[[], Any], *, what: str, timeout: float = 120) -> Any:
    """``wait_for`` polling the database often: the windows a kill aims at are short."""
    return wait_for(check, timeout=timeout, what=what, every=0.02)


def job_running(engine: Engine, task: str, argument: str, value: int | str) -> bool:
    """Whether a worker is running ``task`` for ``argument`` = ``value`` right now."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM ops.procrastinate_jobs WHERE status = 'doing'"
                    " AND task_name = :task AND args ->> :argument = :value"
                ),
                {"task": task, "argument": argument, "value": str(value)},
            ).scalar_one()
        )


def jobs_left(engine: Engine, argument: str, value: int) -> list[tuple[str, str]]:
    """(task, status) of every job still waiting or running for ``argument`` = ``value``."""
    with engine.connect() as conn:
        return [
            (row.task_name, row.status)
            for row in conn.execute(
                text(
                    "SELECT task_name, status FROM ops.procrastinate_jobs"
                    " WHERE status IN ('todo', 'doing') AND args ->> :argument = :value"
                ),
                {"argument": argument, "value": str(value)},
            )
        ]


def counts(sandbox_url: str) -> dict[str, int]:
    """Everything the sandbox carried out, by kind (``trainings.create``…)."""
    found: dict[str, int] = httpx.get(f"{sandbox_url}/_sandbox/stats").json()["counts"]
    return found


def carried_out(sandbox_url: str, kind: str) -> bool:
    """Whether the sandbox has carried out a create of ``kind`` (``trainings.create``…)
    since its world was put back (which clears its counts): a kill aimed at "the create
    carried out, its answer not back" must wait for this, since the row says "creating"
    from before the request is sent."""
    return counts(sandbox_url).get(kind, 0) > 0


@contextmanager
def faults(sandbox_url: str, *rules: dict[str, Any]) -> Iterator[None]:
    """The rules in force for the block, cleared after it (also when it fails)."""
    for rule in rules:
        httpx.post(f"{sandbox_url}/_sandbox/faults", json=rule).raise_for_status()
    try:
        yield
    finally:
        clear_faults(sandbox_url)


def clear_faults(sandbox_url: str) -> None:
    httpx.delete(f"{sandbox_url}/_sandbox/faults").raise_for_status()
