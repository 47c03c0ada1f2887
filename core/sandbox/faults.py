"""Injected trouble: error answers, redirects, latency, hangs, and Replicate's rate limits.

Rules are set through ``/_sandbox/faults`` and live in memory only (a restart clears
them). A rule with a ``status`` answers that status instead of (``when="before"``) or
after (``when="after"``: the request WAS carried out, only its answer is lost) the real
handler, with ``body`` (a JSON object) when given; ``when="truncated"`` carries the
request out and sends its real answer with the body cut in half (a proxy that dropped the
rest: valid HTTP, broken JSON). A rule with ``redirect_to`` answers a redirect there (302
unless ``status`` says 301/303/307/308); a rule with ``timeout`` holds the request for
``hang_seconds`` first; a rule with only ``latency_ms`` delays every matching request, and
with ``when="after"`` too it carries the request out at once and holds only its answer.

A rule with a ``version`` (a 64-hex id; ``owner/name:id`` is taken as its id) matches only
requests about that version (``core.sandbox.request_versions``): creates that run it or
train on it, and reads and cancels of the predictions and trainings stored with it. So one
comparison column's creates can be slowed or failed while the others go through.

A 429 (from a rule or from the rate limits) says so in either of Replicate's two wordings
(``wording``: ``resets`` "Your rate limit resets in ~Ns." or ``expected`` "Expected
available in N seconds."), with ``Retry-After`` in seconds, as an HTTP date, or not at all
(``retry_after_as``), and ``ratelimit-remaining: 0`` / ``ratelimit-reset``.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from core.sandbox.engine import Problem, split_version_ref


@dataclass
class FaultRule:
    status: int | None = None
    share: float = 1.0  # the fraction of matching requests it hits
    count: int | None = None  # hit at most this many requests, then retire
    retry_after: float | None = None
    latency_ms: float = 0.0
    timeout: bool = False
    hang_seconds: float = 35.0
    path: str = r"^/v1/"
    methods: list[str] | None = None
    version: str | None = None  # only requests about this version (its bare id)
    when: str = "before"
    redirect_to: str | None = None  # a Location: relative, or any absolute URL
    body: dict[str, Any] | None = None  # the error answer's JSON instead of the default
    wording: str = "resets"  # of a 429: "resets" or "expected"
    retry_after_as: str = "seconds"  # "seconds", "date" (an HTTP date) or "none"
    id: int = 0
    hits: int = 0
    _pattern: re.Pattern[str] = field(default=re.compile(""), repr=False)

    def __post_init__(self) -> None:
        if self.when not in ("before", "after", "truncated"):
            raise Problem(400, "Bad fault", "when must be 'before', 'after' or 'truncated'")
        if self.body is not None and not isinstance(self.body, dict):
            raise Problem(400, "Bad fault", "body must be a JSON object")
        check_throttle_style(self.wording, self.retry_after_as)
        if self.redirect_to is not None:
            self.status = self.status or 302
            if self.status not in REDIRECT_STATUSES:
                raise Problem(400, "Bad fault", "a redirect's status is 301, 302, 303, 307 or 308")
        elif self.status is not None and not 400 <= self.status <= 599:
            raise Problem(400, "Bad fault", "status must be an HTTP error code (400-599)")
        if not 0 <= self.share <= 1:
            raise Problem(400, "Bad fault", "share must be between 0 and 1")
        try:
            self._pattern = re.compile(self.path)
        except re.error as exc:
            raise Problem(400, "Bad fault", f"path is not a valid regex: {exc}") from exc
        self.methods = [method.upper() for method in self.methods] if self.methods else None
        if self.version is not None:
            parts = split_version_ref(self.version) if isinstance(self.version, str) else None
            if parts is None:
                raise Problem(
                    400, "Bad fault", "version must be a 64-hex version id or owner/name:id"
                )
            self.version = parts[1]

    @property
    def holds_answer(self) -> bool:
        """A rule with ``when="after"``, ``latency_ms`` and no status: the request is carried
        out at once and only its answer waits (a client that dies meanwhile never learns
        of what was done)."""
        return self.when == "after" and self.status is None and not self.timeout

    def matches(self, method: str, path: str, version: str | None = None) -> bool:
        """Whether the rule applies to a request; ``version`` is the one it is about."""
        return self.matches_route(method, path) and (
            self.version is None or self.version == version
        )

    def matches_route(self, method: str, path: str) -> bool:
        return (self.methods is None or method in self.methods) and bool(self._pattern.search(path))

    def public(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if not key.startswith("_")}


class FaultBook:
    """The active rules; ``pick`` decides, per request, which of them fire."""

    def __init__(self, seed: int = 7) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._next_id = 1

    def add(self, spec: dict[str, Any]) -> FaultRule:
        known = {
            key: value
            for key, value in spec.items()
            if key in FaultRule.__dataclass_fields__
            and not key.startswith("_")
            and key not in ("id", "hits")
        }
        unknown = set(spec) - set(known)
        if unknown:
            raise Problem(400, "Bad fault", f"unknown fields: {', '.join(sorted(unknown))}")
        rule = FaultRule(**known)
        with self._lock:
            rule.id = self._next_id
            self._next_id += 1
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def seed(self, seed: int) -> None:
        with self._lock:
            self._random.seed(seed)

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.public() for rule in self._rules]

    def asks_version(self, method: str, path: str) -> bool:
        """Whether a rule could fire only if the request is about its version: then, and
        only then, is that version worth finding out."""
        with self._lock:
            return any(
                rule.version is not None and rule.matches_route(method, path)
                for rule in self._rules
            )

    def pick(
        self, method: str, path: str, version: str | None = None
    ) -> tuple[float, FaultRule | None]:
        """(latency in seconds to add, the error rule that fires or None) for a request
        about ``version`` (None: about none, or not looked up)."""
        latency = 0.0
        firing: FaultRule | None = None
        with self._lock:
            for rule in list(self._rules):
                if not rule.matches(method, path, version) or self._random.random() >= rule.share:
                    continue
                if rule.status is None and not rule.timeout and rule.when == "before":
                    latency += rule.latency_ms / 1000
                    rule.hits += 1
                    continue
                if firing is not None:
                    continue
                firing = rule
                if not rule.holds_answer:
                    latency += rule.latency_ms / 1000
                rule.hits += 1
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
        return latency, firing


@dataclass
class RateLimits:
    """Replicate's limits (600/min prediction creates, 3000/min the rest) as token
    buckets holding ``burst_seconds`` worth of requests. Off until set; while on, every
    answer carries ``ratelimit-remaining`` and ``ratelimit-reset`` as Replicate's do."""

    predictions_per_minute: float | None = None
    other_per_minute: float | None = None
    burst_seconds: float = 1.0
    wording: str = "resets"
    retry_after_as: str = "seconds"
    _tokens: dict[str, float] = field(default_factory=dict)
    _stamp: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, spec: dict[str, Any]) -> None:
        wording = str(spec.get("wording", self.wording))
        retry_after_as = str(spec.get("retry_after_as", self.retry_after_as))
        check_throttle_style(wording, retry_after_as)
        with self._lock:
            for key in ("predictions_per_minute", "other_per_minute", "burst_seconds"):
                if key in spec:
                    setattr(self, key, None if spec[key] is None else float(spec[key]))
            self.wording, self.retry_after_as = wording, retry_after_as
            self._tokens.clear()
            self._stamp.clear()

    def public(self) -> dict[str, Any]:
        return {
            "predictions_per_minute": self.predictions_per_minute,
            "other_per_minute": self.other_per_minute,
            "burst_seconds": self.burst_seconds,
            "wording": self.wording,
            "retry_after_as": self.retry_after_as,
        }

    def take(self, is_prediction_create: bool) -> tuple[float | None, dict[str, str]]:
        """(None when the request may go on, else the seconds until a token frees up;
        the ``ratelimit-*`` headers its answer carries, none while the limit is off)."""
        bucket = "predictions" if is_prediction_create else "other"
        per_minute = self.predictions_per_minute if is_prediction_create else self.other_per_minute
        if per_minute is None:
            return None, {}
        rate = per_minute / 60
        capacity = max(1.0, rate * self.burst_seconds)
        with self._lock:
            at = time.monotonic()
            tokens = self._tokens.get(bucket, capacity)
            tokens = min(capacity, tokens + (at - self._stamp.get(bucket, at)) * rate)
            self._stamp[bucket] = at
            wait = None if tokens >= 1 else (1 - tokens) / rate
            self._tokens[bucket] = tokens - 1 if wait is None else tokens
            left = self._tokens[bucket]
        headers = {
            "ratelimit-remaining": str(max(0, math.floor(left))),
            "ratelimit-reset": retry_after_header((capacity - left) / rate),
        }
        return wait, headers


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
WORDINGS = ("resets", "expected")
RETRY_AFTER_FORMS = ("seconds", "date", "none")


def check_throttle_style(wording: str, retry_after_as: str) -> None:
    if wording not in WORDINGS:
        raise Problem(400, "Bad fault", f"wording must be one of {', '.join(WORDINGS)}")
    if retry_after_as not in RETRY_AFTER_FORMS:
        raise Problem(
            400, "Bad fault", f"retry_after_as must be one of {', '.join(RETRY_AFTER_FORMS)}"
        )


def retry_after_header(seconds: float) -> str:
    """Retry-After is whole seconds; never 0 for a wait that is not over."""
    return str(max(1, math.ceil(seconds)))


def retry_after_value(seconds: float, form: str, now: float) -> str | None:
    """``Retry-After`` as ``form`` says: whole seconds, an HTTP date, or None (left out).
    A date has one-second resolution, so it is rounded up to keep the wait whole."""
    if form == "none":
        return None
    if form == "date":
        return email.utils.formatdate(math.ceil(now) + max(1, math.ceil(seconds)), usegmt=True)
    return retry_after_header(seconds)


def throttled_detail(seconds: float, wording: str) -> str:
    """The 429 body's sentence, in one of the two wordings Replicate uses."""
    whole = max(1, math.ceil(seconds))
    if wording == "expected":
        return f"Request was throttled. Expected available in {whole} second{'s' * (whole != 1)}."
    return f"Request was throttled. Your rate limit resets in ~{whole}s."
