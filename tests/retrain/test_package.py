"""The retrain ZIP: full quality (no squeezing), upright, no metadata, the same bytes for
the same photos."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from core.errors import DataRejected
from core.imaging import jpeg_quality_from_table
from core.retrain.package import PACKAGE_JPEG_QUALITY, package_photos
from tests.photos import face_photo

pytestmark = pytest.mark.timeout(120)


def _rotated_with_exif(width: int, height: int) -> bytes:
    """A landscape JPEG whose EXIF says "rotate 90° clockwise" (orientation 6), with GPS."""
    image = Image.new("RGB", (width, height), (200, 120, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F] = "PhoneMaker"  # Make
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80, exif=exif)
    return out.getvalue()


def _members(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_photos_are_upright_full_quality_and_carry_no_metadata() -> None:
    squeezed = face_photo(1, long_side=4000, jpeg_quality=70)
    packaged = package_photos([("a.jpg", _rotated_with_exif(1600, 1200)), ("b.jpg", squeezed)])
    members = _members(packaged.content)
    assert list(members) == ["photo_01.jpg", "photo_02.jpg"] == list(packaged.names)
    for content in members.values():
        with Image.open(io.BytesIO(content)) as image:
            assert image.format == "JPEG"
            assert not image.getexif()  # no orientation, maker or GPS left
            assert "icc_profile" not in image.info
            tables = getattr(image, "quantization", None) or {}
            quality = jpeg_quality_from_table(tables[0])
            assert quality is not None and quality >= 90
    with Image.open(io.BytesIO(members["photo_01.jpg"])) as upright:
        assert upright.size == (1200, 1600)  # the EXIF rotation applied to the pixels
    with Image.open(io.BytesIO(members["photo_02.jpg"])) as large:
        assert max(large.size) == 2048  # at most 2048 px, never squeezed below it
    assert PACKAGE_JPEG_QUALITY >= 90


def test_the_same_photos_give_the_same_zip() -> None:
    photos = [(f"{index}.jpg", face_photo(index, long_side=900)) for index in range(3)]
    assert package_photos(photos).sha256 == package_photos(list(photos)).sha256
    assert package_photos(photos).sha256 != package_photos(photos[:2]).sha256


def test_a_photo_that_cannot_be_read_is_named() -> None:
    with pytest.raises(DataRejected, match=r"^broken\.jpg: "):
        package_photos([("ok.jpg", face_photo(0)), ("broken.jpg", b"\xff\xd8\xff\xe0 not a jpeg")])
