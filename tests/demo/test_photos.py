"""Demo photos: deterministic, one real face each, sized and degraded as asked."""

from __future__ import annotations

import io
import itertools
import zipfile

import imagehash
import pytest
from PIL import Image

from core.demo.photos import PhotoSpec, face_photo, render_photo, selfie_zip, zip_of
from core.imaging.faces import SAME_PERSON_DISTANCE, FaceReader, distance
from core.sandbox.dataset import read_training_zip


def size(photo: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(photo)).size


def test_same_arguments_give_the_same_bytes_and_others_differ() -> None:
    assert face_photo(3, person=7) == face_photo(3, person=7)
    assert face_photo(3, person=7) != face_photo(4, person=7)
    assert face_photo(3, person=7) != face_photo(3, person=8)
    assert selfie_zip(3, person=2) == selfie_zip(3, person=2)


@pytest.mark.parametrize("person", [0, 5, 11])
def test_good_photos_are_at_least_1280_by_1024(person: int) -> None:
    for index in range(12):
        width, height = size(face_photo(index, person=person))
        assert max(width, height) == 1280 and min(width, height) >= 1024


def test_squeezed_photos_have_a_600_px_long_side() -> None:
    spec = PhotoSpec(person=1, index=2, long_side=600, jpeg_quality=55)
    squeezed = render_photo(spec)
    assert max(size(squeezed)) == 600
    assert len(squeezed) < len(face_photo(2, person=1)) / 4


def test_every_photo_holds_exactly_one_face_of_the_same_person(
    face_reader: FaceReader,
) -> None:
    faces = []
    for person, index in [(0, 0), (1, 5), (4, 9), (9, 13), (13, 17), (16, 19)]:
        found = face_reader.read(face_photo(index, person=person))
        assert len(found) == 1, (person, index)
        faces.append(found[0])
    assert all(distance(faces[0], face) < SAME_PERSON_DISTANCE for face in faces[1:])


def test_the_sandbox_rates_good_datasets_full_and_degraded_ones_low() -> None:
    good, _ = read_training_zip(selfie_zip(15, person=3))
    blurry, _ = read_training_zip(selfie_zip(5, person=3, blur=4.0))
    squeezed, _ = read_training_zip(selfie_zip(15, person=3, long_side=600, jpeg_quality=55))
    assert good.quality == 1.0 and good.median_short_side >= 1024
    assert blurry.quality < 0.1
    assert squeezed.median_short_side < 600 and squeezed.quality < 0.6


def test_zip_names_the_photos_in_order() -> None:
    archive = zipfile.ZipFile(io.BytesIO(zip_of([b"a", b"b"], prefix="x/")))
    assert archive.namelist() == ["x/image_00.jpg", "x/image_01.jpg"]


def test_shots_of_one_person_are_not_near_duplicates() -> None:
    hashes = [
        imagehash.phash(Image.open(io.BytesIO(face_photo(index, person=3)))) for index in range(30)
    ]
    closest = min(one - other for one, other in itertools.combinations(hashes, 2))
    assert closest > 6  # perceptual-hash bits of 64; near-duplicate checkers flag <= 6
