"""Sandbox renders: deterministic, the right size, and measurably as good as their dataset.

The metrics here stand in for the console's scoring: variance of the Laplacian for
sharpness, dlib's frontal face detector for "a face was found", and for likeness the
normalised correlation of 64x64 grayscale against the source photo, taking the best
over the framings a render may use (zoom 1.0-1.2, any offset, mirrored or not), since
a face embedding does not care about framing either.
"""

from __future__ import annotations

import functools
import io
import zipfile
from typing import Any

import dlib
import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps
from skimage import data as skdata

from core.errors import DataRejected
from core.sandbox.dataset import DatasetProfile, read_training_zip
from core.sandbox.render import RenderRequest, output_size, render_prediction

# skimage.data's loaders are unannotated, hence the ignores. Astronaut: a real 512x512
# portrait dlib finds; coffee: 600x400, no face.
ASTRONAUT = Image.fromarray(skdata.astronaut())  # type: ignore[no-untyped-call]
COFFEE = Image.fromarray(skdata.coffee())  # type: ignore[no-untyped-call]
SOURCES = {"astronaut": ASTRONAUT, "coffee": COFFEE}
PROMPT = "a photo of TOK as an astronaut in Paris, golden hour"
SEEDS = (0, 1, 2)
ASPECTS = ("1:1", "4:5", "16:9")

Dataset = tuple[list[bytes], DatasetProfile]
FACE_DETECTOR = dlib.get_frontal_face_detector()


# -- metrics --------------------------------------------------------------------------------


def decode(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def sharpness(image: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian of the grayscale image."""
    gray = np.asarray(image.convert("L"), dtype=np.float64)
    laplacian = (
        gray[1:-1, :-2] + gray[1:-1, 2:] + gray[:-2, 1:-1] + gray[2:, 1:-1] - 4.0 * gray[1:-1, 1:-1]
    )
    return float(laplacian.var())


def unit_vector(gray_64: Image.Image) -> np.ndarray[Any, np.dtype[np.float64]]:
    values = np.asarray(gray_64, dtype=np.float64).ravel()
    centred = values - np.float64(values.mean())  # mean() is typed Any; the scalar is float64
    return centred / np.linalg.norm(centred)


@functools.cache
def framings(source: str, ratio: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Unit 64x64 grayscale vectors of every framing of a source photo a render might show."""
    gray = SOURCES[source].convert("L")
    scale = 128 / min(gray.size)  # crops are cut from a 128 px copy: 10x faster, as good
    small = (round(gray.width * scale), round(gray.height * scale))
    gray = gray.resize(small, Image.Resampling.BOX)
    vectors = []
    for candidate in (gray, ImageOps.mirror(gray)):
        for zoom in np.linspace(1.0, 1.2, 5):
            width = min(candidate.width, candidate.height * ratio) / zoom
            height = width / ratio
            for across in np.linspace(0.0, 1.0, 9):
                for down in np.linspace(0.0, 1.0, 9):
                    left = (candidate.width - width) * across
                    top = (candidate.height - height) * down
                    box = (left, top, left + width, top + height)
                    crop = candidate.resize((64, 64), Image.Resampling.BOX, box=box)
                    vectors.append(unit_vector(crop))
    return np.stack(vectors)


@pytest.fixture(scope="module")
def astronaut_framings() -> np.ndarray[Any, np.dtype[np.float64]]:
    return framings("astronaut", 1.0)


def similarity(image: Image.Image, source_framings: np.ndarray[Any, np.dtype[np.float64]]) -> float:
    rendered = unit_vector(image.convert("L").resize((64, 64), Image.Resampling.BOX))
    return float((source_framings @ rendered).max())


def faces(image: Image.Image, upsample: int = 1) -> int:
    """Faces dlib finds; upsampling once also finds faces down to ~40 px (the strict test)."""
    return len(FACE_DETECTOR(np.asarray(image), upsample))


# -- datasets -------------------------------------------------------------------------------


def dataset(image: Image.Image, count: int, quality: int = 95) -> Dataset:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        for n in range(count):
            writer.writestr(f"selfie_{n:02d}.jpg", out.getvalue())
    profile, photos = read_training_zip(archive.getvalue())
    return photos, profile


@pytest.fixture(scope="module")
def sharp_1024() -> Image.Image:
    return ASTRONAUT.resize((1024, 1024), Image.Resampling.LANCZOS)


@pytest.fixture(scope="module")
def good(sharp_1024: Image.Image) -> Dataset:
    return dataset(sharp_1024, 15)


@pytest.fixture(scope="module")
def weak_datasets(sharp_1024: Image.Image) -> dict[str, Dataset]:
    return {
        "small": dataset(sharp_1024, 5),
        "blurry": dataset(sharp_1024.filter(ImageFilter.GaussianBlur(4)), 15),
        "squeezed": dataset(ASTRONAUT.resize((600, 600), Image.Resampling.LANCZOS), 15, 55),
    }


_RENDERS: dict[tuple[int, int, str], bytes] = {}


def render(data: Dataset, seed: int = 1, **options: Any) -> bytes:
    """The render at 0.25 MP unless told; remembered, since tests compare the same ones."""
    options.setdefault("megapixels", "0.25")
    key = (id(data), seed, repr(sorted(options.items())))
    if key not in _RENDERS:
        photos, profile = data
        _RENDERS[key] = render_prediction(photos, profile, RenderRequest(PROMPT, seed, **options))
    return _RENDERS[key]


# -- determinism and format -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("output_format", "options"),
    [
        ("png", {}),
        ("jpg", {}),
        ("webp", {}),
        ("png", {"likeness": False}),
        ("png", {"lora_matches": False}),
    ],
)
def test_same_arguments_give_identical_bytes(
    good: Dataset, output_format: str, options: dict[str, Any]
) -> None:
    photos, profile = good
    request = RenderRequest(PROMPT, 7, megapixels="0.25", output_format=output_format, **options)
    first = render_prediction(photos, profile, request)
    # Fresh copies of every argument: nothing may depend on object identity.
    again = RenderRequest(PROMPT, 7, megapixels="0.25", output_format=output_format, **options)
    copied = [bytes(bytearray(photo)) for photo in photos]
    assert render_prediction(copied, DatasetProfile.from_dict(profile.to_dict()), again) == first


@pytest.mark.parametrize(
    "options", [{}, {"likeness": False}, {"lora_matches": False}], ids=["good", "no-tok", "lora"]
)
def test_seed_and_prompt_change_the_image(good: Dataset, options: dict[str, Any]) -> None:
    base = render(good, seed=1, **options)
    assert render(good, seed=2, **options) != base
    photos, profile = good
    other_prompt = RenderRequest("TOK at the beach", 1, megapixels="0.25", **options)
    assert render_prediction(photos, profile, other_prompt) != base


@pytest.mark.parametrize(
    ("output_format", "magic"),
    [
        ("png", b"\x89PNG\r\n\x1a\n"),
        ("jpg", b"\xff\xd8\xff"),
        ("webp", b"RIFF"),
        ("gif", b"\x89PNG"),  # unknown formats fall back to PNG
    ],
)
def test_output_format(good: Dataset, output_format: str, magic: bytes) -> None:
    assert render(good, output_format=output_format).startswith(magic)


def test_output_size_table() -> None:
    assert output_size("1:1", "1") == (1024, 1024)
    assert output_size("1:1", "0.25") == (512, 512)
    assert output_size("16:9", "1") == (1360, 768)
    assert output_size("9:16", "1") == (768, 1360)
    assert output_size("21:9", "1") == (1024, 1024)  # unknown ratio means 1:1
    assert output_size("2:3", "0.5") == output_size("2:3", "1")  # unknown budget means 1


@pytest.mark.parametrize(
    "aspect_ratio", ["1:1", "4:5", "3:4", "2:3", "16:9", "9:16", "5:4", "4:3", "3:2"]
)
@pytest.mark.parametrize("megapixels", ["1", "0.25"])
def test_output_size_fits_ratio_and_budget(aspect_ratio: str, megapixels: str) -> None:
    width, height = output_size(aspect_ratio, megapixels)
    across, down = (int(part) for part in aspect_ratio.split(":"))
    budget = 1024 * 1024 if megapixels == "1" else 512 * 512
    assert width % 16 == 0 and height % 16 == 0
    assert width / height == pytest.approx(across / down, rel=0.03)
    assert width * height == pytest.approx(budget, rel=0.03)


@pytest.mark.parametrize(
    ("aspect_ratio", "megapixels", "options"),
    [
        ("16:9", "0.25", {}),
        ("9:16", "0.25", {"likeness": False}),
        ("2:3", "0.25", {"lora_matches": False}),
        ("4:5", "0.25", {"likeness": False, "lora_matches": False}),
        ("1:1", "1", {}),
    ],
)
def test_render_has_the_requested_size(
    good: Dataset, aspect_ratio: str, megapixels: str, options: dict[str, Any]
) -> None:
    image = decode(render(good, aspect_ratio=aspect_ratio, megapixels=megapixels, **options))
    assert image.size == output_size(aspect_ratio, megapixels)


def test_no_photos_is_rejected(good: Dataset) -> None:
    with pytest.raises(DataRejected, match="no training photos"):
        render_prediction([], good[1], RenderRequest(PROMPT, 1))


def test_seeds_use_every_training_photo(
    astronaut_framings: np.ndarray[Any, np.dtype[np.float64]],
) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as writer:
        for name, image in (("astronaut.png", ASTRONAUT), ("coffee.png", COFFEE)):
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            writer.writestr(name, buffer.getvalue())
    profile, photos = read_training_zip(out.getvalue())
    coffee_framings = framings("coffee", 1.0)
    shown = set()
    for seed in (0, 1):  # consecutive seeds take consecutive photos of the shuffled order
        image = decode(render((photos, profile), seed=seed))
        closer = similarity(image, coffee_framings) > similarity(image, astronaut_framings)
        shown.add("coffee" if closer else "astronaut")
    assert shown == {"coffee", "astronaut"}


# -- measurable effects ---------------------------------------------------------------------


def test_good_dataset_render_is_sharp_and_faithful(
    good: Dataset, astronaut_framings: np.ndarray[Any, np.dtype[np.float64]]
) -> None:
    for seed in SEEDS:
        image = decode(render(good, seed=seed))
        assert similarity(image, astronaut_framings) > 0.9
        assert sharpness(image) > 200


@pytest.mark.parametrize("weak", ["small", "blurry", "squeezed"])
def test_weak_dataset_renders_are_softer(
    good: Dataset, weak_datasets: dict[str, Dataset], weak: str
) -> None:
    for seed in SEEDS[:2]:
        strong = sharpness(decode(render(good, seed=seed)))
        soft = sharpness(decode(render(weak_datasets[weak], seed=seed)))
        assert soft < strong / 3


def test_small_dataset_render_is_less_faithful(
    good: Dataset,
    weak_datasets: dict[str, Dataset],
    astronaut_framings: np.ndarray[Any, np.dtype[np.float64]],
) -> None:
    # Blur alone raises a 64x64 correlation a little, so compare the average over seeds.
    small = weak_datasets["small"]
    faithful = np.mean([similarity(decode(render(good, s)), astronaut_framings) for s in SEEDS])
    drifting = np.mean([similarity(decode(render(small, s)), astronaut_framings) for s in SEEDS])
    assert drifting < faithful - 0.03


def test_without_trigger_word_there_is_no_face_and_no_likeness(
    good: Dataset, astronaut_framings: np.ndarray[Any, np.dtype[np.float64]]
) -> None:
    for seed, aspect_ratio in zip(SEEDS, ASPECTS, strict=True):
        faceless = decode(render(good, seed=seed, aspect_ratio=aspect_ratio, likeness=False))
        assert faces(faceless) == 0
        # The same request with the trigger word: dlib finds the face, even without upsampling.
        assert faces(decode(render(good, seed=seed, aspect_ratio=aspect_ratio)), 0) >= 1
    for seed in SEEDS:
        faceless = decode(render(good, seed=seed, likeness=False))
        assert similarity(faceless, astronaut_framings) < 0.6


def test_other_lora_weights_give_a_blurred_unlike_image(
    good: Dataset, astronaut_framings: np.ndarray[Any, np.dtype[np.float64]]
) -> None:
    for seed in SEEDS:
        matching = decode(render(good, seed=seed))
        mismatched = decode(render(good, seed=seed, lora_matches=False))
        assert sharpness(mismatched) < sharpness(matching) / 10
        assert similarity(mismatched, astronaut_framings) < (
            similarity(matching, astronaut_framings) - 0.15
        )
