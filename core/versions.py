"""Reading a stored version id the way the app does, and comparing it with the model's versions.

The app stores ``user_models.replicate_version_id`` and, when it generates, sends the text
after the last ``:`` of it. The value is meant to be the bare 64-hex id of the newest version
of the user's model; audits found ``owner/name:hash`` values, trainer hashes and versions
several retrains old. ``compare_versions`` states plainly how a stored value relates to the
model's versions; it takes plain values and does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from core.gateway.values import ModelVersion, is_version_hash

SHORT_LENGTH = 12
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def short_version(value: str | None, length: int = SHORT_LENGTH) -> str:
    """The first ``length`` characters, shown as stored: malformed values stay recognisable.

    Control characters (a stray newline) are shown as ``␣`` so the cell stays on one line.
    """
    if value is None:
        return ""
    return _CONTROL_CHARACTERS.sub("␣", value[:length])


def normalise_version(stored: str | None) -> str | None:
    """The version a stored value names: the text after the last ``:`` (the app sends
    that part), stripped of whitespace and lower-cased (Replicate's ids are lower-case).

    The one reading of a stored version: the User page, the timeline, the drift engine and
    the repairs all compare this. None when nothing (or only whitespace) is stored. Whether
    the stored value itself is well-formed is ``is_version_hash(stored)``.
    """
    if stored is None:
        return None
    candidate = stored.rsplit(":", 1)[-1].strip().lower()
    return candidate or None


class Level(StrEnum):
    """How loudly the page shows a note."""

    OK = "ok"
    WARNING = "warning"
    ERROR = "error"
    INFO = "info"


@dataclass(frozen=True)
class VersionNote:
    """One plain sentence about the stored version, with how serious it is."""

    level: Level
    text: str


@dataclass(frozen=True)
class VersionComparison:
    """How the stored version relates to the model's versions.

    ``None`` in a yes/no field means "unknown": the model's versions could not be read.
    """

    stored: str | None
    normalised: str | None
    stored_is_bare: bool  # exactly 64 lowercase hex, as the app should store it
    normalised_is_hex64: bool
    latest: str | None
    version_count: int | None
    is_latest: bool | None
    is_version_of_model: bool | None
    versions_behind: int | None  # 0 when it is the latest

    def notes(self) -> tuple[VersionNote, ...]:
        """Plain statements for the page, most serious first."""
        notes: list[VersionNote] = []
        if self.stored is None or self.normalised is None:
            notes.append(
                VersionNote(Level.ERROR, "No version stored: the app has nothing to generate with.")
            )
            return tuple(notes)
        if not self.stored_is_bare:
            fix = (
                f" (the app would send {self.normalised[:SHORT_LENGTH]}…)"
                if self.normalised_is_hex64
                else ""
            )
            notes.append(VersionNote(Level.ERROR, f"Stored value is not a bare version id{fix}."))
        if self.is_version_of_model is False:
            notes.append(VersionNote(Level.ERROR, "Not a version of this model."))
        if self.is_latest is False and self.versions_behind is not None:
            plural = "version" if self.versions_behind == 1 else "versions"
            notes.append(
                VersionNote(
                    Level.ERROR, f"Stored ≠ latest — {self.versions_behind} {plural} behind."
                )
            )
        if self.is_latest is None:
            notes.append(
                VersionNote(
                    Level.INFO,
                    "The model's versions are unknown, so stored vs latest cannot be checked.",
                )
            )
        if self.is_latest and self.stored_is_bare:
            notes.append(VersionNote(Level.OK, "Stored = latest."))
        elif self.is_latest:
            notes.append(
                VersionNote(
                    Level.WARNING, "Stored hash is the latest version, but not stored as a bare id."
                )
            )
        return tuple(notes)


def compare_versions(
    stored: str | None, *, latest: str | None, version_ids: Sequence[str] | None
) -> VersionComparison:
    """Compare a stored value with the model's latest version and its versions.

    ``version_ids`` are ALL versions of the model, newest first, or None when they could not
    be read; ``latest`` is the model's latest version id (None when unknown or none).
    """
    normalised = normalise_version(stored)
    known = tuple(version_ids) if version_ids is not None else None
    if latest is None and known:
        latest = known[0]
    is_latest: bool | None
    member: bool | None
    behind: int | None = None
    if normalised is None:
        is_latest = member = False if known is not None else None
    elif known is not None:
        member = normalised in known
        is_latest = latest is not None and normalised == latest
        if member:
            top = known.index(latest) if latest in known else 0
            behind = max(0, known.index(normalised) - top)
    elif latest is not None and normalised == latest:
        is_latest, member, behind = True, True, 0
    else:
        is_latest = member = None
    return VersionComparison(
        stored=stored,
        normalised=normalised,
        stored_is_bare=stored is not None and is_version_hash(stored),
        normalised_is_hex64=normalised is not None and is_version_hash(normalised),
        latest=latest,
        version_count=len(known) if known is not None else None,
        is_latest=is_latest,
        is_version_of_model=member,
        versions_behind=behind,
    )


def version_name(
    version_id: str | None, versions: Sequence[ModelVersion], *, this_year: int | None = None
) -> str:
    """How staff call a version: ``v2 · trained 3 Oct`` (its place among the model's
    versions, oldest first, and the day it was made; the year when not this one's), or its
    short hash when it is not among ``versions``. ``this_year`` defaults to today's. The
    hash itself is shown beside it to copy.

    The one naming of versions on every page, so that "v2" means the same everywhere.
    """
    wanted = normalise_version(version_id)
    if wanted is None:
        return "no version"
    oldest_first = sorted(
        versions, key=lambda item: (item.created_at is None, item.created_at or _EPOCH, item.id)
    )
    for number, version in enumerate(oldest_first, start=1):
        if version.id == wanted:
            if version.created_at is None:
                return f"v{number}"
            return f"v{number} · trained {_day(version.created_at, this_year)}"
    return short_version(wanted)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _day(when: datetime, this_year: int | None) -> str:
    day = f"{when.day} {when:%b}"
    current = this_year if this_year is not None else datetime.now(UTC).year
    return day if when.year == current else f"{day} {when.year}"
