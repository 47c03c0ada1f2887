"""Reading training ZIPs: what is kept, what is skipped and why, and how quality is scored."""

from __future__ import annotations

import io
import json
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageFilter
from skimage import data as skdata

from core.errors import DataRejected
from core.imaging import ZipLimits
from core.sandbox.dataset import DatasetProfile, dataset_quality, read_training_zip
from tests.imaging.corpus import blank_png, lying_jpeg

# skimage.data's loaders are unannotated, hence the ignores. Astronaut: a real 512x512
# portrait; coffee: 600x400; chelsea: 451x300.
ASTRONAUT = Image.fromarray(skdata.astronaut())  # type: ignore[no-untyped-call]
COFFEE = Image.fromarray(skdata.coffee())  # type: ignore[no-untyped-call]
CHELSEA = Image.fromarray(skdata.chelsea())  # type: ignore[no-untyped-call]


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def zip_of(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members:
            archive.writestr(name, payload)
    return out.getvalue()


def photo_set(image: Image.Image, count: int, **options: object) -> bytes:
    photo = encode(image, "JPEG", **options)
    return zip_of([(f"selfie_{n:02d}.jpg", photo) for n in range(count)])


@pytest.fixture(scope="module")
def sharp_1024() -> Image.Image:
    return ASTRONAUT.resize((1024, 1024), Image.Resampling.LANCZOS)


@pytest.fixture(scope="module")
def good_set(sharp_1024: Image.Image) -> tuple[DatasetProfile, list[bytes]]:
    return read_training_zip(photo_set(sharp_1024, 15, quality=95))


# -- what is kept ---------------------------------------------------------------------------


def test_counts_and_median_short_side_across_formats() -> None:
    archive = zip_of(
        [
            ("a/astronaut.png", encode(ASTRONAUT, "PNG")),
            ("coffee.jpg", encode(COFFEE, quality=90)),
            ("chelsea.webp", encode(CHELSEA, "WEBP", quality=90)),
        ]
    )
    profile, photos = read_training_zip(archive)
    assert profile.image_count == 3 == len(photos)
    assert profile.median_short_side == 400  # short sides 512, 400, 300
    assert profile.skipped == ()
    assert all(photo[:3] == b"\xff\xd8\xff" for photo in photos)  # re-encoded as JPEG


def test_stored_photos_are_downscaled_never_upscaled() -> None:
    big = ASTRONAUT.resize((2048, 1536))
    archive = zip_of([("big.jpg", encode(big)), ("small.jpg", encode(COFFEE))])
    profile, photos = read_training_zip(archive)
    sizes = [Image.open(io.BytesIO(photo)).size for photo in photos]
    assert sizes == [(1024, 768), (600, 400)]
    assert profile.median_short_side == (1536 + 400) // 2  # measured before downscaling


def test_stored_long_side_is_configurable() -> None:
    _, photos = read_training_zip(zip_of([("c.jpg", encode(COFFEE))]), stored_long_side=300)
    assert Image.open(io.BytesIO(photos[0])).size == (300, 200)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    archive = zip_of([("portrait.jpg", encode(COFFEE, exif=exif.tobytes()))])
    _, photos = read_training_zip(archive)
    assert Image.open(io.BytesIO(photos[0])).size == (400, 600)


def test_phone_mpo_jpeg_is_accepted() -> None:
    mpo = encode(COFFEE, "MPO", save_all=True, append_images=[CHELSEA])
    assert Image.open(io.BytesIO(mpo)).format == "MPO"
    profile, photos = read_training_zip(zip_of([("IMG_0002.JPG", mpo)]))
    assert profile.image_count == 1
    assert Image.open(io.BytesIO(photos[0])).size == (600, 400)  # the first frame


def test_transparent_png_is_flattened_onto_white() -> None:
    clear = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    _, photos = read_training_zip(zip_of([("clear.png", encode(clear, "PNG"))]))
    pixel = Image.open(io.BytesIO(photos[0])).getpixel((32, 32))
    assert isinstance(pixel, tuple)
    assert min(pixel) > 245


def test_heic_is_accepted() -> None:
    import pillow_heif  # a requirement: iPhone photos arrive as HEIC

    out = io.BytesIO()
    pillow_heif.from_pillow(COFFEE).save(out, quality=80)
    profile, photos = read_training_zip(zip_of([("IMG_0001.HEIC", out.getvalue())]))
    assert profile.image_count == 1
    assert Image.open(io.BytesIO(photos[0])).size == (600, 400)


# -- how quality is scored ------------------------------------------------------------------


def test_good_set_scores_full_quality(good_set: tuple[DatasetProfile, list[bytes]]) -> None:
    profile, photos = good_set
    assert (profile.image_count, profile.median_short_side) == (15, 1024)
    assert profile.median_sharpness > 150
    assert profile.quality == pytest.approx(1.0)
    assert len(photos) == 15


def test_blurry_set_scores_lower_sharpness_and_quality(
    sharp_1024: Image.Image, good_set: tuple[DatasetProfile, list[bytes]]
) -> None:
    blurry = sharp_1024.filter(ImageFilter.GaussianBlur(4))
    profile, _ = read_training_zip(photo_set(blurry, 15, quality=95))
    good, _ = good_set
    assert profile.median_sharpness < good.median_sharpness / 10
    assert profile.quality < 0.5 * good.quality


def test_small_set_scores_lower_quality(
    sharp_1024: Image.Image, good_set: tuple[DatasetProfile, list[bytes]]
) -> None:
    profile, _ = read_training_zip(photo_set(sharp_1024, 5, quality=95))
    good, _ = good_set
    assert profile.image_count == 5
    assert profile.median_sharpness == pytest.approx(good.median_sharpness)
    assert profile.quality < 0.3  # (5/15) ** 1.5 = 0.19


@pytest.mark.parametrize(
    ("count", "short_side", "sharpness", "expected"),
    [
        (15, 1024, 150.0, 1.0),
        (40, 4000, 900.0, 1.0),  # every factor is capped at 1
        (10, 1024, 150.0, (10 / 15) ** 1.5),
        (5, 1024, 150.0, (5 / 15) ** 1.5),
        (15, 512, 150.0, 0.5),
        (15, 1024, 37.5, 0.5),  # sqrt(37.5 / 150)
        (5, 600, 37.5, (5 / 15) ** 1.5 * 600 / 1024 * 0.5),
        (0, 1024, 150.0, 0.0),
    ],
)
def test_quality_formula(count: int, short_side: int, sharpness: float, expected: float) -> None:
    assert dataset_quality(count, short_side, sharpness) == pytest.approx(expected)


def test_squeezed_set_scores_lower_quality(
    good_set: tuple[DatasetProfile, list[bytes]],
) -> None:
    squeezed = ASTRONAUT.resize((600, 600), Image.Resampling.LANCZOS)
    profile, photos = read_training_zip(photo_set(squeezed, 15, quality=55))
    good, _ = good_set
    assert profile.median_short_side == 600
    assert profile.quality < 0.7 * good.quality
    assert Image.open(io.BytesIO(photos[0])).size == (600, 600)


# -- what is skipped, and why ---------------------------------------------------------------


def test_unsafe_and_junk_names_are_skipped_with_reasons() -> None:
    photo = encode(COFFEE)
    archive = zip_of(
        [
            ("../escape.jpg", photo),
            ("nested/../../escape.jpg", photo),
            ("/etc/absolute.jpg", photo),
            ("C:\\Users\\absolute.jpg", photo),
            ("folder/", b""),
            ("__MACOSX/._selfie.jpg", photo),
            (".DS_Store", b"\x00\x00\x00\x01Bud1"),
            ("hidden/.thumb.jpg", photo),
            ("ok.jpg", photo),
        ]
    )
    profile, photos = read_training_zip(archive)
    assert profile.image_count == 1 == len(photos)
    reasons = dict(profile.skipped)
    assert reasons == {
        "../escape.jpg": "path with '..' components",
        "nested/../../escape.jpg": "path with '..' components",
        "/etc/absolute.jpg": "absolute path",
        "C:\\Users\\absolute.jpg": "absolute path",
        "folder/": "directory",
        "__MACOSX/._selfie.jpg": "macOS resource fork (__MACOSX/)",
        ".DS_Store": "hidden file",
        "hidden/.thumb.jpg": "hidden file",
    }


def test_non_images_and_broken_images_are_skipped_with_reasons() -> None:
    whole = encode(ASTRONAUT, quality=90)
    archive = zip_of(
        [
            ("notes.txt", b"my best selfies"),
            ("fake.jpg", b"\xff\xd8\xff\xe0 not really a jpeg"),
            ("truncated.jpg", whole[: len(whole) // 2]),
            ("animation.gif", encode(Image.new("RGB", (32, 32), "red"), "GIF")),
            ("ok.jpg", whole),
        ]
    )
    profile, _ = read_training_zip(archive)
    reasons = dict(profile.skipped)
    assert profile.image_count == 1
    assert reasons["notes.txt"] == "not an image"
    assert reasons["fake.jpg"].startswith("cannot decode: ")
    assert reasons["truncated.jpg"].startswith("cannot decode: ")
    assert "truncated" in reasons["truncated.jpg"]
    assert reasons["animation.gif"].startswith("unsupported image format GIF")


def test_decompression_bomb_images_are_skipped() -> None:
    archive = zip_of([("huge.png", encode(ASTRONAUT, "PNG")), ("ok.jpg", encode(CHELSEA))])
    profile, _ = read_training_zip(archive, limits=ZipLimits(max_image_pixels=200_000))
    assert profile.image_count == 1
    assert dict(profile.skipped)["huge.png"].startswith("too many pixels to decode safely")


def test_no_usable_photos_is_rejected_with_the_reasons() -> None:
    archive = zip_of([("notes.txt", b"hello"), ("../x.jpg", encode(COFFEE))])
    with pytest.raises(DataRejected, match="no usable photos") as caught:
        read_training_zip(archive)
    assert "notes.txt: not an image" in str(caught.value)
    assert "../x.jpg: path with '..' components" in str(caught.value)


def test_empty_zip_is_rejected() -> None:
    with pytest.raises(DataRejected, match=r"no usable photos.*the ZIP is empty"):
        read_training_zip(zip_of([]))


@pytest.mark.parametrize("payload", [b"", b"not a zip at all", encode(COFFEE)])
def test_non_zip_is_rejected(payload: bytes) -> None:
    with pytest.raises(DataRejected, match="not a readable ZIP"):
        read_training_zip(payload)


def test_thin_tiny_and_lying_photos_are_skipped_on_their_headers() -> None:
    """Each used to cost gigabytes or crash the trainer (a plain-text HTTP 500)."""
    archive = zip_of(
        [
            ("thin.png", blank_png(2, 3000)),
            ("thinner.png", blank_png(1, 40000)),
            ("dot.png", blank_png(1, 1)),
            ("claims_7000.jpg", lying_jpeg(7000, 7000, keep_scan_bytes=200)),
            ("ok.jpg", encode(COFFEE)),
        ]
    )
    profile, photos = read_training_zip(archive)
    assert profile.image_count == 1 == len(photos)
    reasons = dict(profile.skipped)
    assert reasons["thin.png"] == "too narrow to be a photo (2x3000 is more than 4:1)"
    assert reasons["thinner.png"] == "too narrow to be a photo (1x40000 is more than 4:1)"
    assert reasons["dot.png"].startswith("too small to be a photo (1x1")
    assert reasons["claims_7000.jpg"].startswith("cannot decode: truncated (")


def test_a_jpeg_cut_short_and_closed_with_an_end_marker_is_skipped() -> None:
    whole = encode(ASTRONAUT, quality=90)
    archive = zip_of([("cut.jpg", whole[: len(whole) // 2] + b"\xff\xd9"), ("ok.jpg", whole)])
    profile, _ = read_training_zip(archive)
    assert profile.image_count == 1
    assert dict(profile.skipped)["cut.jpg"].startswith("cannot decode: truncated (its last rows")


def test_a_16_bit_png_is_read_by_its_full_range_not_clipped_to_white() -> None:
    gray = ASTRONAUT.convert("L")
    sixteen = Image.fromarray(np.asarray(gray, dtype=np.uint16) * 257)
    _, photos = read_training_zip(zip_of([("gray16.png", encode(sixteen, "PNG"))]))
    stored = np.asarray(Image.open(io.BytesIO(photos[0])).convert("L"), dtype=np.float64)
    assert abs(stored.mean() - np.asarray(gray).mean()) < 2


def test_a_camera_size_photo_is_measured_at_its_own_size_and_decoded_small() -> None:
    big = ASTRONAUT.resize((6000, 4000))
    profile, photos = read_training_zip(zip_of([("big.jpg", encode(big, quality=90))]))
    assert profile.median_short_side == 4000
    width, height = Image.open(io.BytesIO(photos[0])).size
    assert width == 1024 and abs(height - 683) <= 1  # via a 2048 px working copy


def test_photos_adding_up_past_the_pixel_budget_are_refused() -> None:
    archive = photo_set(COFFEE, 5)  # 240,000 pixels each
    limits = ZipLimits(max_total_pixels=1_000_000)
    with pytest.raises(DataRejected, match=r"add up to more than 1,000,000 pixels"):
        read_training_zip(archive, limits=limits)
    assert read_training_zip(photo_set(COFFEE, 4), limits=limits)[0].image_count == 4


# -- archive limits -------------------------------------------------------------------------


def test_too_many_members_is_rejected() -> None:
    archive = zip_of([(f"{n}.jpg", b"x") for n in range(4)])
    with pytest.raises(DataRejected, match="holds 4 entries, more than the 3 allowed"):
        read_training_zip(archive, limits=ZipLimits(max_members=3))
    assert (
        read_training_zip(photo_set(COFFEE, 3), limits=ZipLimits(max_members=3))[0].image_count == 3
    )


def test_zip_bomb_declaring_past_the_cap_is_rejected() -> None:
    bomb = zip_of([("bomb.jpg", bytes(2 * 1024 * 1024))])
    assert len(bomb) < 10_000  # zeros compress ~1000:1
    with pytest.raises(DataRejected, match="zip bomb"):
        read_training_zip(bomb, limits=ZipLimits(max_uncompressed_bytes=1024 * 1024))


def test_many_members_adding_up_past_the_cap_are_rejected() -> None:
    archive = zip_of([(f"{n}.jpg", bytes(300_000)) for n in range(4)])
    with pytest.raises(DataRejected, match="would unpack to 1,200,000 bytes"):
        read_training_zip(archive, limits=ZipLimits(max_uncompressed_bytes=1_000_000))


def understate_sizes(archive: bytes, size: int) -> bytes:
    """The archive with every member's uncompressed size rewritten as ``size``."""
    patched = bytearray(archive)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = patched.find(signature)
        while start != -1:
            patched[start + offset : start + offset + 4] = struct.pack("<I", size)
            start = patched.find(signature, start + 4)
    return bytes(patched)


def test_member_expanding_past_its_declared_size_is_not_used() -> None:
    liar = understate_sizes(zip_of([("bomb.jpg", bytes(4 * 1024 * 1024))]), 100)
    assert zipfile.ZipFile(io.BytesIO(liar)).infolist()[0].file_size == 100
    with pytest.raises(DataRejected, match="no usable photos") as caught:
        read_training_zip(liar, limits=ZipLimits(max_uncompressed_bytes=1024 * 1024))
    assert "bomb.jpg: cannot unpack" in str(caught.value)


# -- the profile as stored ------------------------------------------------------------------


def test_profile_round_trips_through_json() -> None:
    archive = zip_of([("ok.jpg", encode(COFFEE)), ("notes.txt", b"hi")])
    profile, _ = read_training_zip(archive)
    stored = json.loads(json.dumps(profile.to_dict()))
    assert DatasetProfile.from_dict(stored) == profile
    assert stored["skipped"] == [["notes.txt", "not an image"]]


def test_malformed_stored_profile_is_rejected() -> None:
    with pytest.raises(DataRejected, match="stored dataset profile is malformed"):
        DatasetProfile.from_dict({"image_count": 3})
