"""When to try a Replicate call again, and how a failure reads to a support agent.

Two kinds of call:
- ``SAFE`` calls (reads, cancels, and creates keyed by a unique name) are retried on
  429, 500, 502, 503, 504, network errors and answers that cannot be read, with
  exponential backoff and full jitter, honouring ``Retry-After`` (seconds or a date),
  until ``total_seconds`` is spent.
- ``PAID`` creates (predictions, trainings) and uploads are retried ONLY when Replicate
  provably did not act: a 429 (throttled before processing) or a request that never left
  (no connection). Any failure after the request may have been accepted (5xx, a timeout
  or broken connection after sending, a 2xx answer that cannot be read) raises
  ``CreateOutcomeUnknown``: the caller must look before sending again.

Failures arrive as ``answers.ApiRefusal``, ``answers.UnreadableAnswer`` or an httpx
error; ``translate`` is the one place they become the project's error tree.
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import httpx

from core.errors import (
    CreateOutcomeUnknown,
    DashboardError,
    InvalidInput,
    InvalidVersion,
    RateLimited,
    ReplicateError,
    ReplicateNotFound,
    ReplicateUnavailable,
    Unauthorized,
)
from core.gateway.answers import ApiRefusal, UnreadableAnswer, names_the_version

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Everything an attempt may fail with that is not already the project's error.
FAILURES = (ApiRefusal, UnreadableAnswer, httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)
# The request never reached Replicate: safe to send again, even a paid create.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The address itself is wrong: sending again cannot help.
_BAD_ADDRESS = (httpx.UnsupportedProtocol, httpx.InvalidURL)


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


def is_retryable(exc: Exception, kind: CallKind) -> bool:
    if isinstance(exc, ApiRefusal):
        if kind is CallKind.PAID:
            return exc.status == 429
        return exc.status in RETRYABLE_STATUSES
    if kind is CallKind.PAID:
        return isinstance(exc, _NOT_SENT)
    if isinstance(exc, _BAD_ADDRESS):
        return False
    # An unreadable answer to a read is most often a body cut short on the way: read again.
    return isinstance(exc, httpx.TransportError | httpx.DecodingError | UnreadableAnswer)


def may_have_been_accepted(exc: Exception) -> bool:
    """Whether Replicate may have acted on a create that failed this way."""
    if isinstance(exc, ApiRefusal):
        return exc.status >= 500
    if isinstance(exc, UnreadableAnswer):
        return True  # a 2xx: it was accepted
    return not isinstance(exc, _NOT_SENT + _BAD_ADDRESS)


def translate(
    exc: Exception, action: str, kind: CallKind, *, now: float | None = None
) -> ReplicateError:
    """The project's error for a failed call, with a message that says what to do.

    ``now`` is the wall clock, for a ``Retry-After`` given as a date.
    """
    status = exc.status if isinstance(exc, ApiRefusal | UnreadableAnswer) else None
    if kind is CallKind.PAID and may_have_been_accepted(exc):
        created_id = exc.created_id if isinstance(exc, UnreadableAnswer) else None
        known = f" under id {created_id}" if created_id else ""
        return CreateOutcomeUnknown(
            f"Replicate did not confirm {action} ({describe(exc)}). It may have been "
            f"created anyway{known}: check Replicate before trying again, so it is not paid "
            "twice.",
            status=status,
            created_id=created_id,
        )
    if isinstance(exc, UnreadableAnswer):
        return ReplicateError(
            f"Replicate's answer while {action} could not be read ({exc.reason}). Nothing "
            "was changed; if it persists, Replicate's API has changed: tell engineering.",
            status=status,
        )
    if isinstance(exc, ApiRefusal):
        return _refusal(exc, action, now if now is not None else time.time())
    if isinstance(exc, _BAD_ADDRESS):
        return ReplicateError(
            f"Cannot reach Replicate while {action}: the address is not usable "
            f"({describe(exc)}). Check REPLICATE_BASE_URL.",
        )
    sent = "Nothing was sent" if isinstance(exc, _NOT_SENT) else "Nothing was changed"
    return ReplicateUnavailable(
        f"Replicate is unavailable while {action} ({describe(exc)}). {sent}; try again in "
        "a few minutes, or check status.replicate.com.",
    )


def _refusal(exc: ApiRefusal, action: str, now: float) -> ReplicateError:
    status, detail = exc.status, exc.detail or exc.title
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
    if status == 422 and names_the_version(exc.title, exc.detail, exc.fields):
        return InvalidVersion(
            f"Replicate says the version does not exist or is not ours while {action}. "
            "Use the bare 64-hex id of a version of the user's own model.",
            status=status,
        )
    if status == 422:
        return InvalidInput(f"Replicate rejected the input while {action}: {detail}", status=status)
    if status == 429:
        wait = exc.retry_after(now)
        hint = f"about {wait:.0f} s" if wait is not None else "a minute"
        return RateLimited(
            f"Replicate is throttling requests while {action}; wait {hint} and retry.",
            retry_after=wait,
        )
    if status < 500:
        return ReplicateError(
            f"Replicate answered {status} while {action}: {detail or 'no reason given'}",
            status=status,
        )
    return ReplicateUnavailable(
        f"Replicate is unavailable while {action} (HTTP {status}). Nothing was changed; "
        "try again in a few minutes, or check status.replicate.com.",
        status=status,
    )


def describe(exc: Exception) -> str:
    """A short cause for messages: never the exception's text, which may hold a URL."""
    if isinstance(exc, ApiRefusal):
        return f"HTTP {exc.status}"
    if isinstance(exc, UnreadableAnswer):
        return f"HTTP {exc.status}, {exc.reason}"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, httpx.TransportError):
        return f"network error: {type(exc).__name__}"
    return type(exc).__name__


class Translator(Protocol):
    def __call__(
        self, exc: Exception, action: str, kind: CallKind, *, now: float | None = None
    ) -> DashboardError: ...


def call_with_retries(
    attempt: Callable[[], T],
    *,
    action: str,
    kind: CallKind,
    policy: RetryPolicy,
    before_attempt: Callable[[], object],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    translator: Translator = translate,
) -> T:
    """Run ``attempt`` until it succeeds, the error is final, or the budget is spent.

    No attempt starts after ``policy.total_seconds``; each attempt is bounded by the
    client's own timeouts. The project's own errors raised by ``attempt`` pass through;
    every other failure leaves as ``translator`` says (``translate`` by default).
    """
    jitter = rng or random.Random()
    started = clock()
    tries = 0
    while True:
        tries += 1
        before_attempt()
        try:
            return attempt()
        except FAILURES as exc:
            now = wall_clock()
            if not is_retryable(exc, kind) or tries >= policy.max_attempts:
                raise translator(exc, action, kind, now=now) from exc
            asked = exc.retry_after(now) if isinstance(exc, ApiRefusal) else None
            delay = asked if asked is not None else policy.backoff(tries, jitter)
            remaining = policy.total_seconds - (clock() - started)
            if delay > remaining:
                raise translator(exc, action, kind, now=now) from exc
            log.info("retrying %s in %.2fs after %s (try %d)", action, delay, describe(exc), tries)
            sleep(delay)
