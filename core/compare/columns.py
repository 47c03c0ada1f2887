"""Which version each column of a comparison runs, and how (the app's input or the site's).

Columns are named ``stored`` (the version the app's row holds, with the app's input),
``latest`` (the model's latest version, with the app's input), ``site`` (the latest version
run the way Replicate's site runs it), ``v1``…``vN`` (the user's versions in creation
order, with the app's input) or a bare version hash. Pure: the caller reads the user's
rows, the ledger and the model first.

"The app's input" is the row's prompt template, trigger word and preset. ``stored`` sends
the row's weights as stored (what the app really does, mismatched weights included); any
other version is sent with the weights its own training made, as the app would if its row
pointed at that version, so a column judges the version and not the row's weights.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from core.drift.facts import TrainingRecord
from core.errors import DataRejected
from core.gateway.values import is_version_hash
from core.versions import normalise_version, short_version

DEFAULT_COLUMNS = ("stored", "latest", "site")
MAX_COLUMNS = 4
_NUMBERED = re.compile(r"v([1-9][0-9]*)")
LETTERS = "ABCD"


class Style(StrEnum):
    APP = "app"  # the app's exact input for this user
    SITE = "site"  # the version's schema defaults and the trained trigger word


@dataclass(frozen=True)
class UserVersion:
    """A version one of the user's trainings made (the ledger knows it)."""

    number: int  # 1 for the first the user ever got
    version_id: str  # bare 64-hex
    model_id: str | None  # owner/name; None when output.version was a bare hash
    trigger_word: str | None  # what that training was given
    weights_url: str | None  # the training's output.weights
    training_id: str
    created_at: datetime | None
    photos: int | None = None  # photos in the training's ZIP, when measured
    median_px: int | None = None  # their median short side, when measured


@dataclass(frozen=True)
class Column:
    letter: str
    name: str  # as asked: stored, latest, site, v2, or a hash
    version_id: str
    model_id: str | None
    style: Style
    trigger_word: str | None  # the one the version was trained with, when known
    weights_url: str | None  # the weights that version's training made, when known
    note: str | None = None  # e.g. the stored value was normalised

    @property
    def label(self) -> str:
        how = "site's way" if self.style is Style.SITE else "app's input"
        return f"{self.letter}: {self.name} ({short_version(self.version_id)}, {how})"


@dataclass(frozen=True)
class VersionFacts:
    """What the caller found: the row's stored value, the model's latest, the user's
    versions (creation order)."""

    stored: str | None
    latest_version_id: str | None
    model_id: str | None
    versions: Sequence[UserVersion]


def user_versions(trainings: Iterable[TrainingRecord]) -> tuple[UserVersion, ...]:
    """The versions the user's succeeded trainings made, oldest first: v1, v2, …"""
    ordered = sorted(trainings, key=lambda item: (item.created_at is None, item.created_at))
    found: list[UserVersion] = []
    for training in ordered:
        version_id = training.version_hash
        if training.status != "succeeded" or version_id is None:
            continue
        model_id = training.destination
        trigger = training.input.get("trigger_word")
        found.append(
            UserVersion(
                number=len(found) + 1,
                version_id=version_id,
                model_id=model_id,
                trigger_word=str(trigger) if trigger else None,
                weights_url=training.output_weights,
                training_id=training.id,
                created_at=training.created_at,
                photos=training.dataset.image_count if training.dataset else None,
                median_px=training.dataset.median_short_side if training.dataset else None,
            )
        )
    return tuple(found)


def parse_columns(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"stored,latest"`` or a list -> the names, lower-cased, blanks dropped."""
    if text is None:
        return DEFAULT_COLUMNS
    parts = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(part.strip().lower() for part in parts if part.strip())
    return names or DEFAULT_COLUMNS


def resolve_columns(names: Sequence[str], facts: VersionFacts) -> list[Column]:
    """The columns, in order. ``DataRejected`` says plainly what cannot be compared."""
    if len(names) > MAX_COLUMNS:
        raise DataRejected(f"At most {MAX_COLUMNS} columns; {len(names)} were asked for.")
    if not names:
        raise DataRejected("Choose at least one column.")
    return [_resolve(LETTERS[index], name, facts) for index, name in enumerate(names)]


def _trained_with(version_id: str, facts: VersionFacts) -> UserVersion | None:
    return next((item for item in facts.versions if item.version_id == version_id), None)


def _column(
    letter: str,
    name: str,
    version_id: str,
    facts: VersionFacts,
    style: Style,
    note: str | None = None,
) -> Column:
    made_by = _trained_with(version_id, facts)
    return Column(
        letter=letter,
        name=name,
        version_id=version_id,
        model_id=(made_by.model_id if made_by else None) or facts.model_id,
        style=style,
        trigger_word=made_by.trigger_word if made_by else None,
        weights_url=made_by.weights_url if made_by else None,
        note=note,
    )


def _resolve(letter: str, name: str, facts: VersionFacts) -> Column:
    if name == "stored":
        normalised = normalise_version(facts.stored)
        if normalised is None or not is_version_hash(normalised):
            raise DataRejected(
                "The app's row holds no usable version "
                f"({'nothing stored' if facts.stored is None else repr(facts.stored)}): "
                "compare the user's versions by number (v1, v2, ...) instead."
            )
        note = (
            None
            if facts.stored == normalised
            else f"The row stores {facts.stored!r}; the app sends {normalised[:12]}…, "
            "which is what runs here."
        )
        return _column(letter, name, normalised, facts, Style.APP, note)
    if name in ("latest", "site"):
        if facts.latest_version_id is None:
            raise DataRejected(
                "The user's model has no latest version on Replicate (no model, or it was "
                "deleted): compare the user's versions by number instead."
            )
        style = Style.SITE if name == "site" else Style.APP
        return _column(letter, name, facts.latest_version_id, facts, style)
    numbered = _NUMBERED.fullmatch(name)
    if numbered:
        number = int(numbered.group(1))
        found = next((item for item in facts.versions if item.number == number), None)
        if found is None:
            raise DataRejected(
                f"The user has {len(facts.versions)} version(s) from their trainings; "
                f"there is no {name}."
            )
        return _column(letter, name, found.version_id, facts, Style.APP)
    if is_version_hash(name):
        return _column(letter, name[:12], name, facts, Style.APP)
    raise DataRejected(
        f"Unknown column {name!r}: use stored, latest, site, v1…v{len(facts.versions) or 1} "
        "or a 64-character version id."
    )


# What a comparison shows for each finding: the columns that would prove it (see
# ``columns_proving``).
_PROVING: dict[str, str] = {
    "STALE_VERSION": "stored,latest",
    "VERSION_FORMAT": "stored,latest",
    "TRIGGER_WORD_MISMATCH": "stored,latest,site",
    "WEIGHTS_URL_MISMATCH": "stored,latest",
}
_BETWEEN_LAST_TWO = frozenset(
    {"DATASET_SHRANK", "DATASET_DEGRADED", "PARAMS_CHANGED", "TRAINER_CHANGED"}
)


def columns_proving(code: str, version_count: int) -> str | None:
    """The Compare columns that would show a finding's effect on the images (the user's
    last two versions for a retrain that changed the photos, parameters or trainer); None
    when a comparison would not show it."""
    if code in _BETWEEN_LAST_TWO:
        return f"v{version_count - 1},v{version_count}" if version_count >= 2 else None
    return _PROVING.get(code)
