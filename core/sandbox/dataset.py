"""Read a training ZIP of selfies the way a trainer would, and say how good a dataset it is.

The sandbox keeps the usable photos (re-encoded, at most ``stored_long_side`` px) and a
``DatasetProfile`` for every trained version, so predictions can look as good or as
poor as the photos that trained them. Everything happens in memory; the ZIP is
untrusted and is read through ``core.imaging`` (caps, zip bombs, unsafe names, photos
bounded by pixel count and aspect ratio before they are decoded), so a hostile ZIP fails
the training with a reason instead of the request.
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from core.errors import DataRejected
from core.imaging import SkippedMember, ZipLimits, read_zip_photos

# Re-exported: the sandbox's callers measure sharpness the way profiles do.
from core.imaging import laplacian_variance as laplacian_variance

# Count factor reaches 1.0 at this many photos (trainers recommend 10-20 selfies).
FULL_COUNT = 15
# Count factor exponent: (n / FULL_COUNT) ** 1.5 drops steeply below ~10 photos.
COUNT_EXPONENT = 1.5
# Resolution factor reaches 1.0 at this median short side (FLUX trains at 1024 px).
FULL_SHORT_SIDE = 1024
# Laplacian variance of a sharp phone photo at 512 px; blurry ones sit well under 50.
SHARP_LAPLACIAN_VARIANCE = 150.0
# Stored photos are re-encoded as JPEG at this quality: visually lossless, small.
STORED_JPEG_QUALITY = 92


@dataclass(frozen=True)
class DatasetProfile:
    """What a training ZIP held, and a 0..1 ``quality`` that drives the sandbox's renders.

    ``quality = count_factor * resolution_factor * sharpness_factor`` where
    ``count_factor = min(1, (image_count / 15) ** 1.5)``,
    ``resolution_factor = min(1, median_short_side / 1024)`` and
    ``sharpness_factor = min(1, sqrt(median_sharpness / 150))``
    (the square root because Laplacian variance grows with the square of edge strength).
    """

    image_count: int
    median_short_side: int
    median_sharpness: float
    skipped: tuple[tuple[str, str], ...]
    quality: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict that ``from_dict`` turns back into an equal profile."""
        return {
            "image_count": self.image_count,
            "median_short_side": self.median_short_side,
            "median_sharpness": self.median_sharpness,
            "skipped": [[name, reason] for name, reason in self.skipped],
            "quality": self.quality,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DatasetProfile:
        """The profile ``to_dict`` produced; ``DataRejected`` when the dict is not one."""
        try:
            return cls(
                image_count=int(raw["image_count"]),
                median_short_side=int(raw["median_short_side"]),
                median_sharpness=float(raw["median_sharpness"]),
                skipped=tuple((str(name), str(reason)) for name, reason in raw["skipped"]),
                quality=float(raw["quality"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataRejected(f"stored dataset profile is malformed ({exc!r}): {raw!r}") from exc


def count_factor(image_count: int) -> float:
    """1.0 at ``FULL_COUNT`` photos or more, falling steeply below."""
    return min(1.0, float((max(image_count, 0) / FULL_COUNT) ** COUNT_EXPONENT))


def resolution_factor(median_short_side: int) -> float:
    """1.0 at ``FULL_SHORT_SIDE`` px or more, proportional below."""
    return min(1.0, max(median_short_side, 0) / FULL_SHORT_SIDE)


def sharpness_factor(median_sharpness: float) -> float:
    """1.0 at ``SHARP_LAPLACIAN_VARIANCE`` or more; the square root of the ratio below."""
    return min(1.0, math.sqrt(max(median_sharpness, 0.0) / SHARP_LAPLACIAN_VARIANCE))


def dataset_quality(image_count: int, median_short_side: int, median_sharpness: float) -> float:
    """The product of the three factors, in [0, 1]."""
    return (
        count_factor(image_count)
        * resolution_factor(median_short_side)
        * sharpness_factor(median_sharpness)
    )


def read_training_zip(
    zip_bytes: bytes, *, limits: ZipLimits | None = None, stored_long_side: int = 1024
) -> tuple[DatasetProfile, list[bytes]]:
    """The ZIP's profile and its usable photos as JPEG, long side at most ``stored_long_side``.

    Raises ``DataRejected`` (and nothing else, whatever the ZIP holds) when the bytes are
    not a ZIP, break one of ``limits`` for the whole archive (``core.imaging.ZipLimits``),
    or hold no usable photo. Members that are not usable photos are listed in
    ``profile.skipped`` with the reason.
    """
    skipped: list[tuple[str, str]] = []
    short_sides: list[int] = []
    sharpnesses: list[float] = []
    stored: list[bytes] = []
    for member in read_zip_photos(zip_bytes, limits=limits):
        if isinstance(member, SkippedMember):
            skipped.append((member.name, member.reason))
            continue
        # Measure and shrink each photo at once: only one decoded photo is held.
        short_sides.append(min(member.size))
        sharpnesses.append(laplacian_variance(member.image))
        stored.append(_encode_stored(member.image, stored_long_side))

    if not stored:
        found = "; ".join(f"{name}: {why}" for name, why in skipped[:5]) or "the ZIP is empty"
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        raise DataRejected(
            f"the ZIP holds no usable photos (JPEG, PNG, WEBP or HEIC selfies); found {found}{more}"
        )
    short_side = round(statistics.median(short_sides))
    sharpness = float(statistics.median(sharpnesses))
    profile = DatasetProfile(
        image_count=len(stored),
        median_short_side=short_side,
        median_sharpness=sharpness,
        skipped=tuple(skipped),
        quality=dataset_quality(len(stored), short_side, sharpness),
    )
    return profile, stored


def _encode_stored(image: Image.Image, stored_long_side: int) -> bytes:
    """JPEG at fixed settings, downscaled (never upscaled) to ``stored_long_side``."""
    long_side = max(image.size)
    if long_side > stored_long_side:
        scale = stored_long_side / long_side
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=STORED_JPEG_QUALITY)
    return out.getvalue()
