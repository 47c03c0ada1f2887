"""Hostile photos and ZIPs, made in code at test time, each with the verdict it must get.

Why: every photo path (the ledger's dataset facts, the sandbox's trainer, later the
retrain wizard) reads files users uploaded. These are the files that broke them or could:
thin and tiny images, headers that lie about their size, decompression bombs, 16-bit and
CMYK pixels, HEIC, EXIF rotations (valid, invalid, corrupt), animations, formats trainers
do not take, truncated files, unsafe names, and ZIPs that are encrypted, nested, empty,
huge or not ZIPs at all. Nothing is downloaded: photos come from the demo world's
astronaut selfies (``tests.photos``), Pillow, pillow-heif and hand-written bytes.

``MEMBERS`` go into one ZIP together (``corpus_zip``) or each alone (``zip_alone``);
``ARCHIVES`` are whole ZIPs. A verdict is ``Ok`` (decoded, with the photo's own upright
size), ``Skipped`` (the start of the reason) or ``Rejected`` (a part of the
``DataRejected`` message for the whole ZIP).
"""

from __future__ import annotations

import functools
import io
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import Image, PngImagePlugin

from core.imaging import ZipLimits
from tests.photos import face_photo

MB = 1024 * 1024
ZIP_DATE_TIME = (2025, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Ok:
    """Decoded. ``size`` is the photo's own upright size; ``face`` whether dlib must find
    exactly one face in it (True), none (False), or is not asked (None)."""

    size: tuple[int, int]
    face: bool | None = None


@dataclass(frozen=True)
class Skipped:
    """Not a usable photo; the reason starts with ``reason``."""

    reason: str


@dataclass(frozen=True)
class Rejected:
    """The whole ZIP is refused; the message contains ``reason``."""

    reason: str


@dataclass(frozen=True)
class HostileMember:
    """One file inside a ZIP, and its verdict."""

    name: str
    payload: Callable[[], bytes]
    verdict: Ok | Skipped

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class HostileZip:
    """A whole ZIP: refused (``Rejected``), or read with each member's verdict."""

    label: str
    payload: Callable[[], bytes]
    verdict: Rejected | tuple[tuple[str, Ok | Skipped], ...]
    limits: ZipLimits | None = None

    def __str__(self) -> str:
        return self.label


# -- photo makers ---------------------------------------------------------------------------


@functools.cache
def selfie(index: int = 0) -> Image.Image:
    """A demo selfie (one face), decoded: 1280 px on its long side, framed as the shot is."""
    return Image.open(io.BytesIO(face_photo(index))).convert("RGB")


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def jpeg(image: Image.Image, **options: object) -> bytes:
    return encode(image, "JPEG", quality=90, **options)


# How a camera stores an upright photo under each EXIF orientation (the inverse of the
# transpose a viewer applies).
STORED_AS = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def with_orientation(upright: Image.Image, orientation: int) -> bytes:
    """A JPEG that is ``upright`` only once its EXIF orientation is applied (sideways, and
    so faceless for dlib, if it is not)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = upright.transpose(STORED_AS[orientation]) if orientation in STORED_AS else upright
    return jpeg(stored, exif=exif.tobytes())


def corrupt_exif() -> bytes:
    """A JPEG whose EXIF block is garbage after its header (a tag count of 0xFFFF...)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    block = exif.tobytes()
    return jpeg(selfie(0), exif=block[:10] + b"\xff" * 20 + block[30:])


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bytes(width: int, height: int, rows: Iterator[bytes], *, color_type: int = 2) -> bytes:
    """A PNG written by hand, row by row (8-bit; colour type 2 RGB, 0 gray), so a 49 MP
    blank needs no 147 MB buffer to make."""
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(b"\x00" + row) for row in rows) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def blank_png(width: int, height: int) -> bytes:
    """An all-black RGB PNG: tiny on disk, ``width * height`` pixels when decoded."""
    row = bytes(3 * width)
    return png_bytes(width, height, (row for _ in range(height)))


def lying_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height over a few bytes of pixels."""
    return png_bytes(width, height, iter([bytes(3 * min(width, 16))]))


def lying_jpeg(width: int, height: int, *, keep_scan_bytes: int | None = None) -> bytes:
    """A small JPEG whose frame header (SOF0) is rewritten to declare width x height;
    with ``keep_scan_bytes``, its scan data is cut there and closed with an end marker."""
    data = bytearray(jpeg(Image.new("RGB", (64, 64), (120, 90, 60))))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    if keep_scan_bytes is None:
        return bytes(data)
    sos = data.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    return bytes(data[: start + keep_scan_bytes]) + b"\xff\xd9"


def truncated(payload: bytes, *, end_marker: bool) -> bytes:
    """The first half of a file, closed with a JPEG end marker when asked (as a repair
    tool or an interrupted upload that was 'fixed' leaves it)."""
    half = payload[: len(payload) // 2]
    return half + b"\xff\xd9" if end_marker else half


def gray16_png() -> bytes:
    """The selfie as a 16-bit grayscale PNG (values up to 65535, Pillow mode I;16)."""
    gray = np.asarray(selfie(1).convert("L"), dtype=np.uint16) * 257
    image = Image.fromarray(gray)
    assert image.mode == "I;16"
    return encode(image, "PNG")


@functools.cache
def heic() -> bytes:
    out = io.BytesIO()
    pillow_heif.from_pillow(selfie(2)).save(out, quality=80)
    return out.getvalue()


def mpo() -> bytes:
    return encode(selfie(3), "MPO", save_all=True, append_images=[selfie(4)])


def animated(fmt: str) -> bytes:
    first = selfie(5).resize((512, 640))
    return encode(first, fmt, save_all=True, append_images=[first.rotate(90)], duration=100)


def palette_png() -> bytes:
    return encode(selfie(6).quantize(256), "PNG")


def transparent_png() -> bytes:
    rgba = selfie(7).convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 255).point(lambda _: 200))
    return encode(rgba, "PNG")


def ztxt_bomb_png() -> bytes:
    """A PNG whose compressed text chunk unpacks to 50 MB (Pillow caps text chunks)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "A" * (50 * MB), zip=True)
    return encode(Image.new("RGB", (128, 128), "gray"), "PNG", pnginfo=info)


def zip_bytes(
    members: list[tuple[str, bytes]], *, compress: bool = True, prefix: bytes = b""
) -> bytes:
    out = io.BytesIO()
    out.write(prefix)
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", method) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name: wanted here
        for name, payload in members:
            archive.writestr(zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME), payload, method)
    return out.getvalue()


def zeros_zip(count: int, size: int) -> bytes:
    """``count`` members of ``size`` zero bytes each, written in chunks (no big buffer):
    compressed about 1000:1, the bomb that reached 892 MB RSS."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(count):
            info = zipfile.ZipInfo(f"zeros_{index}.jpg", date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as member:
                chunk = bytes(MB)
                for _ in range(size // MB):
                    member.write(chunk)
    return out.getvalue()


def patch_headers(
    archive: bytes,
    local: Callable[[bytearray, int], None],
    central: Callable[[bytearray, int], None],
) -> bytes:
    """The archive with every local and central directory header patched in place."""
    patched = bytearray(archive)
    for signature, patch in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        start = patched.find(signature)
        while start != -1:
            patch(patched, start)
            start = patched.find(signature, start + 4)
    return bytes(patched)


def encrypted_zip() -> bytes:
    """A member flagged as encrypted (general purpose bit 0): zipfile wants a password."""

    def flag(offset: int) -> Callable[[bytearray, int], None]:
        def patch(data: bytearray, start: int) -> None:
            data[start + offset] |= 0x01

        return patch

    plain = zip_bytes([("secret.jpg", jpeg(selfie(0)))], compress=False)
    return patch_headers(plain, flag(6), flag(8))


def unsupported_compression_zip() -> bytes:
    """A member compressed with method 99 (WinZip AES), which zipfile cannot unpack."""

    def method(offset: int) -> Callable[[bytearray, int], None]:
        def patch(data: bytearray, start: int) -> None:
            data[start + offset : start + offset + 2] = struct.pack("<H", 99)

        return patch

    plain = zip_bytes([("aes.jpg", jpeg(selfie(0)))], compress=False)
    return patch_headers(plain, method(8), method(10))


def understated_zip() -> bytes:
    """A JPEG member whose headers declare 100 bytes while it unpacks to ~200 KB."""

    def size(offset: int) -> Callable[[bytearray, int], None]:
        def patch(data: bytearray, start: int) -> None:
            data[start + offset : start + offset + 4] = struct.pack("<I", 100)

        return patch

    return patch_headers(zip_bytes([("liar.jpg", jpeg(selfie(0)))]), size(22), size(24))


def overstated_zip() -> bytes:
    """A small member whose headers declare 500 MB: refused on what it declares."""

    def size(offset: int) -> Callable[[bytearray, int], None]:
        def patch(data: bytearray, start: int) -> None:
            data[start + offset : start + offset + 4] = struct.pack("<I", 500 * MB)

        return patch

    return patch_headers(zip_bytes([("big.jpg", jpeg(selfie(0)))]), size(22), size(24))


def renamed_local_header_zip() -> bytes:
    """The local header names the member differently from the central directory."""
    plain = zip_bytes([("aaaa.jpg", jpeg(selfie(0)))], compress=False)
    local = plain.index(b"aaaa.jpg")
    return plain[:local] + b"bbbb.jpg" + plain[local + 8 :]


def corrupt_data_zip() -> bytes:
    """A deflated member whose compressed bytes are overwritten in the middle."""
    data = bytearray(zip_bytes([("garbled.jpg", jpeg(selfie(0)))]))
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xa5" * 64
    return bytes(data)


# -- the corpus -----------------------------------------------------------------------------


def _size(index: int) -> tuple[int, int]:
    width, height = selfie(index).size
    return width, height


def _big(orientation: int | None = None) -> bytes:
    """The selfie upscaled to 6000x4800 (28.8 MP) as a camera-size JPEG."""
    big = selfie(8).resize((6000, 4800), Image.Resampling.BILINEAR)
    return jpeg(big) if orientation is None else with_orientation(big, orientation)


MEMBERS: tuple[HostileMember, ...] = (
    # Photos that must be read, however unusual.
    HostileMember("selfie.jpg", lambda: jpeg(selfie(0)), Ok(_size(0), face=True)),
    HostileMember(
        "progressive.jpg", lambda: jpeg(selfie(1), progressive=True), Ok(_size(1), face=True)
    ),
    HostileMember("selfie.png", lambda: encode(selfie(2), "PNG"), Ok(_size(2), face=True)),
    HostileMember(
        "selfie.webp", lambda: encode(selfie(3), "WEBP", quality=90), Ok(_size(3), face=True)
    ),
    HostileMember("IMG_0001.HEIC", heic, Ok(_size(2), face=True)),
    HostileMember("cmyk.jpg", lambda: jpeg(selfie(4).convert("CMYK")), Ok(_size(4), face=True)),
    HostileMember(
        "exif_rotated_6.jpg",
        lambda: with_orientation(selfie(0), 6),
        Ok(_size(0), face=True),
    ),
    HostileMember(
        "exif_rotated_8.jpg",
        lambda: with_orientation(selfie(1), 8),
        Ok(_size(1), face=True),
    ),
    HostileMember("exif_orientation_99.jpg", lambda: with_orientation(selfie(2), 99), Ok(_size(2))),
    HostileMember("corrupt_exif.jpg", corrupt_exif, Ok(_size(0), face=True)),
    HostileMember("gray16.png", gray16_png, Ok(_size(1), face=True)),
    HostileMember("palette.png", palette_png, Ok(_size(6), face=True)),
    HostileMember("transparent.png", transparent_png, Ok(_size(7), face=True)),
    HostileMember("gray_alpha.png", lambda: encode(selfie(8).convert("LA"), "PNG"), Ok(_size(8))),
    HostileMember("bilevel.png", lambda: encode(selfie(9).convert("1"), "PNG"), Ok(_size(9))),
    HostileMember("animated.png", lambda: animated("PNG"), Ok((512, 640), face=True)),
    HostileMember("animated.webp", lambda: animated("WEBP"), Ok((512, 640), face=True)),
    HostileMember("IMG_0002.JPG", mpo, Ok(_size(3), face=True)),
    HostileMember("自拍 ñ 😀.jpg", lambda: jpeg(selfie(10)), Ok(_size(10), face=True)),
    HostileMember("a/b/c/d/e/f/deep.jpg", lambda: jpeg(selfie(11)), Ok(_size(11))),
    HostileMember("long_" + "x" * 200 + ".jpg", lambda: jpeg(selfie(12)), Ok(_size(12))),
    HostileMember("camera_29mp.jpg", _big, Ok((6000, 4800), face=True)),
    HostileMember("camera_29mp_rotated.jpg", lambda: _big(6), Ok((6000, 4800), face=True)),
    HostileMember("blank_49mp.png", lambda: blank_png(7000, 7000), Ok((7000, 7000), face=False)),
    HostileMember("wide_4_to_1.png", lambda: blank_png(2048, 512), Ok((2048, 512))),
    HostileMember("small_64.png", lambda: blank_png(64, 64), Ok((64, 64))),
    # Thin, tiny and lying headers: judged on the header, never decoded.
    HostileMember(
        "thin_2x3000.png", lambda: blank_png(2, 3000), Skipped("too narrow to be a photo")
    ),
    HostileMember(
        "thin_1x40000.png", lambda: blank_png(1, 40000), Skipped("too narrow to be a photo")
    ),
    HostileMember(
        "thin_40000x1.png", lambda: blank_png(40000, 1), Skipped("too narrow to be a photo")
    ),
    HostileMember(
        "wide_4.01_to_1.png", lambda: blank_png(2053, 512), Skipped("too narrow to be a photo")
    ),
    HostileMember("tiny_1x1.png", lambda: blank_png(1, 1), Skipped("too small to be a photo")),
    HostileMember("tiny_63.jpg", lambda: jpeg(selfie(0).resize((63, 63))), Skipped("too small")),
    HostileMember(
        "header_100000x100000.png",
        lambda: lying_png(100_000, 100_000),
        Skipped("too many pixels to decode safely"),
    ),
    HostileMember(
        "header_8000x8000.png",
        lambda: lying_png(8000, 8000),
        Skipped("too many pixels to decode safely (8000x8000 is more than 50,000,000"),
    ),
    HostileMember(
        "header_65000x65000.jpg",
        lambda: lying_jpeg(65000, 65000),
        Skipped("too many pixels to decode safely"),
    ),
    HostileMember(
        "truncated_7000x7000.jpg",
        lambda: lying_jpeg(7000, 7000, keep_scan_bytes=200),
        Skipped("cannot decode: truncated (695 bytes cannot hold a 7000x7000 JPEG"),
    ),
    HostileMember(
        "truncated_closed.jpg",
        lambda: truncated(jpeg(selfie(0)), end_marker=True),
        Skipped("cannot decode: truncated (its last rows are the flat gray"),
    ),
    HostileMember(
        "truncated.jpg",
        lambda: truncated(jpeg(selfie(0)), end_marker=False),
        Skipped("cannot decode: image file is truncated"),
    ),
    HostileMember(
        "truncated.png",
        lambda: truncated(encode(selfie(1), "PNG"), end_marker=False),
        Skipped("cannot decode: "),
    ),
    HostileMember(
        "truncated.webp",
        lambda: truncated(encode(selfie(1), "WEBP"), end_marker=False),
        Skipped("cannot decode: "),
    ),
    HostileMember(
        "truncated.heic",
        lambda: truncated(heic(), end_marker=False),
        Skipped("cannot decode: "),
    ),
    HostileMember("ztxt_bomb.png", ztxt_bomb_png, Skipped("cannot decode: Decompressed data")),
    HostileMember("fake.jpg", lambda: b"\xff\xd8\xff\xe0 not really a jpeg", Skipped("cannot")),
    # Formats trainers do not take, and things that are not photos at all.
    HostileMember(
        "photo.tif", lambda: encode(selfie(0), "TIFF"), Skipped("unsupported image format TIFF")
    ),
    HostileMember(
        "animation.gif", lambda: animated("GIF"), Skipped("unsupported image format GIF")
    ),
    HostileMember(
        "photo.bmp", lambda: encode(selfie(0), "BMP"), Skipped("unsupported image format BMP")
    ),
    HostileMember(
        "icon.ico",
        lambda: encode(selfie(0).resize((64, 64)), "ICO"),
        Skipped("unsupported image format ICO"),
    ),
    HostileMember(
        "drawing.svg",
        lambda: (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="4000" '
            b'height="4000"><circle cx="50" cy="50" r="40"/></svg>'
        ),
        Skipped("unsupported image format SVG"),
    ),
    HostileMember("notes.txt", lambda: b"my best selfies", Skipped("not an image")),
    HostileMember("empty.jpg", lambda: b"", Skipped("empty file")),
    HostileMember(
        "selfies.zip",
        lambda: zip_bytes([("inner.jpg", jpeg(selfie(0)))]),
        Skipped("a ZIP inside the ZIP"),
    ),
    HostileMember("zeros_60mb.jpg", lambda: bytes(60 * MB), Skipped("not an image")),
    HostileMember(
        "zeros_100mb.jpg", lambda: bytes(100 * MB), Skipped("file too large to be a photo")
    ),
    # Names that could escape a folder or are not the user's photos.
    HostileMember("../escape.jpg", lambda: jpeg(selfie(0)), Skipped("path with '..'")),
    HostileMember("/etc/absolute.jpg", lambda: jpeg(selfie(0)), Skipped("absolute path")),
    HostileMember("C:\\Users\\absolute.jpg", lambda: jpeg(selfie(0)), Skipped("absolute path")),
    HostileMember("folder/", lambda: b"", Skipped("directory")),
    HostileMember("__MACOSX/._selfie.jpg", lambda: b"\x00\x05\x16\x07", Skipped("macOS")),
    HostileMember(".hidden.jpg", lambda: jpeg(selfie(0)), Skipped("hidden file")),
)


ARCHIVES: tuple[HostileZip, ...] = (
    HostileZip("not_a_zip", lambda: b"not a zip at all", Rejected("not a readable ZIP")),
    HostileZip("no_bytes", lambda: b"", Rejected("not a readable ZIP")),
    HostileZip("a_jpeg_not_a_zip", lambda: jpeg(selfie(0)), Rejected("not a readable ZIP")),
    HostileZip(
        "cut_in_half",
        lambda: truncated(zip_bytes([("a.jpg", jpeg(selfie(0)))]), end_marker=False),
        Rejected("not a readable ZIP"),
    ),
    HostileZip("empty_zip", lambda: zip_bytes([]), ()),
    HostileZip(
        "10000_entries",
        lambda: zip_bytes([(f"{n:05d}.jpg", b"x") for n in range(10_000)]),
        Rejected("holds 10000 entries, more than the 1000 allowed"),
    ),
    HostileZip("declares_500mb", overstated_zip, Rejected("would unpack to 524,288,000 bytes")),
    HostileZip(
        "zeros_6x60mb",
        lambda: zeros_zip(6, 60 * MB),
        tuple((f"zeros_{n}.jpg", Skipped("not an image")) for n in range(6)),
    ),
    HostileZip(
        "understated_size", understated_zip, (("liar.jpg", Skipped("cannot unpack: Bad CRC")),)
    ),
    HostileZip(
        "encrypted",
        encrypted_zip,
        (("secret.jpg", Skipped("cannot unpack: encrypted")),),
    ),
    HostileZip(
        "aes_compression",
        unsupported_compression_zip,
        (("aes.jpg", Skipped("cannot unpack: unsupported compression")),),
    ),
    HostileZip(
        "renamed_local_header",
        renamed_local_header_zip,
        (("aaaa.jpg", Skipped("cannot unpack: File name in directory")),),
    ),
    HostileZip(
        "garbled_data", corrupt_data_zip, (("garbled.jpg", Skipped("cannot unpack: Bad CRC-32")),)
    ),
    HostileZip(
        "nested_only",
        lambda: zip_bytes([("inner.zip", zip_bytes([("a.jpg", jpeg(selfie(0)))]))]),
        (("inner.zip", Skipped("a ZIP inside the ZIP")),),
    ),
    HostileZip(
        "junk_before_the_zip",
        lambda: zip_bytes([("a.jpg", jpeg(selfie(0)))], prefix=b"MZ" + bytes(4094)),
        (("a.jpg", Ok(_size(0), face=True)),),
    ),
    HostileZip(
        "same_name_twice",
        lambda: zip_bytes([("a.jpg", jpeg(selfie(0))), ("a.jpg", jpeg(selfie(1)))]),
        (("a.jpg", Ok(_size(0), face=True)), ("a.jpg", Ok(_size(1), face=True))),
    ),
    HostileZip(
        "more_pixels_than_the_budget",
        lambda: zip_bytes([(f"{n}.jpg", jpeg(selfie(n))) for n in range(3)]),
        Rejected("the photos in the ZIP add up to more than 3,000,000 pixels (reached at 2.jpg)"),
        limits=ZipLimits(max_total_pixels=3_000_000),
    ),
    HostileZip(
        "thin_only",
        lambda: zip_bytes([("thin.png", blank_png(2, 3000))]),
        (("thin.png", Skipped("too narrow to be a photo")),),
    ),
)


@functools.cache
def corpus_zip() -> bytes:
    """Every member in one ZIP, in ``MEMBERS`` order (about 21 MB; made once)."""
    return zip_bytes([(member.name, member.payload()) for member in MEMBERS])


def zip_alone(member: HostileMember) -> bytes:
    """A ZIP holding just ``member`` (made each time: the 100 MB of zeros is not kept)."""
    return zip_bytes([(member.name, member.payload())])


def usable(verdicts: tuple[tuple[str, Ok | Skipped], ...]) -> int:
    return sum(1 for _, verdict in verdicts if isinstance(verdict, Ok))
