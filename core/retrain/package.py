"""The training ZIP a retrain uploads: every kept photo at full quality.

The app's browser squeezed photos until the ZIP was under 4 MB (down to 600 px at JPEG
quality 55, ``app-facts.md``), and the retrains that followed learnt softer faces. Here
each photo is decoded as every photo is (``core.imaging.decode_photo``: bounded, EXIF
orientation applied), kept at most ``PACKAGE_LONG_SIDE`` px on its long side (the trainer
works at 1024 px), and written as a JPEG at ``PACKAGE_JPEG_QUALITY`` with no metadata
(no EXIF, GPS or ICC profile leaves the console). The ZIP stores the JPEGs as they are
(they do not compress) under stable names, so the same photos always give the same bytes
and the same SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import DataRejected
from core.imaging import WORKING_LONG_SIDE, SkippedMember, decode_photo

PACKAGE_LONG_SIDE = WORKING_LONG_SIDE  # 2048: the decoded copy is never larger
PACKAGE_JPEG_QUALITY = 95  # no squeezing: the issue asks for 90 or more
# A fixed timestamp: the same photos give a byte-identical ZIP (and SHA-256).
ZIP_DATE_TIME = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class PackagedZip:
    content: bytes
    sha256: str
    names: tuple[str, ...]  # the members, in order

    @property
    def size(self) -> int:
        return len(self.content)


def reencode(name: str, content: bytes) -> bytes:
    """The photo as a full-quality JPEG, upright, without metadata; ``DataRejected`` with
    the reason when it cannot be read (the checks rejected it already)."""
    decoded = decode_photo(name, io.BytesIO(content), byte_size=len(content))
    if isinstance(decoded, SkippedMember):
        raise DataRejected(f"{name}: {decoded.reason}")
    out = io.BytesIO()
    # No exif= and no icc_profile=: Pillow writes neither unless asked.
    decoded.image.save(out, format="JPEG", quality=PACKAGE_JPEG_QUALITY, subsampling=0)
    decoded.image.close()
    return out.getvalue()


def package_photos(photos: Sequence[tuple[str, bytes]]) -> PackagedZip:
    """The ZIP of ``photos`` (name, file bytes), re-encoded, as ``photo_NN.jpg``."""
    if not photos:
        raise DataRejected("No photos to package.")
    buffer = io.BytesIO()
    names = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index, (name, content) in enumerate(photos):
            member = f"photo_{index + 1:02d}.jpg"
            archive.writestr(
                zipfile.ZipInfo(member, date_time=ZIP_DATE_TIME), reencode(name, content)
            )
            names.append(member)
    content = buffer.getvalue()
    return PackagedZip(content, hashlib.sha256(content).hexdigest(), tuple(names))
