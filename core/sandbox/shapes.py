"""Replicate's real answer shapes that the sandbox's own documents never take, on request.

The engine keeps one plain document per object. A shape rule (``POST /_sandbox/shapes``)
rewrites answers as they leave, the way Replicate really answers: a null
``cog_version``, ``logs: null`` while a job runs, a bare hash in a training's
``output.version``, an error body with only ``detail``... Each rule names a shape from
``SHAPES`` and either one object (``id``: a model's ``owner/name``, a training's,
prediction's or file's id) or a ``share`` of all objects of the shape's kinds. A share is
decided per object (stably: the same object always answers the same way), and per answer
for errors. Rules live in memory; ``DELETE /_sandbox/shapes`` and the reset clear them.
"""

from __future__ import annotations

import copy
import hashlib
import random
import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from core.sandbox.engine import Problem
from core.sandbox.store import BASE, Doc

DATA_REMOVAL_SECONDS = 3600.0  # Replicate removes API predictions' data after an hour


@dataclass(frozen=True)
class Shape:
    name: str
    kinds: frozenset[str]  # model, training, prediction, file, error
    help: str


def _shape(name: str, kinds: str, help: str) -> Shape:
    return Shape(name, frozenset(kinds.split()), help)


SHAPES = {
    shape.name: shape
    for shape in (
        _shape("null_cog_version", "model", "latest_version and every version: cog_version null"),
        _shape(
            "null_openapi_schema", "model", "latest_version and every version: openapi_schema null"
        ),
        _shape(
            "aborted_default_example",
            "model",
            "default_example is a prediction whose status is aborted",
        ),
        _shape("no_run_count", "model", "the model has no run_count field"),
        _shape(
            "null_logs", "training prediction", "logs is null while processing and after a cancel"
        ),
        _shape("hidden_version", "training prediction", 'version is "hidden"'),
        _shape(
            "ms_timestamps",
            "model training prediction file",
            "timestamps carry milliseconds: 2024-04-22T11:15:15.329Z",
        ),
        _shape(
            "ns_timestamps",
            "model training prediction file",
            "timestamps carry nanoseconds: 2023-11-27T13:35:45.993975417Z",
        ),
        _shape(
            "bare_output_version",
            "training",
            "a succeeded training's output.version is the bare 64-hex id, no owner/name",
        ),
        _shape("null_output_version", "training", "a succeeded training's output.version is null"),
        _shape(
            "data_removed",
            "prediction",
            "after_seconds (default 3600) after it ended: output null, data_removed true, "
            "its files 404",
        ),
        _shape(
            "sync_processing",
            "prediction",
            "a create with Prefer: wait answers status processing although output is there, "
            "with urls.stream",
        ),
        _shape("no_name_etag", "file", "the file has no name and no etag"),
        _shape("detail_only_errors", "error", 'error bodies are only {"detail": "..."}'),
    )
}

_FRACTION = re.compile(r"(\.\d+)?(Z|[+-]\d\d:\d\d)$")
_TIMESTAMP_KEYS = ("created_at", "started_at", "completed_at", "expires_at")


@dataclass
class ShapeRule:
    shape: str
    id: str | None = None  # one object; None: a share of every object of the shape's kinds
    share: float = 1.0
    after_seconds: float = DATA_REMOVAL_SECONDS  # data_removed only
    rule: int = 0
    hits: int = 0

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise Problem(
                400, "Bad shape", f"unknown shape {self.shape!r}; known: {', '.join(SHAPES)}"
            )
        if not 0 <= self.share <= 1:
            raise Problem(400, "Bad shape", "share must be between 0 and 1")
        if self.after_seconds < 0:
            raise Problem(400, "Bad shape", "after_seconds must not be negative")

    def public(self) -> dict[str, Any]:
        return {**asdict(self), "help": SHAPES[self.shape].help}


@dataclass
class ShapeBook:
    """The active shape rules, and the rewrites they make."""

    seed: int = 11
    _rules: list[ShapeRule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next: int = 1

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    # -- the control API -------------------------------------------------------------------
    def add(self, spec: dict[str, Any]) -> ShapeRule:
        known = {"shape", "id", "share", "after_seconds"}
        unknown = set(spec) - known
        if unknown:
            raise Problem(400, "Bad shape", f"unknown fields: {', '.join(sorted(unknown))}")
        try:
            rule = ShapeRule(
                shape=str(spec.get("shape") or ""),
                id=None if spec.get("id") is None else str(spec["id"]),
                share=float(spec.get("share", 1.0)),
                after_seconds=float(spec.get("after_seconds", DATA_REMOVAL_SECONDS)),
            )
        except (TypeError, ValueError) as exc:
            raise Problem(400, "Bad shape", "share and after_seconds must be numbers") from exc
        with self._lock:
            rule.rule, self._next = self._next, self._next + 1
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.public() for rule in self._rules]

    # -- deciding ------------------------------------------------------------------------
    def _firing(self, name: str, key: str | None) -> list[ShapeRule]:
        """The rules of shape ``name`` that apply to the object ``key`` (None: an error)."""
        firing = []
        with self._lock:
            for rule in self._rules:
                if rule.shape != name:
                    continue
                if rule.id is not None:
                    hit = key == rule.id
                elif key is None:
                    hit = self._random.random() < rule.share
                else:
                    hit = _stable_fraction(rule.rule, key) < rule.share
                if hit:
                    rule.hits += 1
                    firing.append(rule)
        return firing

    def _fires(self, name: str, key: str | None) -> bool:
        return bool(self._firing(name, key))

    # -- rewrites --------------------------------------------------------------------------
    def model(self, doc: Doc) -> Doc:
        key = f"{doc.get('owner')}/{doc.get('name')}"
        doc = copy.deepcopy(doc)
        if self._fires("no_run_count", key):
            doc.pop("run_count", None)
        if self._fires("aborted_default_example", key):
            doc["default_example"] = _aborted_example(doc)
        latest = doc.get("latest_version")
        if isinstance(latest, dict):
            doc["latest_version"] = self.version(key, latest)
        return doc

    def version(self, model_key: str, doc: Doc) -> Doc:
        doc = copy.deepcopy(doc)
        if self._fires("null_cog_version", model_key):
            doc["cog_version"] = None
        if self._fires("null_openapi_schema", model_key):
            doc["openapi_schema"] = None
        return self._timestamps(model_key, doc)

    def training(self, doc: Doc) -> Doc:
        doc = self._job(doc)
        output = doc.get("output")
        if doc.get("status") == "succeeded" and isinstance(output, dict):
            if self._fires("bare_output_version", doc["id"]):
                output["version"] = str(output.get("version") or "").rpartition(":")[2]
            if self._fires("null_output_version", doc["id"]):
                output["version"] = None
        return doc

    def prediction(self, doc: Doc, now: float) -> Doc:
        doc = self._job(doc)
        if self.removed(doc, now):
            doc["output"], doc["data_removed"] = None, True
        return doc

    def removed(self, doc: Doc, now: float) -> bool:
        """Whether a prediction's output is gone (``data_removed``) at ``now``."""
        ended = _epoch(doc.get("completed_at"))
        if ended is None:
            return False
        rules = self._firing("data_removed", str(doc.get("id")))
        return any(now - ended >= rule.after_seconds for rule in rules)

    def waited_prediction(self, doc: Doc) -> Doc:
        """A ``Prefer: wait`` create's answer: under ``sync_processing``, still processing
        although the output is already there, as Replicate answers at the wait's end."""
        if not self._fires("sync_processing", doc["id"]):
            return doc
        doc = copy.deepcopy(doc)
        doc["status"], doc["completed_at"] = "processing", None
        doc["urls"] = {**doc.get("urls", {}), "stream": f"{BASE}/v1/streams/{doc['id']}"}
        return doc

    def file(self, doc: Doc) -> Doc:
        doc = copy.deepcopy(doc)
        if self._fires("no_name_etag", doc["id"]):
            doc.pop("name", None)
            doc.pop("etag", None)
        return self._timestamps(doc["id"], doc)

    def error(self, body: dict[str, Any]) -> dict[str, Any]:
        if self._fires("detail_only_errors", None):
            return {"detail": str(body.get("detail") or body.get("title") or "")}
        return body

    def _job(self, doc: Doc) -> Doc:
        doc = copy.deepcopy(doc)
        key = doc["id"]
        if doc.get("status") in ("processing", "canceled") and self._fires("null_logs", key):
            doc["logs"] = None
        if self._fires("hidden_version", key):
            doc["version"] = "hidden"
        return self._timestamps(key, doc)

    def _timestamps(self, key: str, doc: Doc) -> Doc:
        digits = 3 if self._fires("ms_timestamps", key) else 0
        digits = 9 if self._fires("ns_timestamps", key) else digits
        if digits:
            for name in _TIMESTAMP_KEYS:
                if isinstance(doc.get(name), str):
                    doc[name] = with_fraction(doc[name], digits)
        return doc


def with_fraction(stamp: str, digits: int) -> str:
    """``stamp`` with its fractional seconds cut or extended to ``digits`` digits."""
    match = _FRACTION.search(stamp)
    if match is None:
        return stamp
    fraction = (match.group(1) or ".")[1:]
    if digits <= len(fraction):
        fraction = fraction[:digits]
    else:  # past microseconds the digits are made up, as a nanosecond clock would give
        fraction = (fraction.ljust(6, "0") + "417")[:digits]
    return f"{stamp[: match.start()]}.{fraction}{match.group(2)}"


def _stable_fraction(rule: int, key: str) -> float:
    digest = hashlib.sha256(f"{rule}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _epoch(stamp: Any) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _aborted_example(model: Doc) -> Doc:
    latest = model.get("latest_version")
    example_id = hashlib.sha256(str(model.get("name")).encode()).hexdigest()[:26]
    return {
        "id": example_id,
        "model": f"{model.get('owner')}/{model.get('name')}",
        "version": latest.get("id") if isinstance(latest, dict) else "hidden",
        "input": {"prompt": "an example that never ran"},
        "output": None,
        "logs": "",
        "error": None,
        "status": "aborted",
        "data_removed": False,
        "created_at": "2024-04-18T17:21:53.234Z",
        "started_at": None,
        "completed_at": "2024-04-18T17:21:55Z",
        "urls": {
            "get": f"{BASE}/v1/predictions/{example_id}",
            "cancel": f"{BASE}/v1/predictions/{example_id}/cancel",
        },
    }
