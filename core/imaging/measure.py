"""Each photo measured once: one pass gives every fact any check reads, and one thumbnail.

``measure`` reads one decoded photo (``core.imaging.decode``) into ``PhotoFacts``: its
own size, sharpness (the largest face's, else the whole photo's), the whole photo's
sharpness, JPEG quality, exposure, faces (dlib, once) and perceptual hash. The dataset
facts of the ledger (``core.ledger.photo_facts``), comparisons' identity references and
the retrain checks all judge these same values, so a photo read by one of them is never
read again by another: ``ops.training_photos`` keeps them per ZIP and member.

Photos are decoded for measuring at ``MEASURE_LONG_SIDE``: faces are read at 800 px and
sharpness at a 512 px short side, and a 1000 px copy holds both (a 2:1 photo keeps 500 px
on its short side). 1000 rather than 1024: a 4000 px phone photo decodes straight to it
at a quarter of libjpeg's DCT scale (23 ms), where 1024 needs half scale and a resize
(67 ms).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import imagehash
import numpy as np
from PIL import Image, ImageOps

from core.imaging.decode import Box, ZipPhoto, jpeg_quality_from_table, laplacian_variance
from core.imaging.faces import MIN_FACE_SCORE, Face, FaceReader

MEASURE_LONG_SIDE = 1000
# The face box is grown by this share of its width and height on every side before its
# sharpness is measured: dlib's box stops at the brows and chin; wider takes in background.
FACE_BOX_MARGIN = 0.1
# A grayscale pixel at this level or brighter counts as clipped (JPEG noise keeps pure
# white from reading exactly 255).
CLIPPED_LEVEL = 250
THUMBNAIL_SIDE = 256
THUMBNAIL_QUALITY = 80
THUMBNAIL_GROUND = (240, 242, 246)  # Streamlit's light secondary background


@dataclass(frozen=True)
class PhotoFacts:
    """What was measured on one photo, in plain values (stored as JSON).

    ``width``/``height``/``short_side`` are the photo's own upright size. ``sharpness`` is
    what the blurry checks read (the largest face's, else the whole photo's);
    ``photo_sharpness`` is always the whole photo's. ``mean_luminance`` is the grayscale
    mean (0-255) and ``clipped_share`` the share of pixels at ``CLIPPED_LEVEL`` or
    brighter. ``face_score``, ``face_fraction`` (width over the short side) and
    ``embedding`` are the largest face's, None without a face. ``phash`` is the 64-bit
    perceptual hash in hex. ``orientation`` is the EXIF orientation applied to make the
    photo upright (None: stored upright). ``jpeg_quality`` is estimated from the JPEG's
    quantisation table (None for other formats). Facts stored before a field existed
    read None for it.
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
    jpeg_quality: int | None = None
    photo_sharpness: float | None = None

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
            orientation=_int_or_none(values.get("orientation")),
            jpeg_quality=_int_or_none(values.get("jpeg_quality")),
            photo_sharpness=(
                None if values.get("photo_sharpness") is None else float(values["photo_sharpness"])
            ),
        )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def measure(photo: ZipPhoto, reader: FaceReader) -> PhotoFacts:
    """Every fact of one decoded photo, its faces read once (dlib)."""
    faces = reader.read_image(photo.image, min_score=MIN_FACE_SCORE)
    largest = faces[0] if faces else None
    gray = np.asarray(photo.image.convert("L"))
    width, height = photo.size
    photo_sharpness = laplacian_variance(photo.image)
    table = photo.luminance_table
    return PhotoFacts(
        name=photo.name,
        width=width,
        height=height,
        short_side=min(width, height),
        sharpness=(
            laplacian_variance(photo.image, face_box(largest))
            if largest is not None
            else photo_sharpness
        ),
        mean_luminance=float(gray.mean()),
        clipped_share=float((gray >= CLIPPED_LEVEL).mean()),
        face_count=len(faces),
        face_score=largest.score if largest else None,
        # The face box is in the working copy's pixels, so is the short side it is over.
        face_fraction=largest.width / min(photo.image.size) if largest else None,
        embedding=largest.embedding if largest else None,
        phash=str(imagehash.phash(photo.image)),
        orientation=photo.orientation,
        jpeg_quality=jpeg_quality_from_table(table) if table is not None else None,
        photo_sharpness=photo_sharpness,
    )


def face_box(face: Face, margin: float = FACE_BOX_MARGIN) -> Box:
    """The face's box grown by ``margin`` of its width and height on every side (it may
    reach past the photo's edges; the sharpness measure clips it)."""
    grow_x, grow_y = margin * face.width, margin * face.height
    return (
        round(face.left - grow_x),
        round(face.top - grow_y),
        round(face.right + grow_x),
        round(face.bottom + grow_y),
    )


def thumbnail(image: Image.Image) -> bytes:
    """The one thumbnail: a ``THUMBNAIL_SIDE`` px square JPEG with the whole photo on a pale
    ground, so a grid of thumbnails lines up whatever each photo's shape."""
    padded = ImageOps.pad(
        image, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS, THUMBNAIL_GROUND
    )
    return jpeg_bytes(padded, THUMBNAIL_QUALITY)


def jpeg_within(image: Image.Image, long_side: int, quality: int) -> bytes:
    """A JPEG of ``image`` shrunk to at most ``long_side`` px on its long side (previews)."""
    copy = image.copy()
    copy.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    return jpeg_bytes(copy, quality)


def jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()
