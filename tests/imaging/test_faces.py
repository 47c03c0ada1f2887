"""Faces with dlib: only detections over the score threshold count, the face's own
sharpness decides "blurry", and files are decoded as training photos are."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from skimage import data as skdata

from core.demo.photos import PhotoSpec, render_photo
from core.errors import DataRejected
from core.imaging import ZipPhoto, decode_photo
from core.imaging.faces import MIN_FACE_SCORE, FaceReader
from core.ledger.photo_facts import judge_photos, measure_photo, photo_check
from tests.imaging.corpus import blank_png, gray16_png, jpeg, selfie, with_orientation

# The unpainted portrait: the demo world paints the suit's badges out, this keeps them.
ASTRONAUT = Image.fromarray(skdata.astronaut())  # type: ignore[no-untyped-call]


def decoded(payload: bytes, name: str = "photo.jpg") -> ZipPhoto:
    photo = decode_photo(name, io.BytesIO(payload), byte_size=len(payload))
    assert isinstance(photo, ZipPhoto), photo
    return photo


def test_the_mission_patch_is_not_a_second_face(face_reader: FaceReader) -> None:
    everything = face_reader.read_image(ASTRONAUT, min_score=0.0)  # dlib's own cut-off
    assert [round(face.score, 2) for face in everything] == [1.16, 0.12]
    face, patch = everything
    assert patch.top > face.bottom  # on the suit, below the face
    assert patch.score < MIN_FACE_SCORE < face.score
    assert face_reader.read_image(ASTRONAUT) == [face]


@pytest.mark.parametrize(
    "spec",
    [
        PhotoSpec(person=0, index=0),
        PhotoSpec(person=4, index=9),
        PhotoSpec(person=1, index=16, blur=4.0),  # the blurry persona's kind of upload
        PhotoSpec(person=9, index=20, blur=4.0),
        PhotoSpec(person=6, index=3, long_side=600, jpeg_quality=55),
    ],
    ids=str,
)
def test_demo_faces_score_over_the_threshold(spec: PhotoSpec, face_reader: FaceReader) -> None:
    faces = face_reader.read_image(decoded(render_photo(spec)).image)
    assert len(faces) == 1
    assert faces[0].score > MIN_FACE_SCORE


def blurred_face_on_sharp_background(face_reader: FaceReader) -> bytes:
    """A demo selfie whose head is blurred (6 px) while the rest gains sharp grain: a
    camera that focused on the wall behind."""
    photo = selfie(3).copy()
    (face,) = face_reader.read_image(photo)
    head = (
        face.left - 0.3 * face.width,
        face.top - 0.5 * face.height,
        face.right + 0.3 * face.width,
        face.bottom + 0.3 * face.height,
    )
    mask = Image.new("L", photo.size, 0)
    ImageDraw.Draw(mask).ellipse(head, fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(8))
    photo.paste(photo.filter(ImageFilter.GaussianBlur(6)), mask=mask)
    grain = np.random.default_rng(0).normal(0.0, 25.0, photo.size[::-1])[..., None]
    outside = 1.0 - np.asarray(mask, dtype=np.float64)[..., None] / 255.0
    pixels = np.asarray(photo, dtype=np.float64) + grain * outside
    return jpeg(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)))


def test_a_blurred_face_on_a_sharp_background_is_blurry(face_reader: FaceReader) -> None:
    photo = decoded(blurred_face_on_sharp_background(face_reader))
    measure = measure_photo(photo, face_reader)
    assert measure.face_count == 1
    assert measure.photo_sharpness is not None and measure.photo_sharpness > 500
    assert measure.sharpness < photo_check("blurry_below_sharpness") / 2
    (verdict,) = judge_photos([measure])
    assert verdict.failing == ("blurry",)


def test_a_sharp_face_measures_sharp(face_reader: FaceReader) -> None:
    measure = measure_photo(decoded(jpeg(selfie(3))), face_reader)
    assert measure.face_count == 1
    assert measure.sharpness > 3 * photo_check("blurry_below_sharpness")


def test_a_file_is_decoded_as_training_photos_are(face_reader: FaceReader) -> None:
    # 16-bit gray read by its full range (Pillow alone made it white), EXIF applied.
    assert len(face_reader.read(gray16_png())) == 1
    (face,) = face_reader.read(with_orientation(selfie(0), 6))
    assert face.height > face.width * 0.8  # found upright, so the photo was turned
    with pytest.raises(DataRejected, match="the photo cannot be read: not an image"):
        face_reader.read(b"not an image")
    with pytest.raises(DataRejected, match="too narrow"):
        face_reader.read(blank_png(1, 40000))


def test_boxes_are_in_the_files_own_pixels(face_reader: FaceReader) -> None:
    small = selfie(8)
    big = small.resize((6000, 4800), Image.Resampling.BILINEAR)
    (at_1280,) = face_reader.read(jpeg(small))
    (at_6000,) = face_reader.read(jpeg(big))  # decoded at 2048 px, boxes scaled back
    scale = 6000 / 1280
    assert at_6000.left == pytest.approx(at_1280.left * scale, rel=0.1)
    assert at_6000.width == pytest.approx(at_1280.width * scale, rel=0.1)


@pytest.mark.parametrize("size", [(1, 40000), (40000, 1), (1, 1), (3, 5)])
def test_thin_and_tiny_images_have_no_face_and_do_not_crash(
    size: tuple[int, int], face_reader: FaceReader
) -> None:
    assert face_reader.read_image(Image.new("RGB", size, "white")) == []
