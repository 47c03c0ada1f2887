"""What a training's photos were like: per-photo measures, checks and the dataset's facts.

No I/O: photos come in decoded (``core.imaging.ZipPhoto``), faces are read with the
injected ``FaceReader``, and the verdicts are pure functions of the measures, so the
checks are tested with measures (and embeddings) built in memory. ``PHOTO_CHECKS`` holds
every number a photo check compares with, with its help text, for the UI to render.

Identity: each photo's largest face is compared with the dataset's medoid face (the one
with the smallest total distance to all the others), so the majority decides who the
user is and one stranger cannot pull the reference towards themself.

Sharpness is the face's, not the photo's: a sharp background around a blurred face
measured 1099 on the whole photo and 11 on the face (tests/imaging/test_faces.py). A LoRA
learns the face, so the blurry check reads the largest face's box (grown by
``FACE_BOX_MARGIN`` to take in the jaw and hairline); a photo without a face falls back
to the whole photo.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from core.drift.codes import Threshold
from core.drift.facts import FAILING_REASONS, DatasetFacts
from core.imaging import ZipPhoto
from core.imaging.faces import MIN_FACE_SCORE, SAME_PERSON_DISTANCE, FaceReader
from core.imaging.measure import FACE_BOX_MARGIN, PhotoFacts, face_box
from core.imaging.measure import measure as measure_once

# The face box and its margin are the one measure's; named here for the dataset checks.
__all__ = ["FACE_BOX_MARGIN", "PHOTO_CHECKS", "PhotoMeasure", "PhotoVerdict", "face_box"]


PHOTO_CHECKS: tuple[Threshold, ...] = (
    Threshold(
        "blurry_below_sharpness",
        50.0,
        "A photo is blurry when the variance of the Laplacian of its largest face (the "
        "face box grown by a tenth each side; the whole photo when no face is found), "
        "grayscale at the photo's 512 px short side, is under this: sharp selfies' faces "
        "measure 160 or more, a 4 px blur under 35.",
    ),
    Threshold(
        "min_face_score",
        MIN_FACE_SCORE,
        "A detection counts as a face only when dlib's detector scores it at least this: "
        "the demo's faces score 0.28 (blurred) to 1.8, the astronaut's mission patch "
        "0.12, which dlib's own cut-off (0) counted as a second face.",
    ),
    Threshold(
        "other_person_distance",
        SAME_PERSON_DISTANCE,
        "A photo shows another person when its largest face's dlib embedding is farther "
        "than this from the dataset's medoid face (dlib's same-person threshold).",
    ),
    Threshold(
        "min_faces_for_identity",
        3,
        "The other-person check runs only when at least this many photos show a face: "
        "with fewer there is no majority to say who the user is.",
    ),
)
_PHOTO_CHECKS_BY_NAME: Mapping[str, float] = MappingProxyType(
    {row.name: row.value for row in PHOTO_CHECKS}
)


def photo_check(name: str) -> float:
    """The value of the photo check threshold ``name``; ``KeyError`` for an unknown name."""
    return _PHOTO_CHECKS_BY_NAME[name]


@dataclass(frozen=True)
class PhotoMeasure:
    """What was measured on one photo; ``embedding`` is its largest face's (None: no face).

    ``sharpness`` is what the blurry check reads: the largest face's, or the whole
    photo's when there is no face; ``photo_sharpness`` is always the whole photo's (None
    when not measured).
    """

    name: str
    short_side: int
    sharpness: float
    jpeg_quality: int | None
    face_count: int
    embedding: tuple[float, ...] | None = None
    photo_sharpness: float | None = None


@dataclass(frozen=True)
class PhotoVerdict:
    """One photo's measures and the checks it fails (names from ``FAILING_REASONS``)."""

    measure: PhotoMeasure
    failing: tuple[str, ...]
    distance_to_medoid: float | None


def measure_photo(photo: ZipPhoto, reader: FaceReader) -> PhotoMeasure:
    """Size, sharpness (the largest face's), JPEG quality and faces of one decoded photo:
    the one measure (``core.imaging.measure``), as the dataset checks read it."""
    return measure_of(measure_once(photo, reader))


def measure_of(facts: PhotoFacts) -> PhotoMeasure:
    """What the dataset checks read of a photo's facts (pure)."""
    return PhotoMeasure(
        name=facts.name,
        short_side=facts.short_side,
        sharpness=facts.sharpness,
        jpeg_quality=facts.jpeg_quality,
        face_count=facts.face_count,
        embedding=facts.embedding,
        photo_sharpness=facts.photo_sharpness,
    )


def medoid_index(embeddings: Sequence[Sequence[float]]) -> int | None:
    """Index of the embedding with the smallest summed distance to the others (first on
    ties); None when there are none."""
    if not embeddings:
        return None
    points = np.asarray(embeddings, dtype=np.float64)
    distances = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    return int(np.argmin(distances.sum(axis=1)))


def judge_photos(measures: Sequence[PhotoMeasure]) -> tuple[PhotoVerdict, ...]:
    """Every photo's failing checks: blurry, no face, several faces, another person."""
    with_face = [index for index, measure in enumerate(measures) if measure.embedding]
    medoid: np.ndarray | None = None
    if len(with_face) >= photo_check("min_faces_for_identity"):
        chosen = medoid_index([measures[index].embedding or () for index in with_face])
        medoid = None if chosen is None else np.asarray(measures[with_face[chosen]].embedding)
    verdicts = []
    for measure in measures:
        failing = []
        if measure.sharpness < photo_check("blurry_below_sharpness"):
            failing.append("blurry")
        if measure.face_count == 0:
            failing.append("no_face")
        elif measure.face_count > 1:
            failing.append("several_faces")
        distance = None
        if medoid is not None and measure.embedding:
            distance = float(np.linalg.norm(np.asarray(measure.embedding) - medoid))
            if distance > photo_check("other_person_distance"):
                failing.append("other_person")
        verdicts.append(PhotoVerdict(measure, tuple(failing), distance))
    return tuple(verdicts)


def facts_from_verdicts(verdicts: Sequence[PhotoVerdict]) -> DatasetFacts:
    """The dataset's facts; a dataset without a single usable photo is an error."""
    if not verdicts:
        return DatasetFacts(error="the ZIP holds no usable photos (JPEG, PNG, WEBP or HEIC)")
    measures = [verdict.measure for verdict in verdicts]
    qualities = [m.jpeg_quality for m in measures if m.jpeg_quality is not None]
    return DatasetFacts(
        image_count=len(measures),
        median_short_side=round(statistics.median(m.short_side for m in measures)),
        jpeg_quality=round(statistics.median(qualities)) if qualities else None,
        median_sharpness=round(float(statistics.median(m.sharpness for m in measures)), 1),
        photos_failing=sum(1 for verdict in verdicts if verdict.failing),
        failing_by_reason={
            reason: sum(1 for verdict in verdicts if reason in verdict.failing)
            for reason in FAILING_REASONS
        },
    )


def facts_from_measures(measures: Sequence[PhotoMeasure]) -> DatasetFacts:
    """The dataset's facts from measures alone (pure)."""
    return facts_from_verdicts(judge_photos(measures))


def facts_from_photos(photos: Iterable[ZipPhoto], reader: FaceReader) -> DatasetFacts:
    """The dataset's facts from decoded photos, read one at a time."""
    return facts_from_measures([measure_photo(photo, reader) for photo in photos])
