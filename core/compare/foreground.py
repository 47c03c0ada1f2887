"""Running a comparison's steps in this process (the command line without workers).

The same steps the workers run (``core.compare.run``), scheduled here: each step's
follow-ups run when due, at most ``concurrency`` at once (predictions are paced by the
gateway's create limit), until nothing is left or the deadline passes.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from core.compare import run
from core.compare.run import CompareSettings, Next
from core.errors import ReplicateUnavailable
from core.jobs.app import TaskName
from core.jobs.context import JobServices

# An image is done when one of these returns no follow-up (ended, or scored).
IMAGE_STEPS = frozenset({TaskName.FOLLOW_IMAGE, TaskName.SCORE_IMAGE})


def _step(services: JobServices, settings: CompareSettings, step: Next) -> list[Next]:
    if step.task is TaskName.START_COMPARISON:
        return run.start(services, step.argument)
    if step.task is TaskName.PREDICT_IMAGE:
        return run.predict(services, settings, step.argument)
    if step.task is TaskName.FOLLOW_IMAGE:
        return run.follow(services, settings, step.argument)
    if step.task is TaskName.SCORE_IMAGE:
        return run.score(services, settings, step.argument)
    return run.cancel(services, step.argument)


def run_here(
    services: JobServices,
    settings: CompareSettings,
    comparison_id: int,
    *,
    deadline_seconds: float,
    concurrency: int = 8,
    progress: Callable[[str], None] | None = None,
    first: Sequence[Next] | None = None,
) -> None:
    """Run ``comparison_id`` from its start (or from ``first``: a retried image's create)
    until no step is left. ``ReplicateUnavailable`` when the deadline passes first (the
    comparison stays running: workers can finish it)."""
    deadline = time.monotonic() + deadline_seconds
    order = itertools.count()
    starts = first if first is not None else [Next(TaskName.START_COMPARISON, comparison_id)]
    due: list[tuple[float, int, Next]] = [(time.monotonic(), next(order), step) for step in starts]
    running: dict[Future[list[Next]], Next] = {}
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="compare") as pool:
        while due or running:
            if time.monotonic() > deadline:
                raise ReplicateUnavailable(
                    f"Comparison #{comparison_id} did not finish within "
                    f"{deadline_seconds:.0f} s; it stays running for the workers."
                )
            now = time.monotonic()
            while due and due[0][0] <= now and len(running) < concurrency:
                _, _, step = heapq.heappop(due)
                running[pool.submit(_step, services, settings, step)] = step
            timeout = max(0.05, min(1.0, (due[0][0] - now) if due else 1.0))
            done, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                step = running.pop(future)
                follow_ups = future.result()
                for follow_up in follow_ups:
                    at = time.monotonic() + (follow_up.after_seconds or 0.0)
                    heapq.heappush(due, (at, next(order), follow_up))
                if progress is not None and step.task in IMAGE_STEPS and not follow_ups:
                    progress(f"image #{step.argument} done")
