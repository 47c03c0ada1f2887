"""How blind review names what a voter judged: each version as staff call it
(``core.versions.version_name``: "v2 · trained 3 Oct"), the comparison column its image
came from ("column A: stored, the app's input"), and the user by their email first.

Pure: plain values in, words out. The versions come from the user's trainings in the
ledger (``ledger_versions``), numbered as Compare numbers them (``v1`` is the user's first
succeeded training), because a comparison keeps each column's version id but not when the
version was made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.compare.columns import user_versions
from core.drift.facts import TrainingRecord
from core.gateway.values import ModelVersion
from core.versions import version_name

# How each column runs its version, as Compare's columns say it (``core.compare.columns``).
APP_INPUT = "the app's input"
SITE_WAY = "Replicate's way"
# Columns whose name says which version they run beside the version's own name.
_NAMED_BY_ROLE = {"stored": "stored", "latest": "latest", "site": "latest"}


def ledger_versions(trainings: Iterable[TrainingRecord]) -> tuple[ModelVersion, ...]:
    """The versions the user's succeeded trainings made, oldest first, each dated by the
    day its training was made: what ``version_name`` numbers and dates."""
    return tuple(
        ModelVersion(id=version.version_id, created_at=version.created_at)
        for version in user_versions(trainings)
    )


def column_words(letter: str | None, columns: Sequence[Any] | None) -> str | None:
    """Which column of its comparison an image came from, in words: "column A: stored,
    the app's input", "column C: latest, Replicate's way", "column B: the app's input" (a
    ``v2`` or hash column: the version's own name says which). None when the comparison
    did not record its columns."""
    if letter is None or not columns:
        return None
    entry = next(
        (item for item in columns if isinstance(item, Mapping) and item.get("letter") == letter),
        None,
    )
    if entry is None:
        return None
    how = SITE_WAY if entry.get("style") == "site" else APP_INPUT
    role = _NAMED_BY_ROLE.get(str(entry.get("name") or "").strip().lower())
    return f"column {letter}: {role}, {how}" if role else f"column {letter}: {how}"


@dataclass(frozen=True)
class NamedVersion:
    """One side of a pair once revealed: the version's name, its column, its full id."""

    version_id: str
    name: str  # "v2 · trained 3 Oct", or the short hash of a version the ledger lacks
    column: str | None

    @property
    def words(self) -> str:
        return f"{self.name} ({self.column})" if self.column else self.name


def named(version_id: str, column: str | None, versions: Sequence[ModelVersion]) -> NamedVersion:
    return NamedVersion(version_id, version_name(version_id, versions), column)


def person(user_id: str, email: str | None) -> str:
    """A user as the review shows them: the email first, the id after it to tell two
    accounts apart ("ann@example.test · 5040000c-…"); the id alone without an email."""
    return f"{email} · {user_id}" if email else user_id
