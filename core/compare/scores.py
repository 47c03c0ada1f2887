"""What one generated image says about the user's likeness, measured offline with dlib as
the dataset facts are, and the per-column verdict paired by seed.

Identity is the distance of the image's largest face to the user's own training photos'
medoid face, placed within the user's own photo-to-photo spread (a per-user baseline: some
people's selfies vary more than others'). The nearest training photo's distance flags an
output that copies one photo. Sharpness is the face crop's, as for training photos.

Columns are compared with column A paired by seed (the same seed, prompt and aspect ratio:
only the version or the input differs). The noise floor is what the same version and input
give on a repeat; Replicate is not bit-for-bit repeatable, and dlib moves a little on
re-encoded images, so the floor is never below ``MIN_NOISE_FLOOR``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from core.imaging import ZipPhoto, laplacian_variance
from core.imaging.faces import Face, FaceReader
from core.ledger.photo_facts import face_box, medoid_index

# Below this, two identity means are the same as far as dlib can tell (its distances move
# about 0.01-0.02 between re-encodings of one image).
MIN_NOISE_FLOOR = 0.03
# Output this close to one training photo is likely a copy of it, not a new picture.
COPY_DISTANCE = 0.15


@dataclass(frozen=True)
class Reference:
    """The user's own training photos: their faces' embeddings and medoid, and how far
    each is from the medoid (the user's own spread)."""

    names: tuple[str, ...]
    embeddings: tuple[tuple[float, ...], ...]
    medoid: tuple[float, ...]
    spread: tuple[float, ...]  # each other photo's distance to the medoid, ascending

    @classmethod
    def from_faces(cls, faces: Mapping[str, Sequence[float]]) -> Reference | None:
        """From each photo's largest face (name -> embedding); None without any face."""
        names = tuple(sorted(faces))
        embeddings = tuple(tuple(float(value) for value in faces[name]) for name in names)
        chosen = medoid_index(embeddings)
        if chosen is None:
            return None
        medoid = np.asarray(embeddings[chosen])
        spread = sorted(
            float(np.linalg.norm(np.asarray(embedding) - medoid))
            for index, embedding in enumerate(embeddings)
            if index != chosen
        )
        return cls(names, embeddings, embeddings[chosen], tuple(spread))

    def place(self, distance: float) -> str:
        """Where a distance to the medoid falls among the user's own photos'."""
        if not self.spread:
            return "one training photo: no spread to compare with"
        if distance <= self.spread[0]:
            return "closer than any of the user's own photos"
        if distance <= self.spread[-1]:
            further = sum(1 for own in self.spread if own > distance) / len(self.spread)
            return f"within the user's own photos (closer than {round(100 * further)}% of them)"
        return "further than any of the user's own photos"


@dataclass(frozen=True)
class ImageScore:
    face_found: bool
    face_score: float | None  # dlib's detector score of the largest face
    identity: float | None  # distance to the user's medoid face (lower: more like them)
    identity_place: str | None
    nearest_photo: str | None
    nearest_distance: float | None
    sharpness: float  # of the face crop, or of the whole image without a face

    @property
    def copies_a_photo(self) -> bool:
        return self.nearest_distance is not None and self.nearest_distance < COPY_DISTANCE

    def to_dict(self) -> dict[str, object]:
        return {
            "face_found": self.face_found,
            "face_score": self.face_score,
            "identity": self.identity,
            "identity_place": self.identity_place,
            "nearest_photo": self.nearest_photo,
            "nearest_distance": self.nearest_distance,
            "sharpness": self.sharpness,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> ImageScore:
        def number(key: str) -> float | None:
            value = raw.get(key)
            return float(value) if isinstance(value, int | float) else None

        return cls(
            face_found=bool(raw.get("face_found")),
            face_score=number("face_score"),
            identity=number("identity"),
            identity_place=str(raw["identity_place"]) if raw.get("identity_place") else None,
            nearest_photo=str(raw["nearest_photo"]) if raw.get("nearest_photo") else None,
            nearest_distance=number("nearest_distance"),
            sharpness=number("sharpness") or 0.0,
        )


def score_faces(faces: Sequence[Face], sharpness: float, reference: Reference | None) -> ImageScore:
    """The score of an image whose faces (largest first) and sharpness were read."""
    if not faces:
        return ImageScore(False, None, None, None, None, None, sharpness)
    face = faces[0]
    if reference is None:
        return ImageScore(True, face.score, None, None, None, None, sharpness)
    embedding = np.asarray(face.embedding)
    identity = float(np.linalg.norm(embedding - np.asarray(reference.medoid)))
    distances = [float(np.linalg.norm(embedding - np.asarray(own))) for own in reference.embeddings]
    nearest = int(np.argmin(distances))
    return ImageScore(
        face_found=True,
        face_score=face.score,
        identity=identity,
        identity_place=reference.place(identity),
        nearest_photo=reference.names[nearest],
        nearest_distance=distances[nearest],
        sharpness=sharpness,
    )


def score_photo(photo: ZipPhoto, reader: FaceReader, reference: Reference | None) -> ImageScore:
    """Read one decoded image's faces and face-crop sharpness (dlib: seconds of CPU)."""
    faces = reader.read_image(photo.image)
    box = face_box(faces[0]) if faces else None
    return score_faces(faces, laplacian_variance(photo.image, box), reference)


# -- per column, paired by seed ------------------------------------------------------------


@dataclass(frozen=True)
class ColumnStats:
    letter: str
    images: int  # scored
    faces: int  # images with a face
    identity_mean: float | None
    identity_spread: float | None  # standard deviation over seeds
    sharpness_mean: float | None
    # Paired with column A by seed: mean of (this - A); None for A itself or no pairs.
    identity_vs_a: float | None
    sharpness_vs_a: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ColumnStats:
        return cls(
            letter=str(raw["letter"]),
            images=int(raw.get("images") or 0),
            faces=int(raw.get("faces") or 0),
            identity_mean=_float(raw.get("identity_mean")),
            identity_spread=_float(raw.get("identity_spread")),
            sharpness_mean=_float(raw.get("sharpness_mean")),
            identity_vs_a=_float(raw.get("identity_vs_a")),
            sharpness_vs_a=_float(raw.get("sharpness_vs_a")),
        )


@dataclass(frozen=True)
class ComparisonStats:
    """A finished comparison's figures as ``ops.comparisons.stats`` keeps them: each
    column's, the repeat of column A's, and the noise floor the repeat shows."""

    noise_floor: float
    columns: tuple[ColumnStats, ...]
    repeat: ColumnStats | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "noise_floor": self.noise_floor,
            "columns": [column.to_json() for column in self.columns],
            "repeat": None if self.repeat is None else self.repeat.to_json(),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ComparisonStats:
        repeat = raw.get("repeat")
        return cls(
            noise_floor=float(raw.get("noise_floor") or 0.0),
            columns=tuple(ColumnStats.from_json(column) for column in raw.get("columns") or ()),
            repeat=None if not repeat else ColumnStats.from_json(repeat),
        )

    def column(self, letter: str) -> ColumnStats | None:
        return next((column for column in self.columns if column.letter == letter), None)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


class Reading(StrEnum):
    """How one column reads against column A: the one rule the verdict's sentences and
    the promotion gate both follow."""

    NO_FACE_EITHER = "no face in either"
    LOSES_LIKENESS = "loses the likeness"  # no face where A has one
    A_LOSES_LIKENESS = "A loses the likeness"  # a face where A has none
    NOTHING_TO_COMPARE = "no seed with a face in both"
    SAME = "no difference beyond noise"
    CLOSER = "closer to the user than A"
    FURTHER = "further from the user than A"


class Tone(StrEnum):
    """What a reading means, for the colour it is shown in: the column read against A,
    and any version that lost the face."""

    WORSE = "worse"  # red
    BETTER = "better"  # green
    NO_DIFFERENCE = "no difference"  # neutral


TONE_OF: Mapping[Reading, Tone] = {
    Reading.NO_FACE_EITHER: Tone.NO_DIFFERENCE,
    Reading.LOSES_LIKENESS: Tone.WORSE,
    # A version without a face is a problem whichever column it is (the gate refuses it too).
    Reading.A_LOSES_LIKENESS: Tone.WORSE,
    Reading.NOTHING_TO_COMPARE: Tone.NO_DIFFERENCE,
    Reading.SAME: Tone.NO_DIFFERENCE,
    Reading.CLOSER: Tone.BETTER,
    Reading.FURTHER: Tone.WORSE,
}


def column_tones(stats: ComparisonStats | None, lines: int) -> tuple[Tone, ...]:
    """The tone of each verdict line (one per column after A, in order), or no difference
    for every line when the stats do not say (pure)."""
    if stats is None or len(stats.columns) - 1 != lines:
        return (Tone.NO_DIFFERENCE,) * lines
    base = stats.columns[0]
    return tuple(
        TONE_OF[read_column(base, column, stats.noise_floor)] for column in stats.columns[1:]
    )


def read_column(base: ColumnStats, column: ColumnStats, floor: float) -> Reading:
    """How ``column`` compares with ``base`` (column A) beyond the noise floor (pure)."""
    if column.faces == 0 and base.faces == 0:
        return Reading.NO_FACE_EITHER
    if column.faces == 0:
        return Reading.LOSES_LIKENESS
    if base.faces == 0:
        return Reading.A_LOSES_LIKENESS
    change = column.identity_vs_a
    if change is None:
        return Reading.NOTHING_TO_COMPARE
    if abs(change) <= floor:
        return Reading.SAME
    return Reading.CLOSER if change < 0 else Reading.FURTHER


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def column_stats(
    letter: str,
    scores: Mapping[int, ImageScore],
    baseline: Mapping[int, ImageScore] | None,
) -> ColumnStats:
    """``scores`` and ``baseline`` (column A's) by seed."""
    identities = [score.identity for score in scores.values() if score.identity is not None]
    sharpness = [score.sharpness for score in scores.values()]
    identity_pairs: list[float] = []
    sharpness_pairs: list[float] = []
    for seed, score in scores.items():
        other = baseline.get(seed) if baseline is not None else None
        if other is None:
            continue
        sharpness_pairs.append(score.sharpness - other.sharpness)
        if score.identity is not None and other.identity is not None:
            identity_pairs.append(score.identity - other.identity)
    return ColumnStats(
        letter=letter,
        images=len(scores),
        faces=sum(1 for score in scores.values() if score.face_found),
        identity_mean=_mean(identities),
        identity_spread=statistics.pstdev(identities) if len(identities) > 1 else None,
        sharpness_mean=_mean(sharpness),
        identity_vs_a=_mean(identity_pairs) if baseline is not None else None,
        sharpness_vs_a=_mean(sharpness_pairs) if baseline is not None else None,
    )


def noise_floor(a: Mapping[int, ImageScore], repeat: Mapping[int, ImageScore]) -> float:
    """The largest identity change a repeat of column A (same version, input and seeds)
    shows, never below ``MIN_NOISE_FLOOR``."""
    changes = []
    for seed, score in repeat.items():
        first = a.get(seed)
        if first is not None and score.identity is not None and first.identity is not None:
            changes.append(abs(score.identity - first.identity))
    return max([MIN_NOISE_FLOOR, *changes])


def verdict(
    names: Mapping[str, str], stats: Sequence[ColumnStats], floor: float
) -> tuple[str, ...]:
    """Plain sentences: each column against A (identity first, then faces), beyond the
    noise floor or not. ``names`` maps a letter to its column's label."""
    if not stats:
        return ("Nothing was scored.",)
    base = stats[0]
    lines: list[str] = []
    for column in stats[1:]:
        label, base_label = names[column.letter], names[base.letter]
        reading = read_column(base, column, floor)
        change = column.identity_vs_a
        if reading is Reading.NO_FACE_EITHER:
            lines.append(f"{label}, like {base_label}, finds no face in any image.")
        elif reading is Reading.LOSES_LIKENESS:
            lines.append(
                f"{label} finds no face in any of its {column.images} images; {base_label} "
                f"finds one in {base.faces}: it loses the likeness."
            )
        elif reading is Reading.A_LOSES_LIKENESS:
            lines.append(
                f"{base_label} finds no face in any image; {label} finds one in "
                f"{column.faces} of {column.images}: {base_label} loses the likeness."
            )
        elif reading is Reading.NOTHING_TO_COMPARE or change is None:
            lines.append(f"{label}: no seed where both columns show a face to compare.")
        elif reading is Reading.SAME:
            lines.append(
                f"{label} and {base_label}: no difference in likeness beyond noise "
                f"({change:+.3f}, noise floor {floor:.3f})."
            )
        else:
            closer = label if reading is Reading.CLOSER else base_label
            further = base_label if reading is Reading.CLOSER else label
            lines.append(
                f"{closer} is closer to the user's photos than {further} by "
                f"{abs(change):.3f}, beyond noise (floor {floor:.3f})."
            )
    return tuple(lines) or (f"{names[base.letter]} alone: nothing to compare it with.",)
