"""Selfies of a real face, made offline from scikit-image's public-domain astronaut portrait.

``skimage.data.astronaut()`` (Eileen Collins, NASA, public domain) is the one bundled
photo with a face large enough to train on: 512x512, the face about 90 px wide. The
other bundled faces (``lfw_subset``) are 25x25 grayscale crops: dlib still finds most
of them when enlarged, but at 50x enlargement they are mush, far from a 1024 px selfie.

Every photo is a different framing of that portrait: crop, aspect, slight rotation,
mirror, light and colour, drawn from a seeded ``random.Random`` so the same arguments
always give the same bytes. ``person`` picks a look (colour grade, exposure, favourite
framing) so each demo user's photos look like one phone's, and ``index`` varies the shot.
The arguments reproduce what the app's uploads became: few photos, squeezed by the
browser (600 px at JPEG quality 55), blurry.
"""

from __future__ import annotations

import io
import math
import random
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from core.app.calls import BROWSER_SQUEEZE_LEVELS

# Where dlib finds the face in the 512 px portrait (left, top, right, bottom).
SOURCE_FACE = (175, 76, 265, 166)
# Badges on the suit that dlib mistakes for second faces: the mission patch and the name
# tag. They are painted over, so each photo holds exactly one face.
SOURCE_BADGES = ((124, 333, 218, 427), (272, 334, 334, 376))
SUIT_ORANGE = (205, 95, 45)
SOURCE_SIDE = 512
# Reflected border around the portrait, wider than the wedge a 6 degree turn exposes.
ROTATION_MARGIN = 64
MAX_ROTATION_DEGREES = 6.0
# Frames of two shots facing the same way may overlap this much (intersection over union)
# before they look like one photo taken twice; a tilt of a few degrees does not hide it.
ALIKE_OVERLAP = 0.8
SHOT_DRAWS = 200  # candidates drawn per shot before settling for the least alike
SHOT_BLOCK = 32
# The face's height as a share of the frame's height: close-up to head-and-shoulders.
FACE_SHARE = (0.22, 0.32)
# Frame aspect ratios (width, height): mostly portrait, as phones shoot selfies; none
# narrower than 4:5, so a 1280 px long side keeps the short side at 1024 or more.
ASPECTS: tuple[tuple[int, int], ...] = ((4, 5), (4, 5), (4, 5), (4, 5), (1, 1), (5, 4))
# Phones sharpen their own photos; the 512 px source needs it too, or at 1280 px the
# photo measures as soft as a blurry one (Laplacian variance well under 150 at 512 px).
PHONE_SHARPEN = ImageFilter.UnsharpMask(radius=1, percent=130, threshold=2)
GOOD_LONG_SIDE = 1280
GOOD_JPEG_QUALITY = 92
# What the browser's last resort made of the app's uploads (app-facts, "Training").
SQUEEZED_LONG_SIDE = BROWSER_SQUEEZE_LEVELS[-1][0]
SQUEEZED_JPEG_QUALITY = round(BROWSER_SQUEEZE_LEVELS[-1][1] * 100)
ZIP_DATE_TIME = (2025, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class PhotoSpec:
    """One selfie: whose look, which shot, and what the upload did to it."""

    person: int = 0
    index: int = 0
    long_side: int = GOOD_LONG_SIDE
    blur: float = 0.0  # Gaussian radius in output pixels
    jpeg_quality: int = GOOD_JPEG_QUALITY


@dataclass(frozen=True)
class _Look:
    """A person's phone: colour balance, exposure, contrast and favourite framing."""

    channel_gain: tuple[float, float, float]
    brightness: float
    contrast: float
    saturation: float
    face_share: float


@dataclass(frozen=True)
class _Shot:
    aspect: tuple[int, int]
    face_share: float
    across: float  # face centre's offset from the frame centre, share of the frame width
    down: float  # face centre's height in the frame, share of the frame height
    rotation: float
    mirrored: bool
    brightness: float
    saturation: float


def face_photo(
    index: int,
    *,
    person: int = 0,
    long_side: int = GOOD_LONG_SIDE,
    blur: float = 0.0,
    jpeg_quality: int = GOOD_JPEG_QUALITY,
) -> bytes:
    """One JPEG selfie (shot ``index`` of ``person``), ``long_side`` px on its long side."""
    return render_photo(PhotoSpec(person, index, long_side, blur, jpeg_quality))


# Bounded: retrains reuse a user's shots, but a long-lived console must not keep them all.
@lru_cache(maxsize=64)
def render_photo(spec: PhotoSpec) -> bytes:
    """The JPEG bytes for ``spec``; recent ones are cached, as uploads share shots."""
    look = _look(spec.person)
    shot = _shot(spec.person, spec.index)
    frame = _frame(shot)
    frame = _grade(frame, look, shot)
    across, down = shot.aspect
    scale = spec.long_side / max(across, down)
    size = (max(1, round(across * scale)), max(1, round(down * scale)))
    photo = frame.filter(PHONE_SHARPEN).resize(size, Image.Resampling.BICUBIC)
    if spec.blur > 0:
        photo = photo.filter(ImageFilter.GaussianBlur(spec.blur))
    out = io.BytesIO()
    photo.save(out, format="JPEG", quality=spec.jpeg_quality)
    return out.getvalue()


def photo_set(
    person: int,
    indexes: Iterable[int],
    *,
    long_side: int = GOOD_LONG_SIDE,
    blur: float = 0.0,
    jpeg_quality: int = GOOD_JPEG_QUALITY,
) -> list[bytes]:
    """Several shots of one person, all treated the same way."""
    return [
        render_photo(PhotoSpec(person, index, long_side, blur, jpeg_quality)) for index in indexes
    ]


def zip_of(photos: Sequence[bytes], *, prefix: str = "") -> bytes:
    """A ZIP of the JPEGs as ``image_NN.jpg``, stored uncompressed (JPEGs do not shrink)
    with a fixed timestamp, so the same photos always give the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index, photo in enumerate(photos):
            info = zipfile.ZipInfo(f"{prefix}image_{index:02d}.jpg", date_time=ZIP_DATE_TIME)
            archive.writestr(info, photo)
    return buffer.getvalue()


def selfie_zip(
    count: int = 12,
    *,
    person: int = 0,
    first_index: int = 0,
    long_side: int = GOOD_LONG_SIDE,
    blur: float = 0.0,
    jpeg_quality: int = GOOD_JPEG_QUALITY,
) -> bytes:
    """A training ZIP of ``count`` shots of ``person`` (see ``face_photo`` for the options)."""
    indexes = range(first_index, first_index + count)
    return zip_of(
        photo_set(person, indexes, long_side=long_side, blur=blur, jpeg_quality=jpeg_quality)
    )


# -- the source portrait ------------------------------------------------------------------


@cache
def _source() -> Image.Image:
    """The astronaut with the badges painted out, padded by reflection for rotating."""
    from skimage import data  # imported late: skimage's import costs ~0.3 s

    portrait = Image.fromarray(data.astronaut()).convert("RGB")  # type: ignore[no-untyped-call]
    painted = portrait.copy()
    mask = Image.new("L", portrait.size, 0)
    for box in SOURCE_BADGES:
        ImageDraw.Draw(painted).ellipse(box, fill=SUIT_ORANGE)
        ImageDraw.Draw(mask).ellipse(box, fill=255)
    # Soft edges, so the paint reads as fabric in shadow rather than a sticker.
    mask = mask.filter(ImageFilter.GaussianBlur(4))
    portrait.paste(painted.filter(ImageFilter.GaussianBlur(5)), mask=mask)
    margin = ROTATION_MARGIN
    padded = np.pad(
        np.asarray(portrait), ((margin, margin), (margin, margin), (0, 0)), mode="reflect"
    )
    return Image.fromarray(padded)


def _look(person: int) -> _Look:
    rng = random.Random(f"look:{person}")
    warmth = rng.uniform(-0.06, 0.06)
    return _Look(
        channel_gain=(1.0 + warmth, 1.0 + rng.uniform(-0.02, 0.02), 1.0 - warmth),
        brightness=rng.uniform(0.92, 1.08),
        contrast=rng.uniform(0.9, 1.1),
        saturation=rng.uniform(0.85, 1.15),
        face_share=rng.uniform(*FACE_SHARE),
    )


def _shot(person: int, index: int) -> _Shot:
    # Whole blocks of shots are drawn and cached, so a ZIP's photos share one draw.
    block = SHOT_BLOCK * (index // SHOT_BLOCK + 1)
    return _shots(person, block)[index]


@lru_cache(maxsize=64)
def _shots(person: int, count: int) -> tuple[_Shot, ...]:
    """The person's first ``count`` shots. A candidate framed too much like an earlier
    shot is drawn again, so photos of a person are not near-duplicates (a retrain
    checker rejects those); shot ``n`` is the same however many are asked for."""
    look = _look(person)
    shots: list[_Shot] = []
    framed: list[tuple[bool, tuple[float, float, float, float]]] = []
    for index in range(count):
        rng = random.Random(f"shot:{person}:{index}")
        best: tuple[float, _Shot] | None = None
        for _ in range(SHOT_DRAWS):
            candidate = _Shot(
                aspect=rng.choice(ASPECTS),
                face_share=min(
                    FACE_SHARE[1], max(FACE_SHARE[0], look.face_share + rng.uniform(-0.05, 0.05))
                ),
                across=rng.uniform(-0.1, 0.1),
                down=rng.uniform(0.3, 0.42),
                rotation=rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES),
                mirrored=rng.random() < 0.5,
                brightness=rng.uniform(0.88, 1.12),
                saturation=rng.uniform(0.92, 1.08),
            )
            box = _frame_box(candidate)
            # Shots facing opposite ways read as different photos; same way: frames overlap.
            likeness = max(
                (
                    _overlap(box, other)
                    for mirrored, other in framed
                    if mirrored == candidate.mirrored
                ),
                default=0.0,
            )
            if best is None or likeness < best[0]:
                best = (likeness, candidate)
            if likeness <= ALIKE_OVERLAP:
                break
        assert best is not None
        shots.append(best[1])  # after SHOT_DRAWS tries, the least alike will do
        framed.append((best[1].mirrored, _frame_box(best[1])))
    return tuple(shots)


def _overlap(
    one: tuple[float, float, float, float], other: tuple[float, float, float, float]
) -> float:
    """Intersection over union of two (left, top, width, height) boxes."""
    across = min(one[0] + one[2], other[0] + other[2]) - max(one[0], other[0])
    down = min(one[1] + one[3], other[1] + other[3]) - max(one[1], other[1])
    shared = max(0.0, across) * max(0.0, down)
    return shared / (one[2] * one[3] + other[2] * other[3] - shared)


def _frame_box(shot: _Shot) -> tuple[float, float, float, float]:
    """(left, top, width, height) of the shot's frame in the padded portrait."""
    margin = ROTATION_MARGIN
    centre_x, centre_y = _face_centre()
    across, down = shot.aspect
    height = (SOURCE_FACE[3] - SOURCE_FACE[1]) / shot.face_share
    width = height * across / down
    # Keep the frame inside the original portrait (the margin only feeds the rotation).
    fit = min(1.0, SOURCE_SIDE / width, SOURCE_SIDE / height)
    width, height = width * fit, height * fit
    left = centre_x - width / 2 - shot.across * width
    top = centre_y - shot.down * height
    left = min(max(left, margin), margin + SOURCE_SIDE - width)
    top = min(max(top, margin), margin + SOURCE_SIDE - height)
    return left, top, width, height


def _face_centre() -> tuple[float, float]:
    face_left, face_top, face_right, face_bottom = SOURCE_FACE
    return (
        (face_left + face_right) / 2 + ROTATION_MARGIN,
        (face_top + face_bottom) / 2 + ROTATION_MARGIN,
    )


def _frame(shot: _Shot) -> Image.Image:
    """The shot's crop of the portrait turned by ``shot.rotation``, at source resolution.

    Rotation and crop are one affine map from the padded source, so only the frame's
    own pixels are resampled (rotating the whole portrait first costs ten times more).
    """
    centre_x, centre_y = _face_centre()
    left, top, width, height = _frame_box(shot)
    # Output (x, y) -> source: turn (x + left, y + top) about the face centre (as
    # Image.rotate does, counter-clockwise for positive degrees).
    angle = -math.radians(shot.rotation)
    cos, sin = math.cos(angle), math.sin(angle)
    offset_x = left - centre_x
    offset_y = top - centre_y
    matrix = (
        cos,
        sin,
        cos * offset_x + sin * offset_y + centre_x,
        -sin,
        cos,
        -sin * offset_x + cos * offset_y + centre_y,
    )
    frame = _source().transform(
        (round(width), round(height)), Image.Transform.AFFINE, matrix, Image.Resampling.BICUBIC
    )
    if shot.mirrored:
        frame = frame.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return frame


def _grade(frame: Image.Image, look: _Look, shot: _Shot) -> Image.Image:
    """The person's colour balance, then this shot's light."""
    red, green, blue = frame.split()
    gains = look.channel_gain
    balanced = Image.merge(
        "RGB",
        (
            red.point(lambda value: min(255, round(value * gains[0]))),
            green.point(lambda value: min(255, round(value * gains[1]))),
            blue.point(lambda value: min(255, round(value * gains[2]))),
        ),
    )
    graded = ImageEnhance.Contrast(balanced).enhance(look.contrast)
    graded = ImageEnhance.Brightness(graded).enhance(look.brightness * shot.brightness)
    return ImageEnhance.Color(graded).enhance(look.saturation * shot.saturation)
