"""Injected trouble: error answers, latency, hangs, and Replicate's rate limits.

Rules are set through ``/_sandbox/faults`` and live in memory only (a restart clears
them). A rule with a ``status`` answers that status instead of (``when="before"``) or
after (``when="after"``: the request WAS carried out, only its answer is lost) the real
handler; a rule with ``timeout`` holds the request for ``hang_seconds`` first; a rule with
only ``latency_ms`` delays every matching request.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from core.sandbox.engine import Problem


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
    when: str = "before"
    id: int = 0
    hits: int = 0
    _pattern: re.Pattern[str] = field(default=re.compile(""), repr=False)

    def __post_init__(self) -> None:
        if self.when not in ("before", "after"):
            raise Problem(400, "Bad fault", "when must be 'before' or 'after'")
        if self.status is not None and not 400 <= self.status <= 599:
            raise Problem(400, "Bad fault", "status must be an HTTP error code (400-599)")
        if not 0 <= self.share <= 1:
            raise Problem(400, "Bad fault", "share must be between 0 and 1")
        try:
            self._pattern = re.compile(self.path)
        except re.error as exc:
            raise Problem(400, "Bad fault", f"path is not a valid regex: {exc}") from exc
        self.methods = [method.upper() for method in self.methods] if self.methods else None

    def matches(self, method: str, path: str) -> bool:
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

    def pick(self, method: str, path: str) -> tuple[float, FaultRule | None]:
        """(latency in seconds to add, the error rule that fires or None)."""
        latency = 0.0
        firing: FaultRule | None = None
        with self._lock:
            for rule in list(self._rules):
                if not rule.matches(method, path) or self._random.random() >= rule.share:
                    continue
                if rule.status is None and not rule.timeout:
                    latency += rule.latency_ms / 1000
                    rule.hits += 1
                    continue
                if firing is not None:
                    continue
                firing = rule
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
    buckets holding ``burst_seconds`` worth of requests. Off until set."""

    predictions_per_minute: float | None = None
    other_per_minute: float | None = None
    burst_seconds: float = 1.0
    _tokens: dict[str, float] = field(default_factory=dict)
    _stamp: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, spec: dict[str, Any]) -> None:
        with self._lock:
            for key in ("predictions_per_minute", "other_per_minute", "burst_seconds"):
                if key in spec:
                    setattr(self, key, None if spec[key] is None else float(spec[key]))
            self._tokens.clear()
            self._stamp.clear()

    def public(self) -> dict[str, Any]:
        return {
            "predictions_per_minute": self.predictions_per_minute,
            "other_per_minute": self.other_per_minute,
            "burst_seconds": self.burst_seconds,
        }

    def take(self, is_prediction_create: bool) -> float | None:
        """None when the request may go on, else the seconds until a token frees up."""
        bucket = "predictions" if is_prediction_create else "other"
        per_minute = self.predictions_per_minute if is_prediction_create else self.other_per_minute
        if per_minute is None:
            return None
        rate = per_minute / 60
        capacity = max(1.0, rate * self.burst_seconds)
        with self._lock:
            at = time.monotonic()
            tokens = self._tokens.get(bucket, capacity)
            tokens = min(capacity, tokens + (at - self._stamp.get(bucket, at)) * rate)
            self._stamp[bucket] = at
            if tokens >= 1:
                self._tokens[bucket] = tokens - 1
                return None
            self._tokens[bucket] = tokens
            return (1 - tokens) / rate


def retry_after_header(seconds: float) -> str:
    """Retry-After is whole seconds; never 0 for a wait that is not over."""
    return str(max(1, math.ceil(seconds)))
