"""What the gateway returns: the project's own frozen values, never the client's objects.

Each ``from_api`` takes the JSON Replicate sent and keeps what the console needs,
tolerating missing, null and oddly typed fields (Replicate's shapes have drifted over the
years, and the client's own models reject several of them). Only a missing ``id`` (or a
model's ``owner``/``name``) makes an answer unreadable: ``KeyError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
# Replicate's training and prediction ids (letters, digits, ``-`` and ``_``): anything
# else stored where one belongs (a link, a URL, whitespace) is not fetched or shown as one.
_REPLICATE_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


def is_version_hash(text: str) -> bool:
    """True for a bare version id: exactly 64 lowercase hex characters."""
    return bool(_HEX64.fullmatch(text))  # not match(): "$" lets a final newline through


def is_training_id(text: str | None) -> bool:
    """True for text shaped like a Replicate training (or prediction) id: the one pattern
    every reader of a stored ``training_id`` checks before fetching or linking it."""
    return text is not None and bool(_REPLICATE_ID.fullmatch(text))


@dataclass(frozen=True)
class OutputVersion:
    """A training's ``output.version`` read once: the model it names (None when Replicate
    sent a bare hash, nothing, or junk) and the new version's bare hash (None unless it is
    64 lowercase hex)."""

    model_id: str | None
    version_hash: str | None


def parse_output_version(raw: object) -> OutputVersion:
    """The one reading of ``output.version``: ``owner/name:hash`` (as documented), a bare
    64-hex hash (a shape Replicate sends too), null or missing. A model part that is not
    ``owner/name`` is None, never an empty string."""
    if not isinstance(raw, str) or not raw.strip():
        return OutputVersion(None, None)
    text = raw.strip()
    model, colon, tail = text.rpartition(":")
    candidate = tail if colon else text
    model_id = model if colon and _MODEL_ID.fullmatch(model) else None
    return OutputVersion(model_id, candidate if is_version_hash(candidate) else None)


def _when(raw: Any) -> datetime | None:
    if isinstance(raw, datetime):
        return raw
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None


def _frozen(raw: Any) -> Mapping[str, Any]:
    return MappingProxyType(dict(raw)) if isinstance(raw, Mapping) else MappingProxyType({})


def _text(raw: Any) -> str | None:
    """A string field, or None when it is null or not a string."""
    return raw if isinstance(raw, str) else None


def _count(raw: Any) -> int:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0


def _required(raw: Mapping[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise KeyError(key)
    return value


@dataclass(frozen=True)
class ModelVersion:
    id: str
    created_at: datetime | None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> ModelVersion:
        return cls(id=_required(raw, "id"), created_at=_when(raw.get("created_at")))


@dataclass(frozen=True)
class ReplicateModel:
    owner: str
    name: str
    visibility: str
    description: str | None
    run_count: int
    latest_version: ModelVersion | None

    @property
    def key(self) -> str:
        return f"{self.owner}/{self.name}"

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> ReplicateModel:
        latest = raw.get("latest_version")
        return cls(
            owner=_required(raw, "owner"),
            name=_required(raw, "name"),
            visibility=_text(raw.get("visibility")) or "private",
            description=_text(raw.get("description")),
            run_count=_count(raw.get("run_count")),
            latest_version=ModelVersion.from_api(latest) if isinstance(latest, Mapping) else None,
        )


@dataclass(frozen=True)
class Training:
    """A training as Replicate reports it. ``trainer_model``/``trainer_version`` are the
    TRAINER's; the new LoRA version exists only in ``output_version`` once succeeded."""

    id: str
    trainer_model: str
    trainer_version: str
    status: str
    input: Mapping[str, Any]
    output_version: str | None  # "owner/name:hash" as Replicate sends it
    output_weights: str | None
    error: str | None
    logs: str | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def destination(self) -> str | None:
        """``owner/name`` of the model the training added a version to (None until success,
        and when ``output.version`` was a bare hash)."""
        return parse_output_version(self.output_version).model_id

    @property
    def version_hash(self) -> str | None:
        return parse_output_version(self.output_version).version_hash

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Training:
        output = raw.get("output")
        output = output if isinstance(output, Mapping) else {}
        version = raw.get("version")
        if isinstance(version, Mapping):  # the client may expand it into a Version
            version = version.get("id")
        return cls(
            id=_required(raw, "id"),
            trainer_model=_text(raw.get("model")) or "",
            trainer_version=_text(version) or "",  # may be "hidden"
            status=_text(raw.get("status")) or "",
            input=_frozen(raw.get("input")),
            output_version=_text(output.get("version")),  # may be a bare hash, or null
            output_weights=_text(output.get("weights")),
            error=_text(raw.get("error")),
            logs=_text(raw.get("logs")),  # null while processing and after a cancel
            created_at=_when(raw.get("created_at")),
            started_at=_when(raw.get("started_at")),
            completed_at=_when(raw.get("completed_at")),
        )


@dataclass(frozen=True)
class Prediction:
    id: str
    model: str
    version: str
    status: str
    input: Mapping[str, Any]
    output: tuple[str, ...]
    error: str | None
    logs: str | None
    created_at: datetime | None
    completed_at: datetime | None
    predict_time: float | None
    # Replicate deletes a prediction's output (and files) an hour after it ends.
    data_removed: bool = False

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Prediction:
        output = raw.get("output")
        if isinstance(output, str):
            urls: tuple[str, ...] = (output,)
        elif isinstance(output, list):
            urls = tuple(str(item) for item in output)
        else:
            urls = ()
        metrics = raw.get("metrics")
        predict_time = metrics.get("predict_time") if isinstance(metrics, Mapping) else None
        return cls(
            id=_required(raw, "id"),
            model=_text(raw.get("model")) or "",
            version=_text(raw.get("version")) or "",  # may be "hidden"
            status=_text(raw.get("status")) or "",
            input=_frozen(raw.get("input")),
            output=urls,
            error=_text(raw.get("error")),
            logs=_text(raw.get("logs")),
            created_at=_when(raw.get("created_at")),
            completed_at=_when(raw.get("completed_at")),
            predict_time=float(predict_time)
            if isinstance(predict_time, int | float) and not isinstance(predict_time, bool)
            else None,
            data_removed=raw.get("data_removed") is True,
        )


@dataclass(frozen=True)
class UploadedFile:
    id: str
    name: str
    content_type: str
    size: int
    sha256: str | None
    url: str  # what to pass as a model input (``urls.get``)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> UploadedFile:
        checksums = raw.get("checksums")
        urls = raw.get("urls")
        return cls(
            id=_required(raw, "id"),
            name=_text(raw.get("name")) or "",  # the schema does not promise name or etag
            content_type=_text(raw.get("content_type")) or "",
            size=_count(raw.get("size")),
            sha256=_text(checksums.get("sha256")) if isinstance(checksums, Mapping) else None,
            url=(_text(urls.get("get")) if isinstance(urls, Mapping) else None) or "",
        )
