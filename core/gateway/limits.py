"""Client-side pacing shared by every thread: Replicate's rate limits as token buckets,
and a bounded-concurrency map that isolates failures per item."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

PREDICTION_CREATES_PER_MINUTE = 600.0  # Replicate: create prediction
OTHER_CALLS_PER_MINUTE = 3000.0  # Replicate: every other endpoint


class TokenBucket:
    """``per_minute`` calls on average, bursts of up to ``burst`` at once.

    ``acquire`` reserves a slot under the lock and sleeps outside it, so many threads
    waiting on one bucket are released in order and never exceed the rate together.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._capacity = burst if burst is not None else max(1.0, self._rate)
        self._tokens = self._capacity
        self._clock, self._sleep = clock, sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a slot; returns how long this call waited."""
        with self._lock:
            at = self._clock()
            self._tokens = min(self._capacity, self._tokens + (at - self._stamp) * self._rate)
            self._stamp = at
            self._tokens -= 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self._rate
        if wait:
            self._sleep(wait)
        return wait


@dataclass
class RateLimits:
    """The two budgets Replicate enforces; one instance is shared by all gateway threads."""

    prediction_creates: TokenBucket = field(
        default_factory=lambda: TokenBucket(PREDICTION_CREATES_PER_MINUTE)
    )
    other_calls: TokenBucket = field(default_factory=lambda: TokenBucket(OTHER_CALLS_PER_MINUTE))

    @classmethod
    def per_minute(cls, prediction_creates: float, other_calls: float) -> RateLimits:
        return cls(TokenBucket(prediction_creates), TokenBucket(other_calls))


@dataclass(frozen=True)
class Outcome(Generic[Item, Result]):
    """One item's result or the error it raised: a failure stays with its item."""

    item: Item
    value: Result | None = None
    error: Exception | None = None


def map_bounded(
    function: Callable[[Item], Result], items: Iterable[Item], *, max_workers: int = 8
) -> list[Outcome[Item, Result]]:
    """Apply ``function`` to every item with at most ``max_workers`` running at once.

    Results come back in the order of ``items``; an exception is recorded on its item's
    outcome and does not stop the others.
    """

    def run(item: Item) -> Outcome[Item, Result]:
        try:
            return Outcome(item, function(item))
        except Exception as exc:
            return Outcome(item, error=exc)

    with ThreadPoolExecutor(
        max_workers=max(1, max_workers), thread_name_prefix="replicate"
    ) as pool:
        return list(pool.map(run, items))
