"""Read a training ZIP of selfies the way a trainer would, and say how good a dataset it is.

The sandbox keeps the usable photos (re-encoded, at most ``stored_long_side`` px) and a
``DatasetProfile`` for every trained version, so predictions can look as good or as
poor as the photos that trained them. Everything happens in memory; the ZIP is
untrusted, so sizes are capped before anything is decompressed or decoded.
"""

from __future__ import annotations

import functools
import io
import math
import statistics
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import DataRejected

# Count factor reaches 1.0 at this many photos (trainers recommend 10-20 selfies).
FULL_COUNT = 15
# Count factor exponent: (n / FULL_COUNT) ** 1.5 drops steeply below ~10 photos.
COUNT_EXPONENT = 1.5
# Resolution factor reaches 1.0 at this median short side (FLUX trains at 1024 px).
FULL_SHORT_SIDE = 1024
# Sharpness is measured on grayscale scaled to this short side, so sizes compare fairly.
SHARPNESS_SHORT_SIDE = 512
# Laplacian variance of a sharp phone photo at 512 px; blurry ones sit well under 50.
SHARP_LAPLACIAN_VARIANCE = 150.0
# Stored photos are re-encoded as JPEG at this quality: visually lossless, small.
STORED_JPEG_QUALITY = 92
# Members are read in chunks of this size so a lying header cannot blow the budget.
READ_CHUNK_BYTES = 1024 * 1024
# What trainers accept (MPO is how Pillow names many phone JPEGs); HEIF when pillow_heif is.
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP"})
HEIF_FORMATS = frozenset({"HEIF", "HEIC"})


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


def laplacian_variance(image: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian of the grayscale image at a 512 px short side."""
    gray = image.convert("L")
    scale = SHARPNESS_SHORT_SIDE / min(gray.size)
    size = (max(3, round(gray.width * scale)), max(3, round(gray.height * scale)))
    pixels = np.asarray(gray.resize(size, Image.Resampling.BICUBIC), dtype=np.float64)
    laplacian = (
        pixels[1:-1, :-2] + pixels[1:-1, 2:] + pixels[:-2, 1:-1] + pixels[2:, 1:-1]
        - 4.0 * pixels[1:-1, 1:-1]
    )
    return float(laplacian.var())


def read_training_zip(
    zip_bytes: bytes,
    *,
    max_members: int = 1000,
    max_uncompressed_bytes: int = 400 * 1024 * 1024,
    max_image_pixels: int = 50_000_000,
    stored_long_side: int = 1024,
) -> tuple[DatasetProfile, list[bytes]]:
    """The ZIP's profile and its usable photos as JPEG, long side at most ``stored_long_side``.

    Raises ``DataRejected`` when the bytes are not a ZIP, hold too many members, would
    unpack past ``max_uncompressed_bytes``, or hold no usable photo. Members that are not
    usable photos are listed in ``profile.skipped`` with the reason.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise DataRejected(
            f"the training file is not a readable ZIP archive ({exc}); "
            "ask the user to zip their photos again and re-upload"
        ) from exc
    with archive:
        members = archive.infolist()
        _check_archive_limits(members, max_members, max_uncompressed_bytes)
        heif_ok = _register_heif_opener()
        budget = max_uncompressed_bytes
        skipped: list[tuple[str, str]] = []
        short_sides: list[int] = []
        sharpnesses: list[float] = []
        stored: list[bytes] = []
        for info in members:
            reason = _unsafe_name_reason(info)
            if reason is not None:
                skipped.append((info.filename, reason))
                continue
            try:
                data = _read_member(archive, info, budget, max_uncompressed_bytes)
            except _UnreadableMember as exc:
                skipped.append((info.filename, str(exc)))
                continue
            budget -= len(data)
            outcome = _decode_photo(data, max_image_pixels, heif_ok)
            if isinstance(outcome, str):
                skipped.append((info.filename, outcome))
                continue
            # Measure and shrink each photo at once: only one full-size decode is held.
            short_sides.append(min(outcome.size))
            sharpnesses.append(laplacian_variance(outcome))
            stored.append(_encode_stored(outcome, stored_long_side))

    if not stored:
        found = "; ".join(f"{name}: {why}" for name, why in skipped[:5]) or "the ZIP is empty"
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        raise DataRejected(
            f"the ZIP holds no usable photos (JPEG, PNG or WEBP selfies); found {found}{more}"
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


class _UnreadableMember(Exception):
    """A member that cannot be unpacked; its message is the reason shown to staff."""


def _check_archive_limits(
    members: list[zipfile.ZipInfo], max_members: int, max_uncompressed_bytes: int
) -> None:
    if len(members) > max_members:
        raise DataRejected(
            f"the ZIP holds {len(members)} entries, more than the {max_members} allowed; "
            "ask the user for a ZIP of just their selfies"
        )
    declared = sum(info.file_size for info in members)
    if declared > max_uncompressed_bytes:
        raise DataRejected(
            f"the ZIP would unpack to {declared:,} bytes, more than the "
            f"{max_uncompressed_bytes:,} allowed (too many or too large photos, or a zip bomb)"
        )


def _unsafe_name_reason(info: zipfile.ZipInfo) -> str | None:
    """Why a member is skipped by name alone, or None when its name is fine."""
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if info.is_dir():
        return "directory"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in parts:
        return "path with '..' components"
    if parts[0] == "__MACOSX":
        return "macOS resource fork (__MACOSX/)"
    if any(part.startswith(".") for part in parts):
        return "hidden file"
    return None


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, max_uncompressed_bytes: int
) -> bytes:
    """The member's bytes, read in chunks and stopped as soon as it outgrows ``budget``."""
    chunks: list[bytes] = []
    total = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(READ_CHUNK_BYTES):
                total += len(chunk)
                if total > budget:
                    # A header that understates the size: the whole upload is suspect.
                    raise DataRejected(
                        f"{info.filename} unpacks past the {max_uncompressed_bytes:,}-byte "
                        "limit for the whole ZIP (its header understates its size: a zip bomb)"
                    )
                chunks.append(chunk)
    except RuntimeError as exc:  # zipfile raises RuntimeError for encrypted members
        raise _UnreadableMember(f"cannot unpack: {exc}") from exc
    except NotImplementedError as exc:
        raise _UnreadableMember(f"cannot unpack: unsupported compression ({exc})") from exc
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _UnreadableMember(f"cannot unpack: {exc}") from exc
    return b"".join(chunks)


def _decode_photo(data: bytes, max_image_pixels: int, heif_ok: bool) -> Image.Image | str:
    """The photo upright and in RGB, or the reason it cannot be used."""
    accepted = ACCEPTED_FORMATS | HEIF_FORMATS if heif_ok else ACCEPTED_FORMATS
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        return "not an image"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return f"too many pixels to decode safely ({exc})"
    except Exception as exc:  # Pillow plugins raise many types on malformed headers
        return f"cannot decode: {exc}"
    with image:
        if image.format not in accepted:
            wanted = "JPEG, PNG, WEBP or HEIC" if heif_ok else "JPEG, PNG or WEBP"
            return f"unsupported image format {image.format} (use {wanted})"
        width, height = image.size
        if width * height > max_image_pixels:
            return (
                f"too many pixels to decode safely ({width}x{height} is more than "
                f"{max_image_pixels:,} pixels)"
            )
        try:
            image.load()
        except Exception as exc:  # truncated data, bad Huffman tables, ...
            return f"cannot decode: {exc}"
        try:
            upright = ImageOps.exif_transpose(image)
        except Exception:  # a broken EXIF block does not spoil the photo; keep it as stored
            upright = image
        return _to_rgb(upright)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with any transparency flattened onto white (as trainers do)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


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


@functools.cache
def _register_heif_opener() -> bool:
    """Teach Pillow HEIC/HEIF when pillow_heif is installed; done once, on first use."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True
