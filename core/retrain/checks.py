"""The retrain wizard's per-photo checks and the dataset gate: pure verdicts over measures.

An admin builds a retrain dataset from the user's previous training photos and uploads.
Each photo is measured once (``measure_for_retrain``: dlib and Pillow, seconds of CPU) into
``PhotoFacts``, plain values that are stored as JSON so a page reload never measures again.
Everything after that is pure: ``judge_for_retrain`` turns the facts of the whole set into
one ``PhotoJudgement`` per photo (each check an ``ok`` / ``warn`` / ``reject`` verdict with
its reason in one plain sentence), and ``gate`` says whether the photos the admin kept may
be submitted, comparing them with the previous succeeded training's ``DatasetFacts``.

Every number a check compares with is a row of ``RETRAIN_PHOTO_CHECKS`` or ``GATE_CHECKS``
with its help text, for the UI to render. Where a check measures what the dataset facts
(``core.ledger.photo_facts``) or the drift engine (``core.drift.codes``) already measure,
the row takes their value rather than a copy: a photo the wizard lets through must not be
counted as failing by the ledger, and a dataset the gate passes must not raise
``DATASET_SHRANK`` or ``DATASET_DEGRADED`` by the same measure.

Checks that need the whole set (who the user is, near-duplicates) read it through the
facts: identity is the distance to the medoid face of the photos showing exactly one face,
as the ledger reads it, so the majority decides who the user is.

Why one long module: every check's threshold row (with its help text, which the page
renders), its measure and its verdict sit together, so a threshold can never drift from the
sentence that explains it; about a third are threshold rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Literal

import imagehash
import numpy as np

from core.drift.codes import Threshold, threshold
from core.drift.facts import DatasetFacts
from core.faces import FaceReader
from core.imaging import ZipPhoto, laplacian_variance
from core.ledger.photo_facts import face_box, medoid_index, photo_check

Verdict = Literal["ok", "warn", "reject"]
_VERDICT_RANK: Mapping[Verdict, int] = MappingProxyType({"ok": 0, "warn": 1, "reject": 2})

# Calibration below was measured on the demo's selfies (core.demo.photos.face_photo: 5 looks
# x 6 shots, each sharp at 1280 px, blurred by 4 px, and squeezed to 600 px at JPEG
# quality 55), darkened and brightened with Pillow's ImageEnhance.Brightness.
RETRAIN_PHOTO_CHECKS: tuple[Threshold, ...] = (
    Threshold(
        "warn_below_short_side_px",
        threshold("min_short_side_px"),
        "A photo whose short side is under this many px warns: lower resolution than the "
        "trainer's 1024 px, so it is upscaled and the LoRA learns a softer face (the drift "
        "engine's min_short_side_px).",
    ),
    Threshold(
        "reject_below_short_side_px",
        400,
        "A photo whose short side is under this many px is rejected: the trainer would "
        "upscale it more than 2.5 times. The app's browser-squeezed uploads (600 px long, "
        "480 px short for a 4:5 portrait) stay above it and only warn.",
    ),
    Threshold(
        "wide_above_aspect_ratio",
        2.0,
        "A photo whose long side is more than this many times its short side warns: "
        "phone photos are at most 16:9 (1.78); the trainer crops the rest away.",
    ),
    Threshold(
        "reject_above_aspect_ratio",
        3.0,
        "A photo whose long side is more than this many times its short side is rejected: "
        "a panorama or a screenshot, where the face is a sliver of what is trained.",
    ),
    Threshold(
        "blurry_below_sharpness",
        photo_check("blurry_below_sharpness"),
        "A photo is rejected as blurry when its largest face (the box grown by a tenth each "
        "side; the whole photo without a face) measures under this Laplacian variance: the "
        "dataset facts' own cut-off. Sharp demo faces measured 109-890, 4 px blurs 10-31.",
    ),
    Threshold(
        "soft_below_sharpness",
        100.0,
        "A face that is not blurry but measures under this warns as soft: every sharp demo "
        "face measured 109 or more, a 1.5 px blur 66-363 and a 2 px blur 45-223.",
    ),
    Threshold(
        "reject_below_luminance",
        25.0,
        "A photo whose mean grayscale brightness (0-255) is under this is rejected as too "
        "dark: demo selfies measured 112-153, darkened to 0.25 of their light 29-37, to "
        "0.15 17-22 (their faces then measure as blurry too).",
    ),
    Threshold(
        "warn_below_luminance",
        75.0,
        "A photo whose mean grayscale brightness is under this warns as dark: darkened to "
        "0.5 of their light demo selfies measured 59-74, to 0.7 82-103.",
    ),
    Threshold(
        "clipped_level",
        250,
        "A grayscale pixel at this level or brighter counts as clipped (blown-out white); "
        "JPEG noise keeps pure white from reading exactly 255.",
    ),
    Threshold(
        "warn_above_clipped_share",
        0.1,
        "A photo with more than this share of clipped pixels warns as too light: demo "
        "selfies had at most 0.014, brightened 1.4 times 0.05-0.40. Dark pixels are not "
        "counted the same way: a dark backdrop is common (5-12% of the demo's pixels).",
    ),
    Threshold(
        "reject_above_clipped_share",
        0.5,
        "A photo with more than this share of clipped pixels is rejected as blown out: "
        "brightened 2 times demo selfies had 0.42-0.55, 3 times 0.51-0.65, where dlib "
        "no longer finds the face.",
    ),
    Threshold(
        "min_face_score",
        photo_check("min_face_score"),
        "Only detections dlib scores at least this count as faces (the dataset facts' own "
        "threshold); a photo must show exactly one: none is rejected (nothing to learn), "
        "several are rejected (the trainer cannot tell which is the user).",
    ),
    Threshold(
        "reject_below_face_fraction",
        0.08,
        "A photo whose largest face is narrower than this share of its short side is "
        "rejected: at the trainer's 1024 px the face is under 80 px wide. dlib finds "
        "faces down to about 0.056 of the short side.",
    ),
    Threshold(
        "warn_below_face_fraction",
        0.15,
        "A photo whose largest face is narrower than this share of its short side warns: "
        "the LoRA learns more background than face. Demo selfies measured 0.19-0.42.",
    ),
    Threshold(
        "other_person_distance",
        photo_check("other_person_distance"),
        "A photo is rejected as another person when its largest face's embedding is farther "
        "than this from the dataset's medoid face (dlib's same-person threshold, as the "
        "dataset facts read it).",
    ),
    Threshold(
        "warn_above_person_distance",
        0.5,
        "A face farther than this from the medoid (but within the same-person distance) "
        "warns: dlib is unsure near 0.6. Demo faces of one person measured at most 0.26 "
        "from their medoid, and 0.36 across all looks, blurs and squeezes mixed.",
    ),
    Threshold(
        "min_faces_for_identity",
        photo_check("min_faces_for_identity"),
        "The other-person check runs only when at least this many photos show exactly one "
        "face: with fewer there is no majority to say who the user is.",
    ),
    Threshold(
        "near_duplicate_max_bits",
        4,
        "A photo whose perceptual hash (imagehash.phash, 64 bits) differs from an earlier "
        "photo's in at most this many bits warns as a near-duplicate of it: re-encoded or "
        "resized copies differed in 0-2 bits, a 5% crop or 2 degree turn in 4-8, distinct "
        "demo shots of one look in 8 or more (99% in 14 or more).",
    ),
)
_PHOTO_LIMITS: Mapping[str, float] = MappingProxyType(
    {row.name: row.value for row in RETRAIN_PHOTO_CHECKS}
)

GATE_CHECKS: tuple[Threshold, ...] = (
    Threshold(
        "min_usable_photos",
        threshold("min_photos"),
        "The gate blocks a dataset with fewer usable (not rejected) photos than this: the "
        "app asks for 10-20 selfies (the drift engine's min_photos).",
    ),
    Threshold(
        "min_previous_share",
        1.0,
        "The gate blocks a dataset with fewer usable photos than this share of the previous "
        "succeeded training's photo count: a retrain must not learn from less.",
    ),
    Threshold(
        "short_side_drop_fraction",
        threshold("short_side_drop_fraction"),
        "The gate blocks a dataset whose median short side dropped by at least this "
        "fraction from the previous succeeded training's (DATASET_DEGRADED's own figure).",
    ),
    Threshold(
        "identity_spread_percentile",
        90,
        "The identity spread is this percentile of the kept photos' distances to their "
        "medoid face, so one odd photo does not decide it (the per-photo check does).",
    ),
    Threshold(
        "max_identity_spread",
        0.45,
        "The gate blocks a dataset whose identity spread is over this: the faces vary too "
        "much to be one person. Demo photos of one look measured 0.24-0.26, all looks, "
        "blurs and squeezes mixed 0.28; dlib's same-person limit is 0.6.",
    ),
    Threshold(
        "many_warned_fraction",
        0.25,
        "The gate warns when at least this share of the kept photos carry a warning.",
    ),
)
_GATE_LIMITS: Mapping[str, float] = MappingProxyType({row.name: row.value for row in GATE_CHECKS})


def photo_limit(name: str) -> float:
    """The value of the retrain photo check threshold ``name``; ``KeyError`` if unknown."""
    return _PHOTO_LIMITS[name]


def gate_limit(name: str) -> float:
    """The value of the gate threshold ``name``; ``KeyError`` if unknown."""
    return _GATE_LIMITS[name]


@dataclass(frozen=True)
class PhotoFacts:
    """What was measured on one photo, in plain values (stored as JSON).

    ``width``/``height``/``short_side`` are the photo's own upright size. ``sharpness`` is
    the ledger's measure (the largest face's, else the whole photo's). ``mean_luminance``
    is the grayscale mean (0-255) and ``clipped_share`` the share of pixels at
    ``clipped_level`` or brighter. ``face_score``, ``face_fraction`` (width over the short
    side) and ``embedding`` are the largest face's, None without a face. ``phash`` is the
    64-bit perceptual hash in hex. ``orientation`` is the EXIF orientation applied to make
    the photo upright (None: stored upright; facts stored before it was kept read None).
    """

    name: str
    width: int
    height: int
    short_side: int
    sharpness: float
    mean_luminance: float
    clipped_share: float
    face_count: int
    face_score: float | None
    face_fraction: float | None
    embedding: tuple[float, ...] | None
    phash: str
    orientation: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The facts as JSON-safe plain values (the embedding as a list)."""
        values = asdict(self)
        values["embedding"] = list(self.embedding) if self.embedding is not None else None
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PhotoFacts:
        """The facts ``to_dict`` gave (after a JSON round trip too)."""
        embedding = values["embedding"]
        score, fraction = values["face_score"], values["face_fraction"]
        return cls(
            name=str(values["name"]),
            width=int(values["width"]),
            height=int(values["height"]),
            short_side=int(values["short_side"]),
            sharpness=float(values["sharpness"]),
            mean_luminance=float(values["mean_luminance"]),
            clipped_share=float(values["clipped_share"]),
            face_count=int(values["face_count"]),
            face_score=None if score is None else float(score),
            face_fraction=None if fraction is None else float(fraction),
            embedding=None if embedding is None else tuple(float(v) for v in embedding),
            phash=str(values["phash"]),
            orientation=None if values.get("orientation") is None else int(values["orientation"]),
        )


@dataclass(frozen=True)
class CheckResult:
    """One check of one photo: its verdict and why, in one plain sentence. ``said`` marks
    an ok result worth showing anyway (the console changed the photo: turned it upright)."""

    check: str
    verdict: Verdict
    reason: str
    said: bool = False


@dataclass(frozen=True)
class PhotoJudgement:
    """Every check of one photo; ``verdict`` is the worst of them.

    ``distance_to_medoid`` is the largest face's distance to the set's medoid face (None
    when the identity check could not run); ``duplicate_of`` names the earlier photo this
    one nearly duplicates.
    """

    name: str
    verdict: Verdict
    results: tuple[CheckResult, ...]
    distance_to_medoid: float | None = None
    duplicate_of: str | None = None

    @property
    def reasons(self) -> tuple[str, ...]:
        """The reasons of the checks that are not ok, and what was done to the photo, in
        check order."""
        return tuple(
            result.reason for result in self.results if result.verdict != "ok" or result.said
        )


@dataclass(frozen=True)
class GateResult:
    """Whether the kept photos may be submitted: ``blocks`` say why not, ``warnings`` what
    to look at anyway (each one plain sentence); ``figures`` are JSON-safe."""

    passed: bool
    blocks: tuple[str, ...]
    warnings: tuple[str, ...]
    figures: dict[str, Any]


# -- measuring -----------------------------------------------------------------------------


def measure_for_retrain(photo: ZipPhoto, reader: FaceReader) -> PhotoFacts:
    """Size, sharpness, exposure, faces and perceptual hash of one decoded photo.

    Faces are read once, at the dataset facts' score threshold; sharpness is measured as
    ``measure_photo`` measures it (its face box, its Laplacian) so the two agree.
    """
    faces = reader.read_image(photo.image, min_score=photo_check("min_face_score"))
    largest = faces[0] if faces else None
    gray = np.asarray(photo.image.convert("L"))
    width, height = photo.size
    return PhotoFacts(
        name=photo.name,
        width=width,
        height=height,
        short_side=min(width, height),
        sharpness=laplacian_variance(photo.image, face_box(largest) if largest else None),
        mean_luminance=float(gray.mean()),
        clipped_share=float((gray >= photo_limit("clipped_level")).mean()),
        face_count=len(faces),
        face_score=largest.score if largest else None,
        # The face box is in the working copy's pixels, so is the short side it is over.
        face_fraction=largest.width / min(photo.image.size) if largest else None,
        embedding=largest.embedding if largest else None,
        phash=str(imagehash.phash(photo.image)),
        orientation=photo.orientation,
    )


# -- judging one photo ---------------------------------------------------------------------


def unreadable(name: str, reason: str) -> PhotoJudgement:
    """The judgement of a file that could not be decoded: rejected, with the decoder's why."""
    result = CheckResult("readable", "reject", f"cannot be read: {reason}")
    return PhotoJudgement(name, "reject", (result,))


def worst(verdicts: Sequence[Verdict]) -> Verdict:
    """The most serious verdict (``ok`` for none)."""
    return max(verdicts, key=_VERDICT_RANK.__getitem__, default="ok")


def judge_resolution(facts: PhotoFacts) -> CheckResult:
    """The short side against the trainer's 1024 px and the very-small floor."""
    side = facts.short_side
    floor = photo_limit("reject_below_short_side_px")
    trainer = photo_limit("warn_below_short_side_px")
    if side < floor:
        return CheckResult(
            "resolution", "reject", f"too small: the short side is {side} px, under {floor:g} px"
        )
    if side < trainer:
        return CheckResult(
            "resolution",
            "warn",
            f"lower resolution than the trainer's {trainer:g} px: the short side is {side} px",
        )
    return CheckResult("resolution", "ok", f"the short side is {side} px")


# How a photo with each EXIF orientation was stored (as the camera held it).
_STORED_HOW = {
    2: "mirrored",
    3: "upside down",
    4: "upside down and mirrored",
    5: "on its side and mirrored",
    6: "on its side",
    7: "on its side and mirrored",
    8: "on its side",
}


def judge_orientation(facts: PhotoFacts) -> CheckResult:
    """Whether the photo was stored turned (EXIF orientation): it is checked and packaged
    upright either way, but the admin should know which photos the console turned."""
    if facts.orientation is None:
        return CheckResult("orientation", "ok", "stored upright")
    how = _STORED_HOW.get(facts.orientation, "turned")
    return CheckResult(
        "orientation",
        "ok",
        f"stored {how} (EXIF orientation {facts.orientation}): turned upright for the checks "
        "and the training ZIP",
        said=True,
    )


def judge_aspect_ratio(facts: PhotoFacts) -> CheckResult:
    """Long side over short side: panoramas and screenshots."""
    ratio = max(facts.width, facts.height) / max(1, min(facts.width, facts.height))
    shape = f"{ratio:.1f}:1"
    if ratio > photo_limit("reject_above_aspect_ratio"):
        limit = photo_limit("reject_above_aspect_ratio")
        return CheckResult(
            "aspect_ratio",
            "reject",
            f"a panorama or screenshot: {shape}, wider than {limit:g}:1",
        )
    if ratio > photo_limit("wide_above_aspect_ratio"):
        limit = photo_limit("wide_above_aspect_ratio")
        return CheckResult(
            "aspect_ratio",
            "warn",
            f"an unusually long shape: {shape}, wider than {limit:g}:1; the trainer crops it",
        )
    return CheckResult("aspect_ratio", "ok", f"the shape is {shape}")


def judge_sharpness(facts: PhotoFacts) -> CheckResult:
    """The face's sharpness (the photo's without a face), as the dataset facts judge it."""
    what = "the face" if facts.face_count else "the photo (no face found)"
    figure = f"{what} measures {facts.sharpness:.0f}"
    if facts.sharpness < photo_limit("blurry_below_sharpness"):
        limit = photo_limit("blurry_below_sharpness")
        return CheckResult("sharpness", "reject", f"blurry: {figure}, under {limit:g}")
    if facts.sharpness < photo_limit("soft_below_sharpness"):
        limit = photo_limit("soft_below_sharpness")
        return CheckResult("sharpness", "warn", f"soft: {figure}, under {limit:g}")
    return CheckResult("sharpness", "ok", f"sharp: {figure}")


def judge_exposure(facts: PhotoFacts) -> CheckResult:
    """Too dark by mean brightness, too light by blown-out pixels; the worse first."""
    mean, clipped = facts.mean_luminance, facts.clipped_share
    if mean < photo_limit("reject_below_luminance"):
        limit = photo_limit("reject_below_luminance")
        return CheckResult(
            "exposure", "reject", f"too dark: mean brightness {mean:.0f} of 255, under {limit:g}"
        )
    if clipped > photo_limit("reject_above_clipped_share"):
        limit = photo_limit("reject_above_clipped_share")
        return CheckResult(
            "exposure",
            "reject",
            f"blown out: {clipped:.0%} of the photo is clipped white, over {limit:.0%}",
        )
    if mean < photo_limit("warn_below_luminance"):
        limit = photo_limit("warn_below_luminance")
        return CheckResult(
            "exposure", "warn", f"dark: mean brightness {mean:.0f} of 255, under {limit:g}"
        )
    if clipped > photo_limit("warn_above_clipped_share"):
        limit = photo_limit("warn_above_clipped_share")
        return CheckResult(
            "exposure",
            "warn",
            f"too light: {clipped:.0%} of the photo is clipped white, over {limit:.0%}",
        )
    return CheckResult(
        "exposure", "ok", f"mean brightness {mean:.0f} of 255, {clipped:.0%} clipped white"
    )


def judge_faces(facts: PhotoFacts) -> CheckResult:
    """Exactly one face over the detector's threshold."""
    count = facts.face_count
    if count == 0:
        return CheckResult("faces", "reject", "no face found")
    if count > 1:
        return CheckResult(
            "faces", "reject", f"{count} faces: the trainer cannot tell which is the user"
        )
    return CheckResult("faces", "ok", "one face")


def judge_face_size(facts: PhotoFacts) -> CheckResult:
    """The largest face's width as a share of the photo's short side."""
    fraction = facts.face_fraction
    if fraction is None:
        return CheckResult("face_size", "ok", "not checked: no face")
    figure = f"the face is {fraction:.0%} of the short side"
    if fraction < photo_limit("reject_below_face_fraction"):
        limit = photo_limit("reject_below_face_fraction")
        return CheckResult("face_size", "reject", f"face too small: {figure}, under {limit:.0%}")
    if fraction < photo_limit("warn_below_face_fraction"):
        limit = photo_limit("warn_below_face_fraction")
        return CheckResult("face_size", "warn", f"small face: {figure}, under {limit:.0%}")
    return CheckResult("face_size", "ok", figure)


def judge_identity(distance: float | None) -> CheckResult:
    """The largest face's distance to the set's medoid face (None: not checked)."""
    if distance is None:
        needed = photo_limit("min_faces_for_identity")
        return CheckResult(
            "identity",
            "ok",
            f"not checked: no face, or fewer than {needed:g} photos show exactly one face",
        )
    figure = f"the face is {distance:.2f} from the dataset's usual face"
    if distance > photo_limit("other_person_distance"):
        limit = photo_limit("other_person_distance")
        return CheckResult(
            "identity",
            "reject",
            f"another person: {figure}, over dlib's same-person limit of {limit:g}",
        )
    if distance > photo_limit("warn_above_person_distance"):
        limit = photo_limit("warn_above_person_distance")
        return CheckResult(
            "identity", "warn", f"maybe another person: {figure}, over {limit:g}; check it"
        )
    return CheckResult("identity", "ok", f"the same person: {figure}")


def judge_duplicate(duplicate_of: str | None) -> CheckResult:
    """Whether an earlier photo of the set looks the same."""
    if duplicate_of is None:
        return CheckResult("duplicate", "ok", "no earlier photo looks the same")
    return CheckResult("duplicate", "warn", f"near-duplicate of {duplicate_of}")


# -- judging the set -----------------------------------------------------------------------


def distances_to_medoid(facts: Sequence[PhotoFacts]) -> tuple[float | None, ...]:
    """Each photo's largest face's distance to the medoid of the faces of the photos that
    show exactly one face (a group photo does not vote on who the user is); all None when
    fewer than ``min_faces_for_identity`` photos show exactly one face."""
    voters = [f.embedding for f in facts if f.face_count == 1 and f.embedding is not None]
    chosen = medoid_index(voters)
    if len(voters) < photo_limit("min_faces_for_identity") or chosen is None:
        return tuple(None for _ in facts)
    medoid = np.asarray(voters[chosen], dtype=np.float64)
    return tuple(
        None
        if f.embedding is None
        else float(np.linalg.norm(np.asarray(f.embedding, dtype=np.float64) - medoid))
        for f in facts
    )


def phash_bits_apart(one: str, other: str) -> int:
    """How many bits two hex perceptual hashes differ in."""
    return (int(one, 16) ^ int(other, 16)).bit_count()


def earlier_near_duplicates(facts: Sequence[PhotoFacts]) -> tuple[str | None, ...]:
    """For each photo, the name of the first earlier photo it nearly duplicates, or None:
    the first of a pair is kept unflagged, so dropping every flagged photo keeps one."""
    most = photo_limit("near_duplicate_max_bits")
    return tuple(
        next(
            (
                earlier.name
                for earlier in facts[:index]
                if phash_bits_apart(earlier.phash, photo.phash) <= most
            ),
            None,
        )
        for index, photo in enumerate(facts)
    )


def judge_for_retrain(facts: Sequence[PhotoFacts]) -> tuple[PhotoJudgement, ...]:
    """Every photo's checks, in the order given; identity and near-duplicates are judged
    against the other photos of ``facts``, so judge the set that will be submitted."""
    judgements = []
    for photo, distance, duplicate_of in zip(
        facts, distances_to_medoid(facts), earlier_near_duplicates(facts), strict=True
    ):
        results = (
            judge_resolution(photo),
            judge_orientation(photo),
            judge_aspect_ratio(photo),
            judge_sharpness(photo),
            judge_exposure(photo),
            judge_faces(photo),
            judge_face_size(photo),
            judge_identity(distance),
            judge_duplicate(duplicate_of),
        )
        verdict = worst([result.verdict for result in results])
        judgements.append(PhotoJudgement(photo.name, verdict, results, distance, duplicate_of))
    return tuple(judgements)


# -- the dataset gate ----------------------------------------------------------------------


def identity_spread(facts: Sequence[PhotoFacts]) -> float | None:
    """The ``identity_spread_percentile`` of the single-face photos' distances to their
    medoid (recomputed over ``facts``, the kept photos); None when it cannot be told."""
    single = [f for f in facts if f.face_count == 1]
    distances = [d for d in distances_to_medoid(single) if d is not None]
    if not distances:
        return None
    return float(np.percentile(distances, gate_limit("identity_spread_percentile")))


def _photos(count: int) -> str:
    return f"{count} photo" if count == 1 else f"{count} photos"


def _drop(before: float, after: float) -> float:
    # As the drift engine measures a drop (core.drift.history_checks), so both agree.
    return (before - after) / before if before > 0 else 0.0


def usable_before(previous: DatasetFacts | None) -> int | None:
    """How many usable photos the previous training had: usable against usable, because
    dropping the blurry photos a bad retrain used is the point, so photos that failed the
    dataset checks last time do not count as "before" (None: not known)."""
    if previous is None or not previous.readable or previous.image_count is None:
        return None
    if previous.photos_failing is None:
        return previous.image_count
    return max(0, previous.image_count - previous.photos_failing)


def _previous_comparisons(
    usable: int, median_side: int | None, previous: DatasetFacts | None
) -> tuple[list[str], list[str]]:
    """Blocks and warnings from comparing the kept photos with the previous dataset."""
    if previous is None:
        return [], [
            "No previous succeeded training's dataset is known (a first training, or its "
            "photos were never read): the photo count and resolution are not compared."
        ]
    if not previous.readable:
        return [], [
            f"The previous training's photos could not be read ({previous.error}): the "
            "photo count and resolution are not compared."
        ]
    blocks: list[str] = []
    warnings: list[str] = []
    before_count = usable_before(previous)
    if before_count is None:
        warnings.append("The previous training's photo count is unknown: not compared.")
    elif usable < gate_limit("min_previous_share") * before_count:
        blocks.append(
            f"Only {_photos(usable)} usable, fewer than the {before_count} usable photos the "
            "previous succeeded training used."
        )
    before_side = previous.median_short_side
    if before_side is None or median_side is None:
        warnings.append("The median short side cannot be compared with the previous one.")
        return blocks, warnings
    drop = _drop(before_side, median_side)
    limit = gate_limit("short_side_drop_fraction")
    trainer = photo_limit("warn_below_short_side_px")
    if drop >= limit:
        blocks.append(
            f"The median short side is {median_side} px, down {drop:.0%} from "
            f"{before_side} px last time ({limit:.0%} or more blocks)."
        )
    elif median_side < trainer <= before_side:
        warnings.append(
            f"The median short side is {median_side} px, under the trainer's {trainer:g} px "
            f"where it was {before_side} px: the drift check will report DATASET_DEGRADED."
        )
    return blocks, warnings


def gate(
    judgements: Sequence[PhotoJudgement],
    facts: Sequence[PhotoFacts],
    previous: DatasetFacts | None,
) -> GateResult:
    """Whether the kept photos may be submitted for retraining.

    ``judgements`` are the kept photos' (unreadable ones included), ``facts`` the kept
    photos' that could be read; ``previous`` is the previous succeeded training's dataset
    (None when there is none or it is unknown: the comparisons are skipped, with a
    warning). Overrides are not known here: this says passed or not, and why.
    """
    judged = {judgement.name for judgement in judgements}
    unjudged = sorted(f.name for f in facts if f.name not in judged)
    if unjudged:
        raise ValueError(f"facts without a judgement: {', '.join(unjudged)}")
    rejected = [j.name for j in judgements if j.verdict == "reject"]
    warned = [j.name for j in judgements if j.verdict == "warn"]
    usable = len(judgements) - len(rejected)
    median_side = round(statistics.median(f.short_side for f in facts)) if facts else None
    spread = identity_spread(facts)

    blocks: list[str] = []
    warnings: list[str] = []
    least = gate_limit("min_usable_photos")
    if usable < least:
        blocks.append(f"Only {_photos(usable)} usable: the trainer needs at least {least:g}.")
    previous_blocks, previous_warnings = _previous_comparisons(usable, median_side, previous)
    blocks += previous_blocks
    warnings += previous_warnings
    if rejected:
        blocks.append(
            f"{_photos(len(rejected))} kept though rejected ({', '.join(rejected)}): drop "
            "rejected photos before submitting."
        )
    most_spread = gate_limit("max_identity_spread")
    if spread is None:
        warnings.append(
            "Who the user is cannot be checked: fewer than "
            f"{photo_limit('min_faces_for_identity'):g} photos show exactly one face."
        )
    elif spread > most_spread:
        percentile = gate_limit("identity_spread_percentile")
        blocks.append(
            f"The faces vary too much to be one person: {percentile:g}% of them are within "
            f"{spread:.2f} of the usual face, over the {most_spread:g} allowed."
        )
    if judgements and len(warned) / len(judgements) >= gate_limit("many_warned_fraction"):
        warnings.append(
            f"Warnings on {len(warned)} of the {_photos(len(judgements))} kept: review them "
            "before submitting."
        )
    figures: dict[str, Any] = {
        "count": len(judgements),
        "usable": usable,
        "previous_count": previous.image_count if previous is not None else None,
        "previous_usable": usable_before(previous),
        "median_short_side": median_side,
        "previous_median_short_side": (
            previous.median_short_side if previous is not None else None
        ),
        "rejected": len(rejected),
        "warned": len(warned),
        "identity_spread": None if spread is None else round(spread, 3),
    }
    return GateResult(not blocks, tuple(blocks), tuple(warnings), figures)
