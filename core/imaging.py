"""Photos from untrusted ZIPs, read safely, and the measures every photo check shares.

Used by the sandbox's trainer (``core.sandbox.dataset``) and by the ledger's dataset
facts (``core.ledger.datasets``). A training ZIP is untrusted: the member count and the
declared and actual unpacked sizes are capped before anything is decompressed or decoded,
names that could escape a folder are skipped, and every member that is not a usable photo
is reported with the reason instead of failing the whole ZIP.
"""

from __future__ import annotations

import functools
import io
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import DataRejected

# Sharpness is measured on grayscale scaled to this short side, so sizes compare fairly.
SHARPNESS_SHORT_SIDE = 512
# Members are read in chunks of this size so a lying header cannot blow the budget.
READ_CHUNK_BYTES = 1024 * 1024
# What trainers accept (MPO is how Pillow names many phone JPEGs); HEIF when pillow_heif is.
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP"})
HEIF_FORMATS = frozenset({"HEIF", "HEIC"})
JPEG_FORMATS = frozenset({"JPEG", "MPO"})

# libjpeg's standard luminance quantisation table (ITU T.81 Annex K, natural order), which
# its quality setting scales; Pillow exposes tables in the same natural order.
STANDARD_LUMINANCE_TABLE: tuple[int, ...] = (
    16,
    11,
    10,
    16,
    24,
    40,
    51,
    61,
    12,
    12,
    14,
    19,
    26,
    58,
    60,
    55,
    14,
    13,
    16,
    24,
    40,
    57,
    69,
    56,
    14,
    17,
    22,
    29,
    51,
    87,
    80,
    62,
    18,
    22,
    37,
    56,
    68,
    109,
    103,
    77,
    24,
    35,
    55,
    64,
    81,
    104,
    113,
    92,
    49,
    64,
    78,
    87,
    103,
    121,
    120,
    101,
    72,
    92,
    95,
    98,
    112,
    100,
    103,
    99,
)


@dataclass(frozen=True)
class ZipLimits:
    """How much of an untrusted ZIP is read before it is refused."""

    max_members: int = 1000
    max_uncompressed_bytes: int = 400 * 1024 * 1024
    max_image_pixels: int = 50_000_000


@dataclass(frozen=True)
class SkippedMember:
    """A ZIP member that is not a usable photo, and why (shown to staff as is)."""

    name: str
    reason: str


@dataclass(frozen=True, eq=False)
class ZipPhoto:
    """One decoded photo: upright, RGB (transparency flattened onto white).

    ``luminance_table`` is the JPEG's first quantisation table as stored (None for
    other formats); decoding to RGB loses it, so it is kept here.
    """

    name: str
    image: Image.Image
    source_format: str
    luminance_table: tuple[int, ...] | None


def read_zip_photos(
    zip_bytes: bytes, *, limits: ZipLimits | None = None
) -> Iterator[ZipPhoto | SkippedMember]:
    """Every member of the ZIP as a decoded photo or a skip reason, in archive order.

    The archive is opened and its limits checked now (``DataRejected`` when the bytes are
    not a ZIP, hold more than ``max_members`` entries or declare more than
    ``max_uncompressed_bytes``); members are then decoded one at a time as the iterator is
    consumed, so only one full-size photo is held. A member that unpacks past the budget
    despite its header raises ``DataRejected`` (a zip bomb: the whole upload is suspect).
    """
    limits = limits or ZipLimits()
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise DataRejected(
            f"the training file is not a readable ZIP archive ({exc}); "
            "ask the user to zip their photos again and re-upload"
        ) from exc
    members = archive.infolist()
    try:
        _check_archive_limits(members, limits.max_members, limits.max_uncompressed_bytes)
    except DataRejected:
        archive.close()
        raise
    return _members(archive, members, limits)


def _members(
    archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], limits: ZipLimits
) -> Iterator[ZipPhoto | SkippedMember]:
    with archive:
        heif_ok = register_heif_opener()
        budget = limits.max_uncompressed_bytes
        for info in members:
            reason = _unsafe_name_reason(info)
            if reason is not None:
                yield SkippedMember(info.filename, reason)
                continue
            try:
                data = _read_member(archive, info, budget, limits.max_uncompressed_bytes)
            except _UnreadableMember as exc:
                yield SkippedMember(info.filename, str(exc))
                continue
            budget -= len(data)
            outcome = _decode_photo(info.filename, data, limits.max_image_pixels, heif_ok)
            if isinstance(outcome, str):
                yield SkippedMember(info.filename, outcome)
            else:
                yield outcome


def laplacian_variance(image: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian of the grayscale image at a 512 px short side."""
    gray = image.convert("L")
    scale = SHARPNESS_SHORT_SIDE / min(gray.size)
    size = (max(3, round(gray.width * scale)), max(3, round(gray.height * scale)))
    pixels = np.asarray(gray.resize(size, Image.Resampling.BICUBIC), dtype=np.float64)
    laplacian = (
        pixels[1:-1, :-2]
        + pixels[1:-1, 2:]
        + pixels[:-2, 1:-1]
        + pixels[2:, 1:-1]
        - 4.0 * pixels[1:-1, 1:-1]
    )
    return float(laplacian.var())


def libjpeg_luminance_table(quality: int) -> tuple[int, ...]:
    """The luminance table libjpeg writes for ``quality`` (1-100, baseline: at most 255)."""
    quality = min(100, max(1, quality))
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return tuple(
        min(255, max(1, (value * scale + 50) // 100)) for value in STANDARD_LUMINANCE_TABLE
    )


@functools.cache
def _libjpeg_tables() -> tuple[tuple[int, ...], ...]:
    return tuple(libjpeg_luminance_table(quality) for quality in range(1, 101))


def jpeg_quality_from_table(table: Sequence[int]) -> int | None:
    """The libjpeg quality (1-100) whose luminance table is closest to ``table``.

    Exact for files libjpeg (Pillow, browsers' canvas encoders) wrote; for a camera's own
    tables it is the nearest standard quality. None when ``table`` is not 64 values.
    """
    if len(table) != len(STANDARD_LUMINANCE_TABLE):
        return None
    observed = np.asarray(table, dtype=np.float64)
    errors = [
        float(np.abs(np.asarray(candidate) - observed).sum()) for candidate in _libjpeg_tables()
    ]
    # On ties (tables clip at 1 above ~q98) report the lowest quality that fits.
    return 1 + int(np.argmin(errors))


def _luminance_table(image: Image.Image) -> tuple[int, ...] | None:
    tables = getattr(image, "quantization", None)
    if not isinstance(tables, Mapping) or not tables:
        return None
    first = tables.get(0, next(iter(tables.values())))
    return tuple(int(value) for value in first)


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


def _decode_photo(name: str, data: bytes, max_image_pixels: int, heif_ok: bool) -> ZipPhoto | str:
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
        source_format = str(image.format)
        if source_format not in accepted:
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
        table = _luminance_table(image) if source_format in JPEG_FORMATS else None
        try:
            upright = ImageOps.exif_transpose(image)
        except Exception:  # a broken EXIF block does not spoil the photo; keep it as stored
            upright = image
        return ZipPhoto(name, _to_rgb(upright), source_format, table)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with any transparency flattened onto white (as trainers do)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


@functools.cache
def register_heif_opener() -> bool:
    """Teach Pillow HEIC/HEIF when pillow_heif is installed; done once, on first use."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True
