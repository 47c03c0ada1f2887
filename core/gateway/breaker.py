"""A circuit breaker for the pages' Replicate calls: fail at once while Replicate is down.

Without it, every page run with Replicate answering plain 503s (or hanging) waited out
each call's retries: 27 s for the Users page's 50 models, again on every rerun. Per
process, shared by every session and thread: after ``threshold`` calls in a row ended in
an outage (``ReplicateUnavailable``, ``RateLimited``; one by default: each call has
already spent its own short retries) calls fail at once for ``cool_off_seconds`` with a
message saying so; then one call is let through as a probe:
its success closes the breaker, its failure opens it again. A call Replicate answered
(even 404 or 422) counts as a success: Replicate is up. Workers have no breaker: a scan
waits out an outage with its longer retries instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core.errors import RateLimited, ReplicateError, ReplicateUnavailable

OUTAGES = (ReplicateUnavailable, RateLimited)


class CircuitBreaker:
    """See the module docstring. Thread-safe."""

    def __init__(
        self,
        *,
        threshold: int = 1,
        cool_off_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = max(1, threshold)
        self._cool_off = cool_off_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._last_problem = ""
        self._probing = False

    def before_call(self, action: str) -> bool:
        """Raise ``ReplicateUnavailable`` at once while open; True when this call is the
        probe (the caller reports how it went, as for any call)."""
        with self._lock:
            if self._opened_at is None:
                return False
            waited = self._clock() - self._opened_at
            if waited >= self._cool_off and not self._probing:
                self._probing = True
                return True
            again = max(0, round(self._cool_off - waited))
        raise ReplicateUnavailable(
            f"{self._last_problem}. The console stops asking for a few seconds (not "
            f"{action} now) and shows what the database holds; reload in about {again} s "
            "to try again."
        )

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def failed(self, error: ReplicateError) -> None:
        with self._lock:
            self._failures += 1
            self._probing = False
            self._last_problem = _first_sentence(str(error))
            if self._failures >= self._threshold or self._opened_at is not None:
                self._opened_at = self._clock()


def _first_sentence(text: str) -> str:
    head = text.split(". ", 1)[0].strip().rstrip(".")
    return head[:160] or "no answer"
