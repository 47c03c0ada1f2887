"""A user's history as the User page shows it: the timeline of trainings and versions, the
per-version table, and how far the stored version is behind, in plain words.

Pure: built from the ledger's ``TrainingRecord`` values (oldest first), the row's model's
versions (newest first, as Replicate lists them) and the stored value; no database,
network or clock. The drift engine judges; this module only lays the same facts out.

Readings:
- A version "was made by" the ledger training whose output hash equals it (the newest
  such training, as the drift engine reads it); a version no ledger training made is
  shown on its own line of the timeline, with what is unknown left empty.
- The parameter diff of a training is against the succeeded training just before it in
  the ledger (whichever model it went to); parameters are the input without the photos
  and the trigger word, a key not sent equals a key sent as null (the trainer's default),
  and values of secret-looking keys are never shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.drift.facts import TrainingRecord
from core.gateway.values import ModelVersion
from core.redaction import shown_value
from core.versions import normalise_version, short_version, version_name


@dataclass(frozen=True)
class ParamChange:
    """One training input that differs from the previous succeeded training's."""

    name: str
    before: Any
    after: Any

    def __str__(self) -> str:
        return f"{self.name} {_plain(self.before)} → {_plain(self.after)}"


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the timeline: a training (with the version it made, if any), or a
    version of the row's model that no training in the ledger made."""

    when: datetime | None  # the training's creation, or the version's
    training_id: str | None
    status: str | None  # the training's status; None on a version-only line
    version_id: str | None  # the 64-hex version the training made / the version
    destination: str | None
    created_at: datetime | None
    completed_at: datetime | None
    trainer: str | None  # ``owner/name:short-version`` of the trainer
    trigger_word: str | None
    photos: int | None
    median_px: int | None
    jpeg_quality: int | None
    failing_photos: int | None
    dataset_note: str | None  # why the photo facts are missing
    compared_with: str | None  # the previous succeeded training the diff is against
    changes: tuple[ParamChange, ...]
    trainer_changed: bool
    error: str | None

    @property
    def is_training(self) -> bool:
        return self.training_id is not None

    @property
    def changes_text(self) -> str:
        """The diff as one line: ``steps 1000 → 1400; lora_rank 16 → 32``."""
        return "; ".join(str(change) for change in self.changes)


@dataclass(frozen=True)
class VersionLine:
    """One version of the row's model, numbered from the oldest (1)."""

    number: int
    version_id: str
    created_at: datetime | None
    training_id: str | None
    trainer: str | None
    trigger_word: str | None
    photos: int | None
    median_px: int | None
    is_stored: bool
    is_latest: bool


def parameter_changes(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[ParamChange, ...]:
    """The inputs that differ, by name; secret-looking values shown as ``[redacted]``."""
    changed = sorted(
        key for key in before.keys() | after.keys() if before.get(key) != after.get(key)
    )
    return tuple(
        ParamChange(key, shown_value(key, before.get(key)), shown_value(key, after.get(key)))
        for key in changed
    )


def trainer_label(record: TrainingRecord) -> str:
    """``owner/name:short`` of the trainer a training ran on."""
    version = short_version(record.trainer_version.strip(), 8)
    return f"{record.trainer_model}:{version}" if version else record.trainer_model


def build_timeline(
    trainings: Sequence[TrainingRecord], versions: Sequence[ModelVersion] = ()
) -> tuple[TimelineEntry, ...]:
    """Every training of the ledger and every version of the row's model no training made,
    oldest first (undated lines first, in the order given)."""
    made = {record.version_hash for record in trainings if record.version_hash}
    lines: list[tuple[int, TimelineEntry]] = []
    previous: TrainingRecord | None = None
    for record in trainings:
        lines.append((len(lines), _training_entry(record, previous)))
        if record.succeeded:
            previous = record
    for version in reversed(versions):  # oldest first
        if version.id not in made:
            lines.append((len(lines), _version_entry(version)))
    lines.sort(key=lambda item: (_sort_time(item[1].when), item[0]))
    return tuple(entry for _, entry in lines)


def version_lines(
    versions: Sequence[ModelVersion],
    trainings: Sequence[TrainingRecord],
    *,
    stored: str | None,
    latest: str | None,
) -> tuple[VersionLine, ...]:
    """The row's model's versions as given (newest first), each with the training that made
    it and that training's photos; ``stored`` is the row's value as stored."""
    stored_hash = normalise_version(stored)
    producers: dict[str, TrainingRecord] = {}
    for producer in trainings:  # oldest first: the newest producer wins, as in the engine
        if producer.version_hash:
            producers[producer.version_hash] = producer
    lines = []
    for position, version in enumerate(versions):
        record = producers.get(version.id)
        dataset = record.dataset if record is not None else None
        lines.append(
            VersionLine(
                number=len(versions) - position,
                version_id=version.id,
                created_at=version.created_at,
                training_id=record.id if record else None,
                trainer=trainer_label(record) if record else None,
                trigger_word=record.trigger_word if record else None,
                photos=dataset.image_count if dataset else None,
                median_px=dataset.median_short_side if dataset else None,
                is_stored=stored_hash is not None and version.id == stored_hash,
                is_latest=latest is not None and version.id == latest,
            )
        )
    return tuple(lines)


def how_far_behind(
    stored: str | None, versions: Sequence[ModelVersion], *, latest: str | None = None
) -> str | None:
    """Stored vs latest in one plain sentence, or None when the versions are unknown (empty).

    ``versions`` are newest first; ``latest`` defaults to the first of them.
    """
    if not versions:
        return None
    newest = latest or versions[0].id
    stored_hash = normalise_version(stored)
    ids = [version.id for version in versions]
    if stored_hash is None:
        return (
            f"Nothing usable is stored; the latest version is {short_version(newest)}… "
            f"(of {len(ids)})."
        )
    if stored_hash not in ids:
        return (
            f"The stored value names {short_version(stored_hash)}…, which is not one of "
            f"the model's {len(ids)} versions; the latest is {short_version(newest)}…."
        )
    if stored_hash == newest:
        plural = "version" if len(ids) == 1 else "versions"
        return f"The stored version is the latest ({len(ids)} {plural} in the model)."
    top = ids.index(newest) if newest in ids else 0
    behind = ids.index(stored_hash) - top
    stored_version, latest_version = versions[ids.index(stored_hash)], versions[top]
    plural = "version" if behind == 1 else "versions"
    gap = _days_between(stored_version.created_at, latest_version.created_at)
    later = f", {gap} after the stored one" if gap else ""
    undated = ", created on an unknown date" if latest_version.created_at is None else ""
    return (
        f"The app generates with {version_name(stored_hash, versions)} "
        f"({short_version(stored_hash)}…), {behind} {plural} behind the latest "
        f"{version_name(newest, versions)} ({short_version(newest)}…{undated}{later}); "
        "Replicate's site runs the latest."
    )


# -- helpers --------------------------------------------------------------------------------


def _training_entry(record: TrainingRecord, previous: TrainingRecord | None) -> TimelineEntry:
    dataset = record.dataset
    note: str | None
    if dataset is None:
        note = "photos not measured yet"
    elif not dataset.readable:
        note = dataset.error
    else:
        note = None
    changes = parameter_changes(previous.parameters, record.parameters) if previous else ()
    trainer_changed = previous is not None and (
        previous.trainer_model,
        previous.trainer_version,
    ) != (record.trainer_model, record.trainer_version)
    return TimelineEntry(
        when=record.created_at,
        training_id=record.id,
        status=record.status,
        version_id=record.version_hash,
        destination=record.destination,
        created_at=record.created_at,
        completed_at=record.completed_at,
        trainer=trainer_label(record),
        trigger_word=record.trigger_word,
        photos=dataset.image_count if dataset else None,
        median_px=dataset.median_short_side if dataset else None,
        jpeg_quality=dataset.jpeg_quality if dataset else None,
        failing_photos=dataset.photos_failing if dataset else None,
        dataset_note=note,
        compared_with=previous.id if previous else None,
        changes=changes,
        trainer_changed=trainer_changed,
        error=record.error,
    )


def _version_entry(version: ModelVersion) -> TimelineEntry:
    return TimelineEntry(
        when=version.created_at,
        training_id=None,
        status=None,
        version_id=version.id,
        destination=None,
        created_at=version.created_at,
        completed_at=None,
        trainer=None,
        trigger_word=None,
        photos=None,
        median_px=None,
        jpeg_quality=None,
        failing_photos=None,
        dataset_note="no training in the ledger made this version",
        compared_with=None,
        changes=(),
        trainer_changed=False,
        error=None,
    )


def _sort_time(when: datetime | None) -> tuple[int, datetime]:
    if when is None:
        return (0, datetime.min.replace(tzinfo=UTC))
    return (1, when if when.tzinfo is not None else when.replace(tzinfo=UTC))


def _days_between(earlier: datetime | None, later: datetime | None) -> str | None:
    if earlier is None or later is None:
        return None
    days = (_sort_time(later)[1] - _sort_time(earlier)[1]).days
    if days <= 0:
        return None
    return "1 day" if days == 1 else f"{days} days"


def _day(when: datetime | None) -> str:
    return when.date().isoformat() if when is not None else "on an unknown date"


def _plain(value: Any) -> str:
    return "—" if value is None else str(value)
