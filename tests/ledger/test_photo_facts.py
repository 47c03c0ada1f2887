"""The photo checks as pure functions: measures and embeddings built in memory."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.drift.facts import FAILING_REASONS
from core.imaging import jpeg_quality_from_table, libjpeg_luminance_table
from core.imaging.faces import MIN_FACE_SCORE, SAME_PERSON_DISTANCE, Face
from core.ledger.photo_facts import (
    FACE_BOX_MARGIN,
    PHOTO_CHECKS,
    PhotoMeasure,
    face_box,
    facts_from_measures,
    judge_photos,
    medoid_index,
    photo_check,
)


def embedding(*values: float) -> tuple[float, ...]:
    """A 128-d embedding: the given leading values, zeros after."""
    return tuple(values) + (0.0,) * (128 - len(values))


def photo(
    name: str = "p.jpg",
    *,
    sharpness: float = 300.0,
    faces: int = 1,
    face: tuple[float, ...] | None = None,
    side: int = 1024,
    quality: int | None = 90,
) -> PhotoMeasure:
    if faces and face is None:
        face = embedding(0.0)
    return PhotoMeasure(
        name=name,
        short_side=side,
        sharpness=sharpness,
        jpeg_quality=quality,
        face_count=faces,
        embedding=face if faces else None,
    )


def test_thresholds_table_has_help_and_uses_dlibs_distance_and_score() -> None:
    assert {row.name: row.value for row in PHOTO_CHECKS} == {
        "blurry_below_sharpness": 50.0,
        "min_face_score": MIN_FACE_SCORE,
        "other_person_distance": SAME_PERSON_DISTANCE,
        "min_faces_for_identity": 3,
    }
    assert 0.12 < photo_check("min_face_score") < 0.28  # the patch, the weakest demo face
    assert all(row.help for row in PHOTO_CHECKS)
    with pytest.raises(KeyError):
        photo_check("no_such_check")


def test_medoid_is_the_face_closest_to_all_others() -> None:
    points = [embedding(0.0), embedding(0.1), embedding(0.2), embedding(0.0, 5.0)]
    assert medoid_index(points) == 1
    assert medoid_index([]) is None
    assert medoid_index([embedding(1.0)]) == 0


def test_the_majority_decides_who_the_user_is() -> None:
    # Four photos of one person, one of a stranger placed 0.9 away.
    measures = [photo(f"me{n}.jpg", face=embedding(0.05 * n)) for n in range(4)]
    measures.append(photo("stranger.jpg", face=embedding(0.9 + 0.15)))
    verdicts = judge_photos(measures)
    assert [v.failing for v in verdicts] == [(), (), (), (), ("other_person",)]
    assert verdicts[-1].distance_to_medoid == pytest.approx(0.95)
    facts = facts_from_measures(measures)
    assert facts.photos_failing == 1
    assert facts.failing_by_reason["other_person"] == 1


def test_a_face_just_inside_the_threshold_is_the_same_person() -> None:
    limit = photo_check("other_person_distance")
    measures = [
        photo("a", face=embedding(0.0)),
        photo("b", face=embedding(0.0)),
        photo("c", face=embedding(limit - 0.01)),
        photo("d", face=embedding(limit + 0.01)),
    ]
    assert [v.failing for v in judge_photos(measures)] == [(), (), (), ("other_person",)]


def test_two_faces_are_not_enough_to_say_who_the_user_is() -> None:
    measures = [
        photo("a", face=embedding(0.0)),
        photo("b", face=embedding(3.0)),
        photo("c", faces=0),
    ]
    verdicts = judge_photos(measures)
    assert [v.failing for v in verdicts] == [(), (), ("no_face",)]
    assert all(v.distance_to_medoid is None for v in verdicts)


def test_each_check_counts_its_photos_and_a_photo_may_fail_several() -> None:
    measures = [
        photo("sharp"),
        photo("blurry", sharpness=49.9),
        photo("edge", sharpness=50.0),  # at the threshold: not blurry
        photo("group", faces=3),
        photo("blurry-empty", sharpness=10.0, faces=0),
    ]
    facts = facts_from_measures(measures)
    assert facts.image_count == 5
    assert facts.photos_failing == 3
    assert dict(facts.failing_by_reason) == {
        "blurry": 2,
        "no_face": 1,
        "several_faces": 1,
        "other_person": 0,
    }
    assert tuple(facts.failing_by_reason) == FAILING_REASONS


def test_the_blurry_check_reads_the_faces_sharpness_not_the_photos() -> None:
    # A sharp wall behind a blurred face, and a soft background behind a sharp face.
    focused_behind = PhotoMeasure("wall.jpg", 1024, 11.0, 90, 1, embedding(0.0), 1099.0)
    focused_on_face = PhotoMeasure("face.jpg", 1024, 300.0, 90, 1, embedding(0.0), 40.0)
    verdicts = judge_photos([focused_behind, focused_on_face])
    assert [verdict.failing for verdict in verdicts] == [("blurry",), ()]


def test_the_face_box_grows_by_the_margin_on_every_side() -> None:
    face = Face(left=100, top=200, right=300, bottom=400, score=1.0, embedding=())
    grow = round(FACE_BOX_MARGIN * 200)
    assert face_box(face) == (100 - grow, 200 - grow, 300 + grow, 400 + grow)
    assert face_box(face, 0.0) == (100, 200, 300, 400)


def test_medians_and_quality_of_the_jpegs_only() -> None:
    measures = [
        photo("a", side=600, sharpness=100.0, quality=55),
        photo("b", side=1024, sharpness=300.0, quality=None),  # a PNG
        photo("c", side=1200, sharpness=200.0, quality=65),
    ]
    facts = facts_from_measures(measures)
    assert (facts.median_short_side, facts.median_sharpness, facts.jpeg_quality) == (
        1024,
        200.0,
        60,
    )
    assert facts_from_measures([photo(quality=None)]).jpeg_quality is None


def test_no_usable_photo_is_an_error_not_a_tiny_dataset() -> None:
    facts = facts_from_measures([])
    assert facts.error is not None and not facts.readable
    assert facts.image_count is None


@pytest.mark.parametrize("quality", [10, 30, 50, 55, 60, 75, 85, 92, 95])
def test_jpeg_quality_is_read_back_from_the_quantisation_table(quality: int) -> None:
    rng = np.random.default_rng(quality)
    noise = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    out = io.BytesIO()
    noise.save(out, format="JPEG", quality=quality)
    with Image.open(out) as saved:
        table = saved.quantization[0]  # type: ignore[attr-defined]
    assert jpeg_quality_from_table(table) == quality
    assert tuple(table) == libjpeg_luminance_table(quality)


def test_a_camera_table_reads_as_the_nearest_standard_quality() -> None:
    table = [max(1, round(value * 0.9)) for value in libjpeg_luminance_table(80)]
    assert jpeg_quality_from_table(table) in range(80, 84)
    assert jpeg_quality_from_table([1, 2, 3]) is None
