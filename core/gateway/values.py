"""What the gateway returns: the project's own frozen values, never the client's objects.

Each ``from_api`` takes the JSON Replicate sent (or the client's ``.dict()`` of it) and
keeps what the console needs, tolerating missing fields: the app's history is old and
Replicate's shapes have drifted over the years.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def is_version_hash(text: str) -> bool:
    """True for a bare version id: exactly 64 lowercase hex characters."""
    return bool(_HEX64.match(text))


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


@dataclass(frozen=True)
class ModelVersion:
    id: str
    created_at: datetime | None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> ModelVersion:
        return cls(id=str(raw["id"]), created_at=_when(raw.get("created_at")))


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
            owner=str(raw["owner"]),
            name=str(raw["name"]),
            visibility=str(raw.get("visibility") or "private"),
            description=raw.get("description"),
            run_count=int(raw.get("run_count") or 0),
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
        """``owner/name`` of the model the training added a version to (None until success)."""
        if not self.output_version or ":" not in self.output_version:
            return None
        return self.output_version.rsplit(":", 1)[0]

    @property
    def version_hash(self) -> str | None:
        if not self.output_version:
            return None
        candidate = self.output_version.rsplit(":", 1)[-1]
        return candidate if is_version_hash(candidate) else None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Training:
        output = raw.get("output")
        output = output if isinstance(output, Mapping) else {}
        version = raw.get("version")
        if isinstance(version, Mapping):  # the client may expand it into a Version
            version = version.get("id")
        return cls(
            id=str(raw["id"]),
            trainer_model=str(raw.get("model") or ""),
            trainer_version=str(version or ""),
            status=str(raw.get("status") or ""),
            input=_frozen(raw.get("input")),
            output_version=output.get("version"),
            output_weights=output.get("weights"),
            error=raw.get("error"),
            logs=raw.get("logs"),
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
        metrics = raw.get("metrics") or {}
        return cls(
            id=str(raw["id"]),
            model=str(raw.get("model") or ""),
            version=str(raw.get("version") or ""),
            status=str(raw.get("status") or ""),
            input=_frozen(raw.get("input")),
            output=urls,
            error=raw.get("error"),
            logs=raw.get("logs"),
            created_at=_when(raw.get("created_at")),
            completed_at=_when(raw.get("completed_at")),
            predict_time=metrics.get("predict_time") if isinstance(metrics, Mapping) else None,
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
        checksums = raw.get("checksums") or {}
        return cls(
            id=str(raw["id"]),
            name=str(raw.get("name") or ""),
            content_type=str(raw.get("content_type") or ""),
            size=int(raw.get("size") or 0),
            sha256=checksums.get("sha256"),
            url=str((raw.get("urls") or {}).get("get") or ""),
        )
