"""What the drift engine reads: the app's row, Replicate's answers, the ledger, the photos.

Frozen values built by the scan/ledger module (or literally, in tests). Everything is
kept as the app or Replicate gave it, malformed values included: judging them is the
engine's job, so nothing here cleans a value except where a docstring says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from core.drift.decisions import Decision
from core.gateway.values import ModelVersion, Training, parse_output_version

# Input keys that are not training parameters: the photos and the word the LoRA learns.
NON_PARAMETER_INPUTS = frozenset({"input_images", "trigger_word"})
# Per-photo check failures counted in ``DatasetFacts.failing_by_reason``.
FAILING_REASONS: tuple[str, ...] = ("blurry", "no_face", "several_faces", "other_person")


def blank_to_none(value: str | None) -> str | None:
    """The value stripped, or None when nothing but whitespace is stored."""
    if value is None:
        return None
    stripped = value.strip()
    return stripped or None


def _read_only(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(raw))


@dataclass(frozen=True)
class AppRow:
    """The user's ``user_models`` row exactly as the app stored it (any field may be junk)."""

    user_id: str
    replicate_model_id: str | None = None
    replicate_version_id: str | None = None
    trigger_word: str | None = None
    training_status: str | None = None
    training_id: str | None = None
    lora_weights_url: str | None = None
    failure_reason: str | None = None
    updated_at: datetime | None = None

    @property
    def model_id(self) -> str | None:
        """``replicate_model_id`` stripped; None when empty or only whitespace."""
        return blank_to_none(self.replicate_model_id)


@dataclass(frozen=True)
class ModelFacts:
    """What Replicate said about one model: 404 (``found=False``) or its versions.

    ``versions`` are ALL the model's versions (every page), newest first as Replicate lists
    them; an incomplete list would make older stored versions look foreign.
    """

    model_id: str
    found: bool
    versions: tuple[ModelVersion, ...] = ()

    @property
    def version_ids(self) -> tuple[str, ...]:
        return tuple(version.id for version in self.versions) if self.found else ()

    @property
    def latest(self) -> ModelVersion | None:
        return self.versions[0] if self.found and self.versions else None

    def has_version(self, version_id: str | None) -> bool:
        return version_id is not None and version_id in self.version_ids


@dataclass(frozen=True)
class DatasetFacts:
    """What the training ZIP held, as the quality module measured it.

    Every measure is None when unknown; when the ZIP could not be read, ``error`` says why
    and the measures are None. ``photos_failing`` counts photos failing at least one check;
    ``failing_by_reason`` counts per check (keys from ``FAILING_REASONS``), so a photo may
    be counted under several reasons.
    """

    image_count: int | None = None
    median_short_side: int | None = None
    jpeg_quality: int | None = None  # estimated from the quantisation tables
    median_sharpness: float | None = None  # Laplacian variance at a fixed size
    photos_failing: int | None = None
    failing_by_reason: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "failing_by_reason", _read_only(self.failing_by_reason))

    @property
    def readable(self) -> bool:
        return self.error is None

    def summary(self) -> dict[str, Any]:
        """The measures as evidence (JSON-safe)."""
        return {
            "image_count": self.image_count,
            "median_short_side": self.median_short_side,
            "jpeg_quality": self.jpeg_quality,
            "median_sharpness": self.median_sharpness,
            "photos_failing": self.photos_failing,
            "failing_by_reason": dict(self.failing_by_reason),
            "error": self.error,
        }


@dataclass(frozen=True)
class TrainingRecord:
    """One Replicate training the ledger attached to this user, with its dataset if read.

    ``trainer_model``/``trainer_version`` are the TRAINER's; the LoRA version the training
    made exists only in ``output_version`` (``owner/name:hash``) once it succeeded.
    """

    id: str
    trainer_model: str
    trainer_version: str
    status: str  # starting, processing, succeeded, failed, canceled, aborted
    input: Mapping[str, Any] = field(default_factory=dict)
    output_version: str | None = None
    output_weights: str | None = None
    error: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    dataset: DatasetFacts | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "input", _read_only(self.input))

    @classmethod
    def from_training(
        cls, training: Training, dataset: DatasetFacts | None = None
    ) -> TrainingRecord:
        """The record of a training as the gateway returned it."""
        return cls(
            id=training.id,
            trainer_model=training.trainer_model,
            trainer_version=training.trainer_version,
            status=training.status,
            input=training.input,
            output_version=training.output_version,
            output_weights=training.output_weights,
            error=training.error,
            created_at=training.created_at,
            completed_at=training.completed_at,
            dataset=dataset,
        )

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def destination(self) -> str | None:
        """``owner/name`` the training added a version to (None until it succeeded, and
        when ``output.version`` was a bare hash)."""
        return parse_output_version(self.output_version).model_id

    @property
    def version_hash(self) -> str | None:
        """The 64-hex id of the version the training made, or None."""
        return parse_output_version(self.output_version).version_hash

    @property
    def trigger_word(self) -> str | None:
        value = self.input.get("trigger_word")
        return value if isinstance(value, str) else None

    @property
    def parameters(self) -> Mapping[str, Any]:
        """The training parameters: the input without the photos and the trigger word."""
        return {key: value for key, value in self.input.items() if key not in NON_PARAMETER_INPUTS}


def _chronological(record: TrainingRecord) -> tuple[int, datetime, str]:
    # Undated records sort first (oldest); naive times are read as UTC so that
    # naive and aware values compare; the id breaks ties so the order is stable.
    when = record.created_at
    if when is None:
        return (0, datetime.min.replace(tzinfo=UTC), record.id)
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return (1, aware, record.id)


@dataclass(frozen=True)
class RetrainReview:
    """The watch's judgement of the user's latest reviewed training
    (``ops.retrain_reviews``): its verdict (better, same, worse, broken), what the
    automatic comparison read, and the versions it compared."""

    training_id: str
    verdict: str | None
    sentence: str | None = None
    comparison_id: int | None = None
    previous_version: str | None = None
    new_version: str | None = None
    ended_at: datetime | None = None
    reading: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reading", _read_only(self.reading))


@dataclass(frozen=True)
class VersionOwner:
    """Who a version belongs to, by the ledger: the training that made it."""

    training_id: str
    user_id: str | None  # None: the ledger could not attach the training to a user
    destination: str | None  # the model it is a version of


@dataclass(frozen=True)
class UserFacts:
    """Everything the engine knows about one user.

    ``model`` is Replicate's answer for the row's ``replicate_model_id`` (None when the row
    names no model, or when it was not fetched). ``trainings`` is the ledger in any order;
    it is stored oldest first. ``models_by_id`` holds what Replicate said about the other
    models the user's trainings went to, when the scan fetched them. ``stored_owner`` is,
    when the stored version is not one of this user's own, the training (of anyone) that
    made it, as the ledger knows it. ``decisions`` are the admins' decisions on this
    user's findings (each holds only while the row and the trainings are as decided).
    """

    row: AppRow
    model: ModelFacts | None = None
    trainings: tuple[TrainingRecord, ...] = ()
    models_by_id: Mapping[str, ModelFacts] = field(default_factory=dict)
    stored_owner: VersionOwner | None = None
    # An admin's decisions to leave a finding as it is (``core.drift.decisions``).
    decisions: tuple[Decision, ...] = ()
    # The watch's review of the user's latest reviewed training (RETRAIN_REGRESSED).
    retrain: RetrainReview | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "trainings", tuple(sorted(self.trainings, key=_chronological)))
        object.__setattr__(self, "models_by_id", MappingProxyType(dict(self.models_by_id)))

    def model_facts(self, model_id: str | None) -> ModelFacts | None:
        """What Replicate said about ``model_id`` (the row's model or another), if known."""
        if model_id is None:
            return None
        if self.model is not None and self.model.model_id == model_id:
            return self.model
        return self.models_by_id.get(model_id)
