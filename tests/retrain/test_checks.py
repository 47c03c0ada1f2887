"""The retrain wizard's photo checks and dataset gate, on real photos and a real dlib.

Photos are the demo world's selfies (``tests.photos.face_photo``) and canvases made with
Pillow; each is measured once per module (dlib costs about half a second a photo). The
pure rules that need faces no demo photo has (another person: every demo look is the same
astronaut, 0.07-0.25 from one another) are tested with facts built in memory.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageEnhance

from core.drift.codes import threshold
from core.drift.facts import DatasetFacts
from core.imaging import SkippedMember, ZipPhoto, decode_photo
from core.imaging.faces import FaceReader
from core.ledger.photo_facts import measure_photo, photo_check
from core.retrain.checks import (
    GATE_CHECKS,
    RETRAIN_PHOTO_CHECKS,
    CheckResult,
    PhotoFacts,
    PhotoJudgement,
    distances_to_medoid,
    gate,
    gate_limit,
    judge_for_retrain,
    measure_for_retrain,
    photo_limit,
    unreadable,
    worst,
)
from tests.imaging.corpus import with_orientation
from tests.photos import face_photo

pytestmark = pytest.mark.timeout(120)

CHECKS = (
    "resolution",
    "orientation",
    "aspect_ratio",
    "sharpness",
    "exposure",
    "faces",
    "face_size",
    "identity",
    "duplicate",
)
PREVIOUS_TEN = DatasetFacts(image_count=10, median_short_side=1024, photos_failing=0)

Measure = Callable[[str, bytes], PhotoFacts]


# -- photos ----------------------------------------------------------------------------------


def decoded(name: str, payload: bytes) -> ZipPhoto:
    photo = decode_photo(name, io.BytesIO(payload), byte_size=len(payload))
    assert isinstance(photo, ZipPhoto), photo
    return photo


def jpeg(image: Image.Image, quality: int = 92) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def opened(payload: bytes) -> Image.Image:
    return Image.open(io.BytesIO(payload)).convert("RGB")


def landscape() -> bytes:
    """Sky, sun, hills and a lake: a photo without anyone in it."""
    image = Image.new("RGB", (1600, 1200), (120, 170, 230))
    draw = ImageDraw.Draw(image)
    for row in range(600):  # the sky lightens towards the horizon
        shade = 150 + row // 8
        draw.line([(0, row), (1600, row)], fill=(shade - 60, shade - 10, 235))
    draw.ellipse((1200, 120, 1360, 280), fill=(250, 230, 150))
    draw.polygon(
        [(0, 700), (400, 450), (800, 650), (1200, 420), (1600, 700), (1600, 1200), (0, 1200)],
        fill=(60, 120, 50),
    )
    draw.rectangle((0, 950, 1600, 1200), fill=(40, 90, 140))
    return jpeg(image)


def two_faces() -> bytes:
    """Two selfies side by side on one 1280x800 canvas."""
    canvas = Image.new("RGB", (1280, 800))
    canvas.paste(opened(face_photo(0)).resize((640, 800)), (0, 0))
    canvas.paste(opened(face_photo(1, person=2)).resize((640, 800)), (640, 0))
    return jpeg(canvas)


def panorama() -> bytes:
    """A 3300x1050 (3.1:1) strip: a gradient with a selfie in the middle."""
    strip = Image.linear_gradient("L").resize((3300, 1050)).convert("RGB")
    strip.paste(opened(face_photo(2)).resize((840, 1050)), (1230, 0))
    return jpeg(strip)


def small_face(scale: float) -> bytes:
    """A selfie shrunk by ``scale`` on a plain 1280x1600 wall."""
    selfie = opened(face_photo(0))
    wall = Image.new("RGB", (1280, 1600), (90, 110, 130))
    wall.paste(
        selfie.resize((round(selfie.width * scale), round(selfie.height * scale))), (300, 400)
    )
    return jpeg(wall)


def lit(payload: bytes, factor: float) -> bytes:
    return jpeg(ImageEnhance.Brightness(opened(payload)).enhance(factor))


@pytest.fixture(scope="module")
def measure(face_reader: FaceReader) -> Measure:
    """Measures a photo once per module (by name and bytes)."""
    done: dict[tuple[str, bytes], PhotoFacts] = {}

    def measured(name: str, payload: bytes) -> PhotoFacts:
        key = (name, payload)
        if key not in done:
            done[key] = measure_for_retrain(decoded(name, payload), face_reader)
        return done[key]

    return measured


@pytest.fixture(scope="module")
def good(measure: Measure) -> list[PhotoFacts]:
    """Twelve sharp 1280 px selfies of one person, as the app asks for."""
    return [measure(f"good_{index:02d}.jpg", face_photo(index)) for index in range(12)]


@pytest.fixture(scope="module")
def blurry(measure: Measure) -> list[PhotoFacts]:
    return [
        measure(f"blurry_{index:02d}.jpg", face_photo(index, person=1, blur=4.0))
        for index in range(5)
    ]


@pytest.fixture(scope="module")
def squeezed(measure: Measure) -> list[PhotoFacts]:
    """Twelve selfies as the browser squeezed the app's uploads: 600 px, JPEG quality 55."""
    return [
        measure(f"squeezed_{index:02d}.jpg", face_photo(index, long_side=600, jpeg_quality=55))
        for index in range(12)
    ]


def alone(facts: PhotoFacts) -> PhotoJudgement:
    (judgement,) = judge_for_retrain([facts])
    return judgement


def result(judgement: PhotoJudgement, check: str) -> CheckResult:
    (found,) = [r for r in judgement.results if r.check == check]
    return found


# -- facts built in memory -------------------------------------------------------------------


def embedding(*values: float) -> tuple[float, ...]:
    """A 128-d embedding: the given leading values, zeros after."""
    return tuple(values) + (0.0,) * (128 - len(values))


def axis(index: int, length: float) -> tuple[float, ...]:
    """An embedding ``length`` from the origin along axis ``index``."""
    values = [0.0] * 128
    values[index] = length
    return tuple(values)


def built(
    name: str,
    *,
    width: int = 1024,
    height: int = 1280,
    sharpness: float = 300.0,
    luminance: float = 128.0,
    clipped: float = 0.0,
    faces: int = 1,
    fraction: float | None = 0.3,
    face: tuple[float, ...] | None = None,
) -> PhotoFacts:
    """Facts of a good photo unless told otherwise; the hash is random per name, so two
    photos are ~32 bits apart, never near-duplicates by chance."""
    return PhotoFacts(
        name=name,
        width=width,
        height=height,
        short_side=min(width, height),
        sharpness=sharpness,
        mean_luminance=luminance,
        clipped_share=clipped,
        face_count=faces,
        face_score=1.2 if faces else None,
        face_fraction=fraction if faces else None,
        embedding=(face or embedding(0.0)) if faces else None,
        phash=f"{random.Random(name).getrandbits(64):016x}",
    )


def built_set(count: int, *, side: int = 1024) -> list[PhotoFacts]:
    return [built(f"p{index:02d}.jpg", width=side, height=side) for index in range(count)]


# -- the thresholds --------------------------------------------------------------------------


def test_thresholds_agree_with_the_dataset_facts_and_the_drift_engine() -> None:
    assert photo_limit("blurry_below_sharpness") == photo_check("blurry_below_sharpness")
    assert photo_limit("min_face_score") == photo_check("min_face_score")
    assert photo_limit("other_person_distance") == photo_check("other_person_distance")
    assert photo_limit("min_faces_for_identity") == photo_check("min_faces_for_identity")
    assert photo_limit("warn_below_short_side_px") == threshold("min_short_side_px") == 1024
    assert gate_limit("min_usable_photos") == threshold("min_photos") == 10
    assert gate_limit("short_side_drop_fraction") == threshold("short_side_drop_fraction")
    # Each warn band sits on the safe side of its reject cut-off.
    assert photo_limit("reject_below_short_side_px") < photo_limit("warn_below_short_side_px")
    assert photo_limit("blurry_below_sharpness") < photo_limit("soft_below_sharpness")
    assert photo_limit("reject_below_luminance") < photo_limit("warn_below_luminance")
    assert photo_limit("warn_above_clipped_share") < photo_limit("reject_above_clipped_share")
    assert photo_limit("reject_below_face_fraction") < photo_limit("warn_below_face_fraction")
    assert photo_limit("warn_above_person_distance") < photo_limit("other_person_distance")
    assert photo_limit("wide_above_aspect_ratio") < photo_limit("reject_above_aspect_ratio")
    assert gate_limit("max_identity_spread") < photo_limit("other_person_distance")
    for table in (RETRAIN_PHOTO_CHECKS, GATE_CHECKS):
        assert len({row.name for row in table}) == len(table)
        assert all(len(row.help) > 40 for row in table)


def test_worst_verdict() -> None:
    assert worst([]) == "ok"
    assert worst(["ok", "warn", "ok"]) == "warn"
    assert worst(["warn", "reject", "ok"]) == "reject"


# -- single photos, measured -----------------------------------------------------------------


def test_good_sharp_selfies_are_ok_on_every_check(good: list[PhotoFacts]) -> None:
    judgements = judge_for_retrain(good)
    assert [j.name for j in judgements] == [f.name for f in good]
    for judgement in judgements:
        assert [r.check for r in judgement.results] == list(CHECKS)
        assert judgement.verdict == "ok", judgement.reasons
        assert judgement.reasons == ()
        assert judgement.duplicate_of is None
        assert judgement.distance_to_medoid is not None
        assert judgement.distance_to_medoid < photo_limit("warn_above_person_distance")
    first = good[0]
    assert (first.width, first.height, first.short_side) == (1024, 1280, 1024)
    assert first.face_count == 1 and first.face_score is not None
    assert first.embedding is not None and len(first.embedding) == 128
    assert len(first.phash) == 16


@pytest.mark.parametrize(("orientation", "how"), [(6, "on its side"), (8, "on its side")])
def test_a_photo_stored_sideways_is_turned_upright_and_says_so(
    measure: Measure, good: list[PhotoFacts], orientation: int, how: str
) -> None:
    sideways = measure(
        f"sideways_{orientation}.jpg", with_orientation(opened(face_photo(0)), orientation)
    )
    (judgement,) = judge_for_retrain([sideways])
    (upright,) = judge_for_retrain([good[0]])

    # Measured upright: the face is found, and the size is the upright one.
    assert (sideways.width, sideways.height) == (good[0].width, good[0].height) == (1024, 1280)
    assert sideways.face_count == 1 and sideways.orientation == orientation
    assert result(judgement, "orientation") == CheckResult(
        "orientation",
        "ok",
        f"stored {how} (EXIF orientation {orientation}): turned upright for the checks and "
        "the training ZIP",
        said=True,
    )
    assert judgement.reasons[0].startswith(f"stored {how}")  # shown though it is ok
    assert result(upright, "orientation") == CheckResult("orientation", "ok", "stored upright")
    assert good[0].orientation is None and "stored upright" not in upright.reasons


def test_sharpness_is_measured_as_the_dataset_facts_measure_it(face_reader: FaceReader) -> None:
    photo = decoded("p.jpg", face_photo(7))
    ledger = measure_photo(photo, face_reader)
    facts = measure_for_retrain(photo, face_reader)
    assert facts.sharpness == ledger.sharpness
    assert facts.face_count == ledger.face_count == 1
    assert facts.embedding == ledger.embedding
    assert facts.short_side == ledger.short_side


def test_a_blurred_selfie_is_rejected_as_blurry(blurry: list[PhotoFacts]) -> None:
    judgement = alone(blurry[0])
    assert judgement.verdict == "reject"
    sharpness = result(judgement, "sharpness")
    assert sharpness.verdict == "reject"
    assert sharpness.reason.startswith("blurry: the face measures ")
    assert sharpness.reason.endswith(f"under {photo_check('blurry_below_sharpness'):g}")
    assert judgement.reasons == (sharpness.reason,)


def test_a_squeezed_selfie_warns_on_resolution(squeezed: list[PhotoFacts]) -> None:
    judgement = alone(squeezed[0])
    assert squeezed[0].short_side == 480
    assert judgement.verdict == "warn"
    assert judgement.reasons == (
        "lower resolution than the trainer's 1024 px: the short side is 480 px",
    )


def test_a_tiny_selfie_is_rejected_on_resolution(measure: Measure) -> None:
    judgement = alone(measure("tiny.jpg", face_photo(0, long_side=300)))
    assert judgement.verdict == "reject"
    assert result(judgement, "resolution") == CheckResult(
        "resolution", "reject", "too small: the short side is 240 px, under 400 px"
    )


def test_a_dark_selfie_is_rejected_and_a_dim_one_warns(measure: Measure) -> None:
    dark = alone(measure("dark.jpg", lit(face_photo(3), 0.15)))
    exposure = result(dark, "exposure")
    assert exposure.verdict == "reject"
    assert exposure.reason.startswith("too dark: mean brightness ")
    dim = alone(measure("dim.jpg", lit(face_photo(3), 0.5)))
    assert result(dim, "exposure").verdict == "warn"
    assert result(dim, "exposure").reason.startswith("dark: mean brightness ")
    assert result(dim, "faces").verdict == "ok"


def test_a_landscape_without_a_face_is_rejected(measure: Measure) -> None:
    judgement = alone(measure("hills.jpg", landscape()))
    assert judgement.verdict == "reject"
    assert result(judgement, "faces") == CheckResult("faces", "reject", "no face found")
    assert result(judgement, "face_size").reason == "not checked: no face"
    assert result(judgement, "identity").verdict == "ok"
    assert judgement.distance_to_medoid is None


def test_two_faces_side_by_side_are_rejected(measure: Measure) -> None:
    facts = measure("two.jpg", two_faces())
    assert facts.face_count == 2
    judgement = alone(facts)
    assert judgement.verdict == "reject"
    assert result(judgement, "faces").reason == (
        "2 faces: the trainer cannot tell which is the user"
    )


def test_a_reencoded_copy_warns_and_names_the_first(
    measure: Measure, good: list[PhotoFacts]
) -> None:
    copy = measure("copy.jpg", jpeg(opened(face_photo(5)), quality=60))
    judgements = judge_for_retrain([*good, copy])
    original, duplicate = judgements[5], judgements[-1]
    assert original.verdict == "ok" and original.duplicate_of is None
    assert duplicate.duplicate_of == "good_05.jpg"
    assert duplicate.verdict == "warn"
    assert duplicate.reasons == ("near-duplicate of good_05.jpg",)


def test_a_panorama_is_rejected_on_its_shape(measure: Measure) -> None:
    facts = measure("pano.jpg", panorama())
    judgement = alone(facts)
    assert result(judgement, "aspect_ratio") == CheckResult(
        "aspect_ratio", "reject", "a panorama or screenshot: 3.1:1, wider than 3:1"
    )
    assert result(judgement, "faces").verdict == "ok"


def test_a_face_far_away_is_rejected_as_too_small(measure: Measure) -> None:
    facts = measure("far.jpg", small_face(0.25))
    assert facts.face_count == 1 and facts.face_fraction is not None
    judgement = alone(facts)
    assert result(judgement, "face_size").verdict == "reject"
    assert result(judgement, "face_size").reason.startswith("face too small: the face is ")


def test_a_file_that_cannot_be_read_is_rejected() -> None:
    skipped = decode_photo("notes.jpg", io.BytesIO(b"not a photo"), byte_size=11)
    assert isinstance(skipped, SkippedMember)
    judgement = unreadable(skipped.name, skipped.reason)
    assert judgement.verdict == "reject"
    assert judgement.reasons == (f"cannot be read: {skipped.reason}",)


# -- single photos, built --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "check", "verdict", "reason"),
    [
        ({"width": 2600, "height": 1024}, "aspect_ratio", "warn", "an unusually long shape"),
        ({"sharpness": 80.0}, "sharpness", "warn", "soft: the face measures 80, under 100"),
        ({"luminance": 20.0}, "exposure", "reject", "too dark: mean brightness 20"),
        ({"clipped": 0.2}, "exposure", "warn", "too light: 20% of the photo is clipped white"),
        ({"clipped": 0.6}, "exposure", "reject", "blown out: 60% of the photo"),
        ({"fraction": 0.12}, "face_size", "warn", "small face: the face is 12% of the short"),
        ({"fraction": 0.05}, "face_size", "reject", "face too small: the face is 5% of"),
        ({"faces": 0, "sharpness": 30.0}, "sharpness", "reject", "blurry: the photo (no face"),
    ],
)
def test_each_band_gives_its_verdict_and_reason(
    changes: dict[str, Any], check: str, verdict: str, reason: str
) -> None:
    judgement = alone(built("p.jpg", **changes))
    found = result(judgement, check)
    assert found.verdict == verdict
    assert found.reason.startswith(reason)
    assert found.reason in judgement.reasons


def test_another_person_is_rejected_and_a_doubtful_face_warns() -> None:
    photos = [built(f"user_{n}.jpg", face=embedding(0.01 * n)) for n in range(4)]
    photos += [
        built("stranger.jpg", face=embedding(0.7)),
        built("doubtful.jpg", face=embedding(0.55)),
    ]
    judgements = {j.name: j for j in judge_for_retrain(photos)}
    stranger, doubtful = judgements["stranger.jpg"], judgements["doubtful.jpg"]
    assert stranger.verdict == "reject"
    # The medoid is user_2 (0.02): the stranger is 0.68 from it.
    assert result(stranger, "identity").reason.startswith("another person: the face is 0.68")
    assert doubtful.verdict == "warn"
    assert result(doubtful, "identity").reason.startswith("maybe another person")
    assert all(judgements[f"user_{n}.jpg"].verdict == "ok" for n in range(4))


def test_the_medoid_needs_three_photos_showing_exactly_one_face() -> None:
    two_users = [built(f"user_{n}.jpg", face=embedding(0.0)) for n in range(2)]
    stranger = built("stranger.jpg", face=embedding(0.9))
    # Three single faces: the two alike outvote the stranger.
    judged = judge_for_retrain([*two_users, stranger])
    assert judged[-1].verdict == "reject"
    assert result(judged[-1], "identity").reason.startswith("another person")
    # Two single faces and a group photo: no majority, nobody is judged.
    group = built("group.jpg", faces=2, face=embedding(0.9))
    assert distances_to_medoid([*two_users, group]) == (None, None, None)
    judged = judge_for_retrain([*two_users, group])
    assert result(judged[-1], "identity").reason.startswith("not checked")
    assert [j.verdict for j in judged] == ["ok", "ok", "reject"]  # the group: 2 faces


def test_photo_facts_round_trip_through_json(good: list[PhotoFacts], measure: Measure) -> None:
    for facts in (good[0], measure("hills.jpg", landscape())):
        stored = json.dumps(facts.to_dict())
        assert PhotoFacts.from_dict(json.loads(stored)) == facts
    assert PhotoFacts.from_dict(good[0].to_dict()) == good[0]


# -- the gate --------------------------------------------------------------------------------


def passes(facts: Sequence[PhotoFacts], previous: DatasetFacts | None) -> bool:
    return gate(judge_for_retrain(facts), facts, previous).passed


def test_twelve_good_photos_pass_against_ten_before(good: list[PhotoFacts]) -> None:
    outcome = gate(judge_for_retrain(good), good, PREVIOUS_TEN)
    assert outcome.passed
    assert outcome.blocks == ()
    assert outcome.warnings == ()
    figures = outcome.figures
    assert figures["count"] == figures["usable"] == 12
    assert (figures["previous_count"], figures["median_short_side"]) == (10, 1024)
    assert (figures["rejected"], figures["warned"]) == (0, 0)
    assert 0 < figures["identity_spread"] < gate_limit("max_identity_spread")
    json.dumps(figures)


def test_five_blurry_photos_are_blocked(blurry: list[PhotoFacts]) -> None:
    outcome = gate(judge_for_retrain(blurry), blurry, PREVIOUS_TEN)
    assert not outcome.passed
    names = ", ".join(f.name for f in blurry)
    assert outcome.blocks == (
        "Only 0 photos usable: the trainer needs at least 10.",
        "Only 0 photos usable, fewer than the 10 usable photos the previous succeeded "
        "training used.",
        f"5 photos kept though rejected ({names}): drop rejected photos before submitting.",
    )
    assert outcome.figures["rejected"] == 5


def test_fewer_photos_than_the_previous_training_are_blocked(good: list[PhotoFacts]) -> None:
    previous = DatasetFacts(image_count=15, median_short_side=1024)
    outcome = gate(judge_for_retrain(good), good, previous)
    assert not outcome.passed
    assert outcome.blocks == (
        "Only 12 photos usable, fewer than the 15 usable photos the previous succeeded "
        "training used.",
    )


def test_photos_that_failed_last_time_do_not_count_as_before(good: list[PhotoFacts]) -> None:
    # 15 photos last time, 5 of them failing the dataset checks: 10 usable, and 12 now.
    previous = DatasetFacts(image_count=15, median_short_side=1024, photos_failing=5)
    outcome = gate(judge_for_retrain(good), good, previous)
    assert outcome.passed, outcome.blocks
    assert (outcome.figures["previous_count"], outcome.figures["previous_usable"]) == (15, 10)
    assert outcome.figures["usable"] == 12


def test_squeezed_photos_are_blocked_for_the_drop_in_resolution(
    squeezed: list[PhotoFacts],
) -> None:
    outcome = gate(judge_for_retrain(squeezed), squeezed, PREVIOUS_TEN)
    assert not outcome.passed
    assert outcome.blocks == (
        "The median short side is 480 px, down 53% from 1024 px last time (25% or more blocks).",
    )
    assert outcome.figures["warned"] == 12
    assert outcome.warnings == (
        "Warnings on 12 of the 12 photos kept: review them before submitting.",
    )


def test_a_quarter_smaller_blocks_a_fifth_smaller_does_not() -> None:
    photos = built_set(12)  # 1024 px short sides
    assert passes(photos, DatasetFacts(image_count=12, median_short_side=1280))  # 20% down
    assert not passes(photos, DatasetFacts(image_count=12, median_short_side=1366))  # 25.04%
    # Under the trainer's 1024 px where it was not: the drift check will say so.
    smaller = built_set(12, side=900)
    outcome = gate(judge_for_retrain(smaller), smaller, PREVIOUS_TEN)
    assert outcome.passed
    assert any("DATASET_DEGRADED" in warning for warning in outcome.warnings)


def test_an_unknown_previous_dataset_is_not_compared_but_said(good: list[PhotoFacts]) -> None:
    outcome = gate(judge_for_retrain(good[:10]), good[:10], None)
    assert outcome.passed
    assert outcome.warnings == (
        "No previous succeeded training's dataset is known (a first training, or its "
        "photos were never read): the photo count and resolution are not compared.",
    )
    assert outcome.figures["previous_count"] is None
    unread = DatasetFacts(error="the ZIP is gone")
    outcome = gate(judge_for_retrain(good[:10]), good[:10], unread)
    assert outcome.passed
    assert "could not be read (the ZIP is gone)" in outcome.warnings[0]


def test_faces_spread_too_wide_are_blocked_though_each_passes() -> None:
    # One face at the origin, eleven 0.48 from it along their own axes: each within the
    # warn band, but together too varied to be one person.
    photos = [built("centre.jpg", face=axis(0, 0.0))]
    photos += [built(f"p{n:02d}.jpg", face=axis(n, 0.48)) for n in range(1, 12)]
    judgements = judge_for_retrain(photos)
    assert all(j.verdict == "ok" for j in judgements)
    outcome = gate(judgements, photos, PREVIOUS_TEN)
    assert outcome.blocks == (
        "The faces vary too much to be one person: 90% of them are within 0.48 of the "
        "usual face, over the 0.45 allowed.",
    )


def test_a_kept_unreadable_photo_blocks(good: list[PhotoFacts]) -> None:
    judgements = (*judge_for_retrain(good), unreadable("broken.heic", "truncated"))
    outcome = gate(judgements, good, PREVIOUS_TEN)
    assert outcome.blocks == (
        "1 photo kept though rejected (broken.heic): drop rejected photos before submitting.",
    )
    assert outcome.figures["count"] == 13 and outcome.figures["usable"] == 12


def test_facts_without_a_judgement_are_a_mistake(good: list[PhotoFacts]) -> None:
    with pytest.raises(ValueError, match=r"good_11\.jpg"):
        gate(judge_for_retrain(good[:11]), good, PREVIOUS_TEN)
