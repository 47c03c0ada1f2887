"""When to try a Replicate call again, and how a failure reads to a support agent.

Two kinds of call:
- ``SAFE`` calls (reads, cancels, and creates keyed by a unique name) are retried on
  429, 500, 502, 503, 504 and network errors, with exponential backoff and full jitter,
  honouring ``Retry-After``, until ``total_seconds`` is spent.
- ``PAID`` creates (predictions, trainings) and uploads are retried ONLY when Replicate
  provably did not act: a 429 (throttled before processing) or a failure to connect
  (the request never left). Any other failure after sending raises
  ``CreateOutcomeUnknown``: the caller must look before sending again.
"""

from __future__ import annotations

import enum
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
import replicate.exceptions

from core.errors import (
    CreateOutcomeUnknown,
    InvalidInput,
    InvalidVersion,
    RateLimited,
    ReplicateError,
    ReplicateNotFound,
    ReplicateUnavailable,
    Unauthorized,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_RESETS_IN = re.compile(r"resets in ~?(\d+(?:\.\d+)?)\s*s")


class CallKind(enum.Enum):
    SAFE = "safe"
    PAID = "paid"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 8.0
    total_seconds: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2**(attempt-1))]."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


def _status(exc: Exception) -> int | None:
    if isinstance(exc, replicate.exceptions.ReplicateError):
        return exc.status
    return None


def is_retryable(exc: Exception, kind: CallKind) -> bool:
    if kind is CallKind.SAFE:
        return _status(exc) in RETRYABLE_STATUSES or isinstance(exc, httpx.TransportError)
    # A paid create is resent only when Replicate cannot have acted on it.
    return _status(exc) == 429 or isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


def retry_after_of(exc: Exception, header: str | None) -> float | None:
    """Seconds Replicate asked us to wait: the header, else the "resets in ~Ns" detail."""
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    if isinstance(exc, replicate.exceptions.ReplicateError) and exc.detail:
        match = _RESETS_IN.search(exc.detail)
        if match:
            return float(match.group(1))
    return None


def translate(exc: Exception, action: str, kind: CallKind) -> ReplicateError:
    """The project's error for a client failure, with a message that says what to do."""
    status = _status(exc)
    detail = ""
    if isinstance(exc, replicate.exceptions.ReplicateError):
        detail = (exc.detail or exc.title or "").strip()
    if kind is CallKind.PAID and not is_retryable(exc, kind) and (status is None or status >= 500):
        return CreateOutcomeUnknown(
            f"Replicate did not confirm {action} ({_describe(exc)}). It may have been "
            "created anyway: check Replicate before trying again, so it is not paid twice.",
            status=status,
        )
    if status in (401, 403):
        return Unauthorized(
            f"Replicate refused the API token while {action}. Check REPLICATE_API_TOKEN "
            "(it starts with r8_) and that it belongs to the account that owns the models.",
            status=status,
        )
    if status == 404:
        return ReplicateNotFound(
            f"Not found on Replicate while {action}: {detail or '404'}.", status=status
        )
    if status == 422 and "version" in detail.lower() + str(getattr(exc, "title", "") or "").lower():
        return InvalidVersion(
            f"Replicate says the version does not exist or is not ours while {action}. "
            "Use the bare 64-hex id of a version of the user's own model.",
            status=status,
        )
    if status == 422:
        return InvalidInput(f"Replicate rejected the input while {action}: {detail}", status=status)
    if status == 429:
        return RateLimited(
            f"Replicate is throttling requests while {action}; wait a minute and retry.",
            retry_after=retry_after_of(exc, None),
        )
    if status is not None and status < 500:
        return ReplicateError(
            f"Replicate answered {status} while {action}: {detail}", status=status
        )
    return ReplicateUnavailable(
        f"Replicate is unavailable while {action} ({_describe(exc)}). Nothing was changed; "
        "try again in a few minutes, or check status.replicate.com.",
        status=status,
    )


def _describe(exc: Exception) -> str:
    status = _status(exc)
    if status is not None:
        return f"HTTP {status}"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, httpx.TransportError):
        return f"network error: {type(exc).__name__}"
    return type(exc).__name__


def call_with_retries(
    attempt: Callable[[], T],
    *,
    action: str,
    kind: CallKind,
    policy: RetryPolicy,
    last_retry_after: Callable[[], str | None],
    before_attempt: Callable[[], object],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, the error is final, or the budget is spent.

    No attempt starts after ``policy.total_seconds``; each attempt is bounded by the
    client's own timeouts.
    """
    jitter = rng or random.Random()
    started = clock()
    tries = 0
    while True:
        tries += 1
        before_attempt()
        try:
            return attempt()
        except (replicate.exceptions.ReplicateError, httpx.TransportError) as exc:
            if not is_retryable(exc, kind) or tries >= policy.max_attempts:
                raise translate(exc, action, kind) from exc
            asked = retry_after_of(exc, last_retry_after())
            delay = asked if asked is not None else policy.backoff(tries, jitter)
            remaining = policy.total_seconds - (clock() - started)
            if delay > remaining:
                raise translate(exc, action, kind) from exc
            log.info("retrying %s in %.2fs after %s (try %d)", action, delay, _describe(exc), tries)
            sleep(delay)
