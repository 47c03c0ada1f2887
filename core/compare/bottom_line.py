"""A comparison's bottom line: one plain sentence a non-engineer can act on, and its tone.

The sentence says what the images show (a column that loses the face, one less or more
like the person than column A beyond the noise floor, or no difference beyond noise) and
names the cause whenever the two columns it speaks of differ by it: the trigger word each
sends (and whether its version learned it), the version each runs (named as staff name
versions, with how far behind the latest it is), and the inputs that differ or that a
version ignores. Pure: the caller reads the comparison and the model's versions first.

The comparison's figures (paired differences, the noise floor) stay below it on the page;
the bottom line carries none, so it reads the same to everyone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.compare.scores import TONE_OF, ComparisonStats, Reading, Tone, read_column
from core.gateway.values import ModelVersion
from core.versions import normalise_version, version_name

# How many input names a sentence lists before "and N more".
LISTED_INPUTS = 3
# Faces this much less sharp than column A's are named, likeness aside: a blurred version
# can stay "like the person" by the identity measure while looking plainly worse.
BLURRED_RATIO = 0.5
# The inputs that name a version's own weights: two versions send different ones by nature,
# so they are a cause only between columns of one version.
VERSION_INPUTS = frozenset({"hf_lora"})
# A version trained on photos this much smaller (median short side) is named for it; the
# dataset checks' own threshold for "squeezed".
SQUEEZED_RATIO = 0.75


@dataclass(frozen=True)
class Dataset:
    """What a version was trained on, as measured: photo count and median short side."""

    photos: int | None
    median_px: int | None


_NUMBERED = re.compile(r"v([0-9]+)\b")
_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
# The worst news first: a lost face, then a likeness change beyond noise, then the rest.
_RANK = {
    Reading.LOSES_LIKENESS: 0,
    Reading.A_LOSES_LIKENESS: 0,
    Reading.FURTHER: 1,
    Reading.CLOSER: 1,
    Reading.SAME: 2,
    Reading.NOTHING_TO_COMPARE: 3,
    Reading.NO_FACE_EITHER: 3,
}


@dataclass(frozen=True)
class Side:
    """One column as the bottom line speaks of it (plain values: see ``sides_of``)."""

    letter: str
    who: str  # "the app", "Replicate's site", "the new version (v2 · trained 9 Oct)"
    images: str  # "the app's images", "the images from v2 · trained 3 Oct"
    version_id: str
    version: str  # "v1 · trained 3 Oct", or the short hash of a version not the model's
    named: bool = False  # ``who`` names its version already
    number: int | None = None  # its place among the model's versions, oldest first
    latest_number: int | None = None  # the model's newest version's place
    trigger_sent: str | None = None  # the trigger word its prompt carries
    trigger_trained: str | None = None  # the one its version was trained with, when known
    inputs: Mapping[str, Any] = field(default_factory=dict)  # what it sends, seed aside
    ignored: tuple[str, ...] = ()  # inputs its version does not declare
    photos: int | None = None  # photos its version was trained on, when measured
    median_px: int | None = None  # their median short side, when measured

    @property
    def behind(self) -> int | None:
        """How many versions older than the model's newest (0: it is the newest)."""
        if self.number is None or self.latest_number is None:
            return None
        return self.latest_number - self.number


@dataclass(frozen=True)
class BottomLine:
    sentence: str
    tone: Tone


def bottom_line(
    sides: Sequence[Side], stats: ComparisonStats | None, person: str
) -> BottomLine | None:
    """The one sentence for a finished comparison, and its tone (worse, better, no
    difference); None without figures or without a second column to compare with A.

    Of the columns after A, the one read against A with the worst news is spoken of (a
    lost face, then the largest likeness change beyond noise); ``person`` is the user's
    email or "this user"."""
    if stats is None or len(sides) < 2 or len(stats.columns) < 2:
        return None
    base_stats = stats.columns[0]
    readings: list[tuple[int, float, Side, Reading]] = []
    for side in sides[1:]:
        found = stats.column(side.letter)
        if found is None:
            continue
        reading = read_column(base_stats, found, stats.noise_floor)
        readings.append((_RANK[reading], -abs(found.identity_vs_a or 0.0), side, reading))
    if not readings:
        return None
    readings.sort(key=lambda item: (item[0], item[1]))
    _, _, other, reading = readings[0]
    base = sides[0]
    other_stats = stats.column(other.letter)
    other_sharpness = other_stats.sharpness_mean if other_stats is not None else None
    blurred = _blurred(base, other, base_stats.sharpness_mean, other_sharpness)
    if reading is Reading.SAME and blurred is not None:
        words, base_is_soft = blurred
        causes = _causes(base, other)
        because = f", because {'; '.join(causes)}" if causes else ""
        sentence = (
            f"No difference in likeness beyond noise between {base.who} and {other.who}, "
            f"but {words}{because}."
        )
        # Read against A, as every line is: a sharper column is better, a softer worse.
        return BottomLine(sentence, Tone.BETTER if base_is_soft else Tone.WORSE)
    return BottomLine(_sentence(base, other, reading, person), TONE_OF[reading])


def _blurred(
    base: Side, other: Side, base_sharpness: float | None, other_sharpness: float | None
) -> tuple[str, bool] | None:
    """Words for faces far less sharp on one side than the other, and whether that side
    is column A's; None when neither is."""
    if not base_sharpness or not other_sharpness:
        return None
    if other_sharpness < base_sharpness * BLURRED_RATIO:
        soft, sharp, low, high = other, base, other_sharpness, base_sharpness
    elif base_sharpness < other_sharpness * BLURRED_RATIO:
        soft, sharp, low, high = base, other, base_sharpness, other_sharpness
    else:
        return None
    words = (
        f"{soft.who}'s faces are far less sharp than {sharp.who}'s ({low:.0f} against {high:.0f})"
    )
    return words, soft is base


def _sentence(base: Side, other: Side, reading: Reading, person: str) -> str:
    causes = _causes(base, other)
    if reading in (Reading.LOSES_LIKENESS, Reading.A_LOSES_LIKENESS):
        lost, kept = (other, base) if reading is Reading.LOSES_LIKENESS else (base, other)
        if causes:
            return f"{_capital(lost.images)} lose the face because {'; '.join(causes)}."
        return f"{_capital(lost.images)} lose the face; {kept.images} keep it."
    if reading in (Reading.FURTHER, Reading.CLOSER):
        how = "less" if reading is Reading.FURTHER else "more"
        because = f", because {'; '.join(causes)}" if causes else ""
        return (
            f"{_capital(other.who)} makes images {how} like {person} than {base.who}, "
            f"beyond noise{because}."
        )
    if reading is Reading.SAME:
        though = f", though {'; '.join(causes)}" if causes else ""
        return (
            f"No difference beyond noise between {base.who} and {other.who}{though}; "
            "more seeds would tell."
        )
    if reading is Reading.NO_FACE_EITHER:
        return (
            f"Neither {base.who} nor {other.who} shows a face in any image, so their "
            "likeness cannot be compared."
        )
    return (
        f"No seed shows a face from both {base.who} and {other.who}: nothing to compare; "
        "more seeds would tell."
    )


def _causes(base: Side, other: Side) -> list[str]:
    """What the two columns differ by, in words: trigger word, version, inputs."""
    trigger = _trigger_cause(base, other)
    version = _version_cause(base, other)
    dataset = _dataset_cause(base, other)
    found = [cause for cause in (trigger, version, dataset) if cause is not None]
    return found + _input_causes(base, other, also=bool(found))


def _dataset_cause(base: Side, other: Side) -> str | None:
    """Fewer or smaller photos behind one of two versions (the retrain that lost photos)."""
    if base.version_id == other.version_id:
        return None
    parts: list[str] = []
    if base.photos and other.photos and base.photos != other.photos:
        fewer, more = (other, base) if other.photos < base.photos else (base, other)
        parts.append(
            f"{fewer.version} was trained on {fewer.photos} photos, {more.version} on {more.photos}"
        )
    if base.median_px and other.median_px:
        small, large = (other, base) if other.median_px < base.median_px else (base, other)
        if (
            small.median_px
            and large.median_px
            and small.median_px < large.median_px * SQUEEZED_RATIO
        ):
            parts.append(
                f"{small.version}'s photos were squeezed to {small.median_px} px "
                f"({large.version}'s: {large.median_px} px)"
            )
    return "; ".join(parts) or None


def _unlearned(side: Side) -> bool:
    """Whether the side sends a trigger word its version was not trained with."""
    return side.trigger_trained is not None and side.trigger_sent != side.trigger_trained


def _trigger_cause(base: Side, other: Side) -> str | None:
    same_version = base.version_id == other.version_id
    if base.trigger_sent == other.trigger_sent:
        # The same word to two versions, only one of which learned it.
        wrong = [side for side in (base, other) if _unlearned(side)]
        if len(wrong) != 1 or base.trigger_sent is None:
            return None
        side = wrong[0]
        return (
            f"both send the trigger word {_quoted(base.trigger_sent)}, which "
            f"{side.who if side.named else side.version} never learned (it learned "
            f"{_quoted(str(side.trigger_trained))})"
        )

    def sends(side: Side, *, first: bool) -> str:
        if side.trigger_sent is None:
            return f"{side.who} sends no trigger word"
        word = "the trigger word " if first else ""
        said = f"{side.who} sends {word}{_quoted(side.trigger_sent)}"
        if _unlearned(side):
            said += f", which {'this model' if same_version else side.version} never learned"
        return said

    # The side whose word its version never learned first: it is the cause.
    first, second = sorted((base, other), key=lambda side: not _unlearned(side))
    return f"{sends(first, first=True)}; {sends(second, first=False)}"


def _version_cause(base: Side, other: Side) -> str | None:
    if base.version_id == other.version_id:
        return None
    if base.named and other.named:
        return None  # the sentence names both versions already
    for old, new in ((base, other), (other, base)):
        behind = old.behind
        if new.behind == 0 and behind is not None and behind > 0:
            plural = "version" if behind == 1 else "versions"
            return f"{_uses(old)}, {_count(behind)} {plural} behind the latest {new.version}"
    return f"{_uses(base)} and {_uses(other)}"


def _uses(side: Side) -> str:
    if side.named:
        return side.version
    verb = "uses" if side.who in ("the app", "Replicate's site") else "is"
    return f"{side.who} {verb} {side.version}"


def _input_causes(base: Side, other: Side, *, also: bool) -> list[str]:
    names = sorted(set(base.inputs) | set(other.inputs))
    own_weights = VERSION_INPUTS if base.version_id != other.version_id else frozenset()
    differing = [
        name
        for name in names
        if name != "seed" and name not in own_weights and _sent(base, name) != _sent(other, name)
    ]
    causes: list[str] = []
    if differing:
        causes.append(f"they {'also ' if also else ''}differ in {_listed(differing)}")
    same_version = base.version_id == other.version_id
    for side, rest in ((base, other), (other, base)):
        dropped = [name for name in side.ignored if name in differing or name not in rest.ignored]
        if dropped:
            if side.named:
                causes.append(f"{side.version} ignores {_listed(dropped)}")
            else:
                whose = "this model" if same_version else side.version
                causes.append(f"{whose} ignores {_listed(dropped)}, which {side.who} sends")
    return causes


def _sent(side: Side, name: str) -> str | None:
    """An input as sent, the prompt without its trigger word (named on its own)."""
    if name not in side.inputs:
        return None
    value = side.inputs[name]
    if name == "prompt" and isinstance(value, str) and side.trigger_sent:
        prefix = f"{side.trigger_sent}, "
        return value[len(prefix) :] if value.startswith(prefix) else value
    return repr(value)


def _listed(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b, c and 2 more``."""
    if len(names) <= LISTED_INPUTS:
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{', '.join(names[:LISTED_INPUTS])} and {len(names) - LISTED_INPUTS} more"


def _count(number: int) -> str:
    return _WORDS[number] if 0 <= number < len(_WORDS) else str(number)


def _quoted(word: str) -> str:
    return f"\u201c{word}\u201d"


def _capital(text: str) -> str:
    """The sentence's first letter upper-case; a version's name (``v2 · …``) as it is."""
    return text if _NUMBERED.match(text) else text[:1].upper() + text[1:]


# -- the columns as the bottom line and the pages name them ---------------------------------


def _number(name: str) -> int | None:
    found = _NUMBERED.match(name)
    return int(found.group(1)) if found else None


def trigger_sent(column: Mapping[str, Any]) -> str | None:
    """The trigger word a saved column's prompt carries: kept with the column since it was
    recorded, read from the front of the prompt for older comparisons (the app's prompt
    and the site's both start ``"{trigger}, "``)."""
    if "trigger_sent" in column:
        return str(column["trigger_sent"]) if column["trigger_sent"] else None
    prompt = str((column.get("input") or {}).get("prompt") or "")
    trained = column.get("trigger_word")
    if column.get("style") == "site":
        return str(trained) if trained and prompt.startswith(f"{trained}, ") else None
    word = prompt.split(", ", 1)[0] if ", " in prompt else ""
    return word or None


def sides_of(
    columns: Sequence[Mapping[str, Any]],
    versions: Sequence[ModelVersion],
    *,
    roles: Mapping[str, str] | None = None,
    datasets: Mapping[str, Dataset] | None = None,
    this_year: int | None = None,
) -> tuple[Side, ...]:
    """Each saved column (``ComparisonView.columns``) as a ``Side``, its version named
    among the model's ``versions``. ``roles`` calls a column by its part instead of its
    name (the gate's ``{"A": "current", "B": "new"}``); ``datasets`` say, by version id,
    what each version was trained on."""
    # version_name numbers the model's versions oldest first: the newest is the last.
    latest_number = len(versions) or None
    sides = []
    for column in columns:
        letter = str(column["letter"])
        version_id = normalise_version(str(column["version_id"])) or str(column["version_id"])
        version = version_name(version_id, versions, this_year=this_year)
        role = (roles or {}).get(letter)
        trained = (datasets or {}).get(version_id)
        who, images, named = _words(str(column.get("name") or ""), version, role)
        sides.append(
            Side(
                letter=letter,
                who=who,
                images=images,
                version_id=version_id,
                version=version,
                named=named,
                number=_number(version),
                latest_number=latest_number,
                trigger_sent=trigger_sent(column),
                trigger_trained=str(column["trigger_word"]) if column.get("trigger_word") else None,
                inputs=dict(column.get("input") or {}),
                ignored=tuple(column.get("ignored") or ()),
                photos=trained.photos if trained else None,
                median_px=trained.median_px if trained else None,
            )
        )
    return tuple(sides)


def _words(name: str, version: str, role: str | None) -> tuple[str, str, bool]:
    """(who, their images, whether that names the version) for a column called ``name``
    running ``version``."""
    if role is not None:
        who = f"the {role} version ({version})"
        return who, f"the images from {who}", True
    if name == "stored":
        return "the app", "the app's images", False
    if name == "site":
        return "Replicate's site", "the site's images", False
    if name == "latest":
        return "the latest version", "the latest version's images", False
    return version, f"the images from {version}", True


def column_title(column: Mapping[str, Any], side: Side, role: str | None = None) -> str:
    """A column's heading: ``current (v1 · trained 3 Oct)`` for a part (the gate's), else
    ``A: stored (v1 · trained 3 Oct, app's input)``."""
    if role is not None:
        return f"{role} ({side.version})"
    how = "site's way" if column.get("style") == "site" else "app's input"
    name = str(column.get("name") or "")
    same = name == side.version or side.version.startswith(f"{name} · ")
    if same or normalise_version(name) == side.version_id:
        return f"{side.letter}: {side.version} ({how})"
    return f"{side.letter}: {name} ({side.version}, {how})"
