"""Real face photos for tests, made from scikit-image's bundled astronaut portrait.

Each photo varies crop, mirror and light, so a dataset looks like a set of selfies; the
arguments make the datasets the app produced: few, squeezed, blurry.
"""

from __future__ import annotations

import io
import zipfile
from functools import cache

from PIL import Image, ImageEnhance, ImageFilter


@cache
def _astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def face_photo(index: int, *, long_side: int = 1280, blur: float = 0.0,
               jpeg_quality: int = 92) -> bytes:
    """One JPEG selfie: the astronaut's face framed a little differently per ``index``."""
    base = _astronaut()
    shift = (index * 7) % 40
    crop = base.crop((40 + shift, 10 + shift // 2, 440 + shift, 460 + shift // 2))
    if index % 2:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    crop = ImageEnhance.Brightness(crop).enhance(0.85 + (index % 5) * 0.06)
    scale = long_side / max(crop.size)
    photo = crop.resize((round(crop.width * scale), round(crop.height * scale)),
                        Image.Resampling.LANCZOS)
    if blur:
        photo = photo.filter(ImageFilter.GaussianBlur(blur))
    out = io.BytesIO()
    photo.save(out, format="JPEG", quality=jpeg_quality)
    return out.getvalue()


def zip_of(photos: list[bytes], *, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, photo in enumerate(photos):
            archive.writestr(f"{prefix}image_{index:02d}.jpg", photo)
    return buffer.getvalue()


def selfie_zip(count: int = 12, **photo_options: float) -> bytes:
    """A training ZIP of ``count`` selfies (see ``face_photo`` for the options)."""
    return zip_of([face_photo(index, **photo_options) for index in range(count)])  # type: ignore[arg-type]
