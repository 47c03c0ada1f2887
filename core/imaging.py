"""Photos from untrusted ZIPs and uploads, decoded safely, and the measures photo checks share.

Every photo path reads photos here: the ledger's dataset facts (``core.ledger``), the
sandbox's trainer (``core.sandbox.dataset``) and, through ``decode_photo``, single uploads.
Nothing a file declares is trusted. A ZIP's member count and declared sizes are capped
before anything is unpacked (and zipfile never unpacks a member past its declared size, so
the declared total is the most that can be unpacked). A photo's declared pixel count, short
side and aspect ratio, and for a JPEG whether its bytes can hold that many pixels, are
checked before it is decoded or resized; it is then decoded straight from the archive's
stream (a JPEG at a reduced DCT scale when that still covers the working size) and shrunk
to a working copy of at most ``WORKING_LONG_SIDE`` px. So one photo costs at most one full
decode of ``ZipLimits.max_image_pixels`` pixels, whatever its file says, and a member's
bytes are never copied whole except by the WEBP and HEIC decoders (at most
``max_member_bytes``).

Every member gets a verdict: a ``ZipPhoto`` or a ``SkippedMember`` with the reason, which
staff read as is. Only the archive as a whole is refused, with ``DataRejected``.

Why one long module: every hostile-input rule for decoding photos sits in one place, so no
path can skip one. Moving it, the face reader and the photo measures into one
``core/imaging/`` package (one pass per photo) is the next step of the house.
"""

from __future__ import annotations

import functools
import io
import math
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import IO, TypeVar

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from core.drift.codes import Threshold
from core.errors import DataRejected

# Sharpness is measured on grayscale scaled to this short side, so sizes compare fairly...
SHARPNESS_SHORT_SIDE = 512
# ...and never past this long side, so a thin image cannot blow the scaled copy up (a 2x3000
# PNG scaled to a 512 px short side asked for 9 GB).
SHARPNESS_LONG_SIDE = 2048
# Decoded photos are kept at most this large: enough for every measure (sharpness's
# 512x2048 view, dlib's 800 px, the sandbox's 1024 px copies) at a bounded cost.
WORKING_LONG_SIDE = 2048
# What trainers accept (MPO is how Pillow names many phone JPEGs); HEIF when pillow_heif is.
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP"})
HEIF_FORMATS = frozenset({"HEIF", "HEIC"})
JPEG_FORMATS = frozenset({"JPEG", "MPO"})
# libjpeg fills what a truncated JPEG lacks with zero coefficients: flat gray 128.
LIBJPEG_FILL = 128
# How much of an unidentified member is looked at to say what it is instead.
SNIFF_BYTES = 512

# libjpeg's standard luminance quantisation table (ITU T.81 Annex K, natural order), which
# its quality setting scales; Pillow exposes tables in the same natural order.
# fmt: off
STANDARD_LUMINANCE_TABLE: tuple[int, ...] = (
    16, 11, 10, 16,  24,  40,  51,  61,
    12, 12, 14, 19,  26,  58,  60,  55,
    14, 13, 16, 24,  40,  57,  69,  56,
    14, 17, 22, 29,  51,  87,  80,  62,
    18, 22, 37, 56,  68, 109, 103,  77,
    24, 35, 55, 64,  81, 104, 113,  92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103,  99,
)
# fmt: on

# EXIF orientation -> the transpose that makes the photo upright (as ImageOps.exif_transpose).
_UPRIGHT: Mapping[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES = frozenset({5, 6, 7, 8})
_ENCRYPTED = 0x1  # a ZIP member's general purpose flag: zipfile would want a password
# Modes Pillow resizes as they are (LA and RGBA premultiplied by Pillow itself).
_RESIZABLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "I", "F"})
_SIXTEEN_BIT = "I;16"  # the prefix of Pillow's 16-bit gray modes (I;16, I;16B, ...)

Box = tuple[int, int, int, int]  # left, top, right, bottom in pixels
_HELP = "help"  # a ZipLimits field's help text, in its metadata
_T = TypeVar("_T")


def _limit(default: _T, help_text: str) -> _T:
    return field(default=default, metadata={_HELP: help_text})


@dataclass(frozen=True)
class ZipLimits:
    """How much of an untrusted ZIP is read before it is refused (the whole ZIP) or a
    member skipped (one photo). ``limits_table`` renders each with its help text."""

    max_members: int = _limit(
        1000,
        "A ZIP with more entries than this is refused before anything is unpacked "
        "(trainers want 10-20 selfies).",
    )
    max_uncompressed_bytes: int = _limit(
        400 * 1024 * 1024,
        "A ZIP whose entries declare more bytes than this in all is refused (a zip bomb); "
        "no entry is ever unpacked past its declared size.",
    )
    max_member_bytes: int = _limit(
        64 * 1024 * 1024,
        "A single file larger than this is skipped unread: a 50 MP phone JPEG is ~25 MB.",
    )
    max_image_pixels: int = _limit(
        50_000_000,
        "A photo declaring more pixels than this is skipped undecoded (phones shoot at "
        "most 50 MP); decoding one takes at most 4 bytes a pixel, 200 MB.",
    )
    max_total_pixels: int = _limit(
        2_000_000_000,
        "A ZIP whose decoded photos add up to more pixels than this is refused: about 40 "
        "photos of 50 MP or 160 of 12 MP, a minute or two of work.",
    )
    max_aspect_ratio: float = _limit(
        4.0,
        "A photo whose long side is more than this many times its short side is skipped: "
        "no selfie is that thin, and scaling one to a 512 px short side costs gigabytes.",
    )
    min_short_side: int = _limit(
        64,
        "A photo whose short side is under this many px is skipped: nothing in it can be "
        "measured (dlib's smallest face is 40 px).",
    )


def limits_table(limits: ZipLimits | None = None) -> tuple[Threshold, ...]:
    """Every limit of ``limits`` (the defaults when None) with its help text."""
    limits = limits or ZipLimits()
    return tuple(
        Threshold(spec.name, getattr(limits, spec.name), str(spec.metadata[_HELP]))
        for spec in fields(limits)
    )


@dataclass(frozen=True)
class SkippedMember:
    """A ZIP member (or upload) that is not a usable photo, and why (shown to staff as is)."""

    name: str
    reason: str


@dataclass(frozen=True, eq=False)
class ZipPhoto:
    """One decoded photo: upright, RGB (transparency flattened onto white), at most
    ``WORKING_LONG_SIDE`` px on its long side.

    ``size`` is the photo's own upright size, before any shrinking. ``luminance_table``
    is the JPEG's first quantisation table as stored (None for other formats); decoding
    to RGB loses it, so it is kept here. ``orientation`` is the EXIF orientation (2-8)
    that was applied to make it upright; None when it was stored upright.
    """

    name: str
    image: Image.Image
    source_format: str
    luminance_table: tuple[int, ...] | None
    size: tuple[int, int]
    orientation: int | None = None


def read_zip_photos(
    zip_bytes: bytes, *, limits: ZipLimits | None = None
) -> Iterator[ZipPhoto | SkippedMember]:
    """Every member of the ZIP as a decoded photo or a skip reason, in archive order.

    The archive is opened and its limits checked now (``DataRejected`` when the bytes are
    not a ZIP, hold more than ``max_members`` entries or declare more than
    ``max_uncompressed_bytes``); members are then decoded one at a time as the iterator is
    consumed, so only one photo is being decoded at a time. ``DataRejected`` is also raised
    mid-way once the decoded photos add up to more than ``max_total_pixels``. Nothing else
    is raised: every member that cannot be used is a ``SkippedMember``.
    """
    limits = limits or ZipLimits()
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
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


def decode_photo(
    name: str,
    stream: IO[bytes],
    *,
    byte_size: int | None = None,
    limits: ZipLimits | None = None,
    long_side: int = WORKING_LONG_SIDE,
) -> ZipPhoto | SkippedMember:
    """The photo in ``stream`` (seekable, binary) upright and in RGB, or why it is skipped.

    ``byte_size`` is the file's size when known (a ZIP member's, an upload's): it skips
    empty and oversized files unread and tells a truncated JPEG from a whole one. Never
    raises for what the file holds: every failure is a ``SkippedMember`` with the reason.
    ``long_side`` (at most ``WORKING_LONG_SIDE``) bounds the decoded copy: checks that
    read faces at 800 px need less than a re-encode does, and a JPEG then decodes at a
    reduced DCT scale (a 12 MP photo in a quarter of the time).
    """
    limits = limits or ZipLimits()
    try:
        outcome = _decode(name, stream, byte_size, limits, long_side)
    except (zipfile.BadZipFile, zlib.error) as exc:  # the ZIP member itself is damaged
        outcome = f"cannot unpack: {exc}"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        outcome = f"too many pixels to decode safely ({exc})"
    except MemoryError:
        outcome = "cannot decode: out of memory"
    except Exception as exc:  # Pillow and its plugins raise many types on malformed files
        outcome = f"cannot decode: {exc or type(exc).__name__}"
    return SkippedMember(name, outcome) if isinstance(outcome, str) else outcome


def laplacian_variance(image: Image.Image, box: Box | None = None) -> float:
    """Variance of the 4-neighbour Laplacian of the grayscale image at a 512 px short side.

    With ``box`` (clipped to the image), of that region only, at the same scale, so a
    face's sharpness is in the same units as a whole photo's. The scaled copy is at most
    512x2048 px, so a thin image is measured shrunk rather than blown up.
    """
    width, height = image.size
    scale = min(SHARPNESS_SHORT_SIDE / min(width, height), SHARPNESS_LONG_SIDE / max(width, height))
    left, top, right, bottom = _clip(box, width, height)
    size = (max(3, round((right - left) * scale)), max(3, round((bottom - top) * scale)))
    gray = image if image.mode == "L" else image.convert("L")
    scaled = gray.resize(size, Image.Resampling.BICUBIC, box=(left, top, right, bottom))
    pixels = np.asarray(scaled, dtype=np.float64)
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


@functools.cache
def register_heif_opener() -> bool:
    """Teach Pillow HEIC/HEIF when pillow_heif is installed; done once, on first use."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


# -- the archive ------------------------------------------------------------------------------


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


def _members(
    archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], limits: ZipLimits
) -> Iterator[ZipPhoto | SkippedMember]:
    with archive:
        decoded_pixels = 0
        for info in members:
            outcome = _member(archive, info, limits)
            if isinstance(outcome, ZipPhoto):
                decoded_pixels += outcome.size[0] * outcome.size[1]
                if decoded_pixels > limits.max_total_pixels:
                    raise DataRejected(
                        f"the photos in the ZIP add up to more than {limits.max_total_pixels:,} "
                        f"pixels (reached at {info.filename}); ask the user for fewer or "
                        "smaller photos"
                    )
            yield outcome


def _member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits
) -> ZipPhoto | SkippedMember:
    reason = _unsafe_name_reason(info)
    if reason is not None:
        return SkippedMember(info.filename, reason)
    if info.flag_bits & _ENCRYPTED:
        return SkippedMember(
            info.filename, "cannot unpack: encrypted (ask for a ZIP without a password)"
        )
    try:
        stream = archive.open(info)
    except NotImplementedError as exc:  # before RuntimeError, its base class
        return SkippedMember(info.filename, f"cannot unpack: unsupported compression ({exc})")
    except (RuntimeError, zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        return SkippedMember(info.filename, f"cannot unpack: {exc}")
    with stream:
        return decode_photo(info.filename, stream, byte_size=info.file_size, limits=limits)


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


# -- one photo --------------------------------------------------------------------------------


def _decode(
    name: str, stream: IO[bytes], byte_size: int | None, limits: ZipLimits, long_side: int
) -> ZipPhoto | str:
    if byte_size == 0:
        return "empty file"
    if byte_size is not None and byte_size > limits.max_member_bytes:
        return (
            f"file too large to be a photo ({byte_size:,} bytes, more than the "
            f"{limits.max_member_bytes:,} allowed)"
        )
    heif_ok = register_heif_opener()
    try:
        opened = Image.open(stream)
    except UnidentifiedImageError:
        return _what_it_is(stream, heif_ok)
    with opened:
        reason = _header_reason(opened, byte_size, limits, heif_ok)
        if reason is not None:
            return reason
        return _decode_opened(name, opened, long_side)


def _what_it_is(stream: IO[bytes], heif_ok: bool) -> str:
    """Why a file Pillow cannot identify is skipped, said as usefully as its first bytes allow."""
    stream.seek(0)
    head = stream.read(SNIFF_BYTES)
    if not head:
        return "empty file"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "a ZIP inside the ZIP (not unpacked: ask for the photos themselves)"
    if b"<svg" in head.lower():
        return f"unsupported image format SVG (use {_wanted(heif_ok)})"
    return "not an image"


def _wanted(heif_ok: bool) -> str:
    return "JPEG, PNG, WEBP or HEIC" if heif_ok else "JPEG, PNG or WEBP"


def _header_reason(
    image: Image.Image, byte_size: int | None, limits: ZipLimits, heif_ok: bool
) -> str | None:
    """Why the photo is skipped on what its header declares alone, before any decoding."""
    source_format = str(image.format)
    accepted = ACCEPTED_FORMATS | HEIF_FORMATS if heif_ok else ACCEPTED_FORMATS
    if source_format not in accepted:
        return f"unsupported image format {image.format} (use {_wanted(heif_ok)})"
    width, height = image.size
    short, long = sorted((width, height))
    if width * height > limits.max_image_pixels:
        return (
            f"too many pixels to decode safely ({width}x{height} is more than "
            f"{limits.max_image_pixels:,} pixels)"
        )
    if long > short * limits.max_aspect_ratio:
        return (
            f"too narrow to be a photo ({width}x{height} is more than "
            f"{limits.max_aspect_ratio:g}:1)"
        )
    if short < limits.min_short_side:
        return (
            f"too small to be a photo ({width}x{height}; the short side must be at least "
            f"{limits.min_short_side} px)"
        )
    needed = _least_jpeg_bytes(width, height)
    if source_format in JPEG_FORMATS and byte_size is not None and byte_size < needed:
        return (
            f"cannot decode: truncated ({byte_size:,} bytes cannot hold a {width}x{height} "
            f"JPEG: even a blank one needs {needed:,})"
        )
    return None


def _least_jpeg_bytes(width: int, height: int) -> int:
    """The fewest bytes a whole Huffman-coded JPEG of this size can have: each 8x8 block of
    its first component costs at least one bit (a DC code), whatever the content."""
    return math.ceil(width / 8) * math.ceil(height / 8) // 8


def _decode_opened(name: str, image: Image.Image, long_side: int) -> ZipPhoto | str:
    """Decode a photo whose header passed: shrunk as it is decoded, then upright and RGB."""
    source_format = str(image.format)
    table = _luminance_table(image) if source_format in JPEG_FORMATS else None
    orientation = _orientation(image)
    width, height = image.size
    target = _fit(image.size, min(long_side, WORKING_LONG_SIDE))
    if source_format in JPEG_FORMATS:
        # libjpeg's DCT scaling: decode at 1/2, 1/4 or 1/8 when that still covers target.
        image.draft(image.mode, target)
    image.load()
    if source_format in JPEG_FORMATS and _ends_in_libjpeg_fill(image, height):
        return (
            "cannot decode: truncated (its last rows are the flat gray libjpeg paints "
            "where a JPEG's data ran out)"
        )
    working = _working_copy(image, target)
    upright = (width, height)
    if orientation is not None:
        working = working.transpose(_UPRIGHT[orientation])
        if orientation in _SWAPS_SIDES:
            upright = (height, width)
    return ZipPhoto(name, working, source_format, table, upright, orientation)


def _fit(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _orientation(image: Image.Image) -> int | None:
    """The EXIF orientation that needs a transpose, or None. A broken EXIF block does not
    spoil the photo: it is kept as stored."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation)
    except Exception:
        return None
    return value if isinstance(value, int) and value in _UPRIGHT else None


def _ends_in_libjpeg_fill(image: Image.Image, declared_height: int) -> bool:
    """Whether the decoded JPEG's bottom block row is libjpeg's fill for missing data.

    A JPEG cut short and closed with an end marker decodes without an error; libjpeg
    paints the rest flat gray (every coefficient zero). A whole photo's bottom 8 px are
    never exactly that gray across its width.
    """
    if image.mode not in ("L", "RGB"):  # CMYK JPEGs fill with another colour
        return False
    rows = max(1, math.ceil(8 * image.height / declared_height))
    band = np.asarray(image.crop((0, image.height - rows, image.width, image.height)))
    return bool((band == LIBJPEG_FILL).all())


def _working_copy(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The decoded image at ``size`` in RGB: at most one full-size conversion (palettes,
    a transparent colour, CMYK and the like), then every other step on the small copy."""
    if image.mode in ("P", "PA"):  # resizing a palette would mean nearest-neighbour
        transparent = image.mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if transparent else "RGB")
    elif image.mode in ("L", "RGB") and "transparency" in image.info:
        image = image.convert("RGBA")  # a resized copy would lose the transparent colour
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode not in _RESIZABLE_MODES and not image.mode.startswith(_SIXTEEN_BIT):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    if image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    if image.mode == "F" or image.mode.startswith("I"):
        image = _eight_bit_gray(image)
    return _to_rgb(image)


def _eight_bit_gray(image: Image.Image) -> Image.Image:
    """16-bit (or 32-bit) grayscale as 8-bit by its full range: Pillow's own conversion
    clips everything over 255 to white, which made 16-bit PNGs blank."""
    values = np.asarray(image, dtype=np.float32)
    top = float(values.max()) if values.size else 0.0
    if image.mode.startswith(_SIXTEEN_BIT) or top > 255.0:
        scale = 255.0 / 65535.0  # a 16-bit sample's range, whatever this photo uses of it
    elif image.mode == "F" and top <= 1.0:
        scale = 255.0
    else:
        scale = 1.0
    eight_bit = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
    return Image.fromarray(eight_bit)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with any transparency flattened onto white (as trainers do); always a copy."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.copy() if image.mode == "RGB" else image.convert("RGB")


def _clip(box: Box | None, width: int, height: int) -> Box:
    """``box`` inside a width x height image, at least 1 px each way; the whole image for None."""
    if box is None:
        return 0, 0, width, height
    left = min(max(box[0], 0), width - 1)
    top = min(max(box[1], 0), height - 1)
    right = min(max(box[2], left + 1), width)
    bottom = min(max(box[3], top + 1), height)
    return left, top, right, bottom


def _luminance_table(image: Image.Image) -> tuple[int, ...] | None:
    tables = getattr(image, "quantization", None)
    if not isinstance(tables, Mapping) or not tables:
        return None
    first = tables.get(0, next(iter(tables.values())))
    return tuple(int(value) for value in first)
