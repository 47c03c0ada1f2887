"""Render a sandbox prediction: a deterministic image made from the version's training photos.

It stands in for FLUX + a personal LoRA, so what the console measures on real outputs
(a face found, its likeness to the user, sharpness) reacts the way it would for real:

- a good dataset gives a sharp, faithful crop of one training photo;
- a small, low-resolution or blurry dataset (low ``profile.quality``) gives a softer one,
  and few photos also drift toward a generic portrait;
- a prompt without the trigger word (``likeness=False``) gives a face-less portrait;
- other weights in ``hf_lora`` (``lora_matches=False``) give a blurred, noisy, washed-out one.

Every random choice comes from hashlib over the request and the photo bytes, so the same
arguments always give the same bytes.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from core.errors import DataRejected
from core.sandbox.dataset import DatasetProfile, count_factor

Pixels = npt.NDArray[np.float32]  # H x W x 3, values in [0, 1]
Colour = npt.NDArray[np.float32]  # 3 values in [0, 1]

# Width:height of each aspect ratio the FLUX LoRA versions accept; unknown means 1:1.
ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "1:1": (1, 1),
    "4:5": (4, 5),
    "3:4": (3, 4),
    "2:3": (2, 3),
    "16:9": (16, 9),
    "9:16": (9, 16),
    "5:4": (5, 4),
    "4:3": (4, 3),
    "3:2": (3, 2),
}
# Pixel budget of each ``megapixels`` choice; anything else means "1".
MEGAPIXEL_AREAS: dict[str, int] = {"1": 1024 * 1024, "0.25": 512 * 512}
# FLUX works on 16 px latent patches, so both sides are multiples of this.
SIDE_MULTIPLE = 16
# Seed-dependent zoom into the photo: 1.0 (whole frame) to 1.0 + this.
MAX_EXTRA_ZOOM = 0.2
# Where the crop may sit across, as a share of the horizontal slack: near the middle.
CROP_ACROSS = (0.2, 0.8)
# Where it may sit down the photo: high, as selfies have the face in the upper half and a
# wide frame cut from a tall photo must keep it.
CROP_DOWN = (0.05, 0.3)
# Tint toward the prompt's colour: between these blend amounts.
TINT_MIN, TINT_MAX = 0.08, 0.15
# At quality 0 the photo is shrunk to this share of its size and back (detail loss) ...
MIN_DETAIL_SCALE = 0.35
# ... and blurred with this Gaussian radius, in px per 1024 px of output side.
SOFT_BLUR_RADIUS = 4.0
# Blend toward the generic portrait for a dataset of very few photos (scaled by 1 - count) ...
FEW_PHOTOS_BLEND = 0.35
# ... and warp the features by up to this share of the short side (scaled by 1 - count).
FEW_PHOTOS_WARP = 0.03
# Warps move features smoothly: displacement is drawn on a grid this many cells across ...
WARP_GRID = 4
# ... and applied through a mesh of this many quads across (fine enough to look smooth).
WARP_MESH = 32
# Other weights: Gaussian radius per 1024 px of output side (strong).
MISMATCH_BLUR_RADIUS = 14.0
# Other weights: contrast kept around the mean, colour cast blend, pull toward generic.
MISMATCH_CONTRAST, MISMATCH_CAST, MISMATCH_GENERIC = 0.55, 0.25, 0.3
# Other weights: amplitude of the blotchy noise and the cell size (px) it is drawn at.
MISMATCH_NOISE, MISMATCH_NOISE_CELL = 0.06, 6
# Other weights: features warped by up to this share of the short side (someone else's face).
MISMATCH_WARP = 0.06
# The face-less portrait is blurred with this radius, as a share of its short side ...
GENERIC_BLUR_SHARE = 0.05
# ... and mottled with smooth colour noise of this amplitude, so it is not a flat diagram.
GENERIC_BLOTCHES = 0.06
# The face-less portrait is drawn at this fraction of the output size (it is blurred anyway).
GENERIC_DRAW_SCALE = 4
# Fixed encoder settings, so the same pixels always give the same bytes (PNG level 1: files
# ~10 % larger than level 6 in a fifth of the time; renders should be quick).
PNG_COMPRESS_LEVEL = 1
LOSSY_QUALITY = 90


@dataclass(frozen=True)
class RenderRequest:
    """The prediction inputs that shape the image, as the server resolved them."""

    prompt: str
    seed: int
    aspect_ratio: str = "1:1"
    megapixels: str = "1"
    output_format: str = "png"
    likeness: bool = True  # False when the prompt lacks the trained trigger word
    lora_matches: bool = True  # False when hf_lora is some other weights


def output_size(aspect_ratio: str, megapixels: str) -> tuple[int, int]:
    """(width, height) for the aspect ratio and pixel budget, both multiples of 16."""
    across, down = ASPECT_RATIOS.get(aspect_ratio, ASPECT_RATIOS["1:1"])
    area = MEGAPIXEL_AREAS.get(megapixels, MEGAPIXEL_AREAS["1"])
    ratio = across / down
    return _multiple_of_16(math.sqrt(area * ratio)), _multiple_of_16(math.sqrt(area / ratio))


def render_prediction(
    photos: Sequence[bytes], profile: DatasetProfile, request: RenderRequest
) -> bytes:
    """The prediction's image file (PNG, JPEG or WEBP per ``request.output_format``)."""
    if not photos:
        raise DataRejected("this version has no training photos to render from")
    size = output_size(request.aspect_ratio, request.megapixels)
    photo = _pick_photo(photos, request)
    dice = _Dice(_request_key(request, photo, profile))

    @functools.cache
    def generic() -> Pixels:  # drawn at most once, and only when some path needs it
        return _generic_portrait(size, dice)

    if request.likeness:
        pixels = _likeness(photo, size, profile.quality, dice)
        unlearnt = 1.0 - count_factor(profile.image_count)
        if unlearnt > 0.0:
            # Few photos: the LoRA has not quite learnt the face; it drifts toward a generic one.
            pixels = _warp(pixels, dice, "few-photos", FEW_PHOTOS_WARP * unlearnt)
            pixels = _blend(pixels, generic(), FEW_PHOTOS_BLEND * unlearnt)
    else:
        pixels = generic()
    pixels = _tint(pixels, request.prompt)
    if not request.lora_matches:
        pixels = _degrade(pixels, dice, generic())
    return _encode(pixels, request.output_format)


@dataclass(frozen=True)
class _Dice:
    """Named, reproducible random draws derived from one key."""

    key: bytes

    def unit(self, label: str) -> float:
        """A float in [0, 1) for ``label``."""
        digest = hashlib.sha256(self.key + b"\0" + label.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    def noise(self, label: str, shape: tuple[int, ...]) -> Pixels:
        """Uniform noise in [-0.5, 0.5) of the given shape."""
        count = math.prod(shape)
        raw = hashlib.shake_256(self.key + b"\0" + label.encode()).digest(count)
        values = np.frombuffer(raw, dtype=np.uint8).astype(np.float32) / 255.0 - 0.5
        return values.reshape(shape)

    def colour(self, label: str, saturation: float, value: float) -> Colour:
        """An RGB colour with a random hue."""
        return np.array(colorsys.hsv_to_rgb(self.unit(label), saturation, value), dtype=np.float32)


def _multiple_of_16(side: float) -> int:
    return max(SIDE_MULTIPLE, round(side / SIDE_MULTIPLE) * SIDE_MULTIPLE)


def _pick_photo(photos: Sequence[bytes], request: RenderRequest) -> bytes:
    """``seed % n`` into an order shuffled by the prompt, so prompts vary the photo too."""
    prompt = request.prompt.encode()
    order = sorted(
        range(len(photos)),
        key=lambda index: hashlib.sha256(prompt + b"\0" + str(index).encode()).digest(),
    )
    return photos[order[request.seed % len(photos)]]


def _request_key(request: RenderRequest, photo: bytes, profile: DatasetProfile) -> bytes:
    """Everything that shapes the pixels (not the file format), hashed."""
    fields = {
        "prompt": request.prompt,
        "seed": request.seed,
        "size": output_size(request.aspect_ratio, request.megapixels),
        "likeness": request.likeness,
        "lora_matches": request.lora_matches,
        "photo": hashlib.sha256(photo).hexdigest(),
        "profile": profile.to_dict(),
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).digest()


def _likeness(photo: bytes, size: tuple[int, int], quality: float, dice: _Dice) -> Pixels:
    """A seed-framed crop of the photo, as soft as the dataset's ``quality`` makes it."""
    try:
        with Image.open(io.BytesIO(photo)) as opened:
            source = opened.convert("RGB")
    except Exception as exc:  # the stored photo should decode; say which way it did not
        raise DataRejected(f"a stored training photo cannot be decoded: {exc}") from exc
    width, height = size
    box = _crop_box(source.size, width / height, dice)
    softness = min(1.0, max(0.0, 1.0 - quality))
    if softness > 0.0:
        # Shrink and re-enlarge: the fine detail a weak LoRA never learnt is gone.
        scale = 1.0 - (1.0 - MIN_DETAIL_SCALE) * softness
        small = (max(8, round(width * scale)), max(8, round(height * scale)))
        framed = source.resize(small, Image.Resampling.BICUBIC, box=box)
        framed = framed.resize(size, Image.Resampling.BICUBIC)
        radius = SOFT_BLUR_RADIUS * softness * max(size) / 1024
        framed = framed.filter(ImageFilter.GaussianBlur(radius))
    else:
        framed = source.resize(size, Image.Resampling.LANCZOS, box=box)
    if dice.unit("mirror") < 0.5:
        framed = framed.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return _to_pixels(framed)


def _crop_box(
    photo_size: tuple[int, int], ratio: float, dice: _Dice
) -> tuple[float, float, float, float]:
    """The largest ``ratio`` box in the photo, zoomed in by 1.0-1.2 and placed by the seed."""
    photo_width, photo_height = photo_size
    zoom = 1.0 + MAX_EXTRA_ZOOM * dice.unit("zoom")
    crop_width = min(photo_width, photo_height * ratio) / zoom
    crop_height = crop_width / ratio
    shift_x = CROP_ACROSS[0] + (CROP_ACROSS[1] - CROP_ACROSS[0]) * dice.unit("offset-x")
    shift_y = CROP_DOWN[0] + (CROP_DOWN[1] - CROP_DOWN[0]) * dice.unit("offset-y")
    left = (photo_width - crop_width) * shift_x
    top = (photo_height - crop_height) * shift_y
    return (left, top, left + crop_width, top + crop_height)


def _generic_portrait(size: tuple[int, int], dice: _Dice) -> Pixels:
    """A face-less portrait: gradient backdrop, a blurred head-and-shoulders silhouette."""
    width, height = (max(8, side // GENERIC_DRAW_SCALE) for side in size)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    top = dice.colour("backdrop-top", 0.35, 0.85)
    bottom = dice.colour("backdrop-bottom", 0.4, 0.6)
    backdrop = top * (1.0 - ys) + bottom * ys
    backdrop = backdrop * (1.0 - 0.25 * (xs - 0.5) ** 2)  # a soft side vignette
    short = min(width, height)
    centre_x = width * (0.5 + 0.12 * (dice.unit("head-x") - 0.5))
    centre_y = height * (0.4 + 0.08 * (dice.unit("head-y") - 0.5))
    px = np.arange(width, dtype=np.float32)[None, :]
    py = np.arange(height, dtype=np.float32)[:, None]
    head = ((px - centre_x) / (0.16 * short)) ** 2 + ((py - centre_y) / (0.21 * short)) ** 2
    body = ((px - centre_x) / (0.42 * short)) ** 2 + (
        (py - (centre_y + 0.62 * short)) / (0.36 * short)
    ) ** 2
    figure = np.clip(1.5 - np.minimum(head, body), 0.0, 1.0)[:, :, None]
    tone = dice.colour("figure", 0.3, 0.2 + 0.2 * dice.unit("figure-light"))
    pixels = backdrop * (1.0 - figure) + tone * figure
    blurred = _to_image(pixels).filter(ImageFilter.GaussianBlur(GENERIC_BLUR_SHARE * short))
    enlarged = _to_pixels(blurred.resize(size, Image.Resampling.BICUBIC))
    return np.clip(enlarged + GENERIC_BLOTCHES * _blotches(size, dice, "generic", 48), 0, 1)


def _tint(pixels: Pixels, prompt: str) -> Pixels:
    """Shift toward a colour of the prompt's own, as a prompt shapes a real render's mood."""
    mood = _Dice(hashlib.sha256(b"prompt\0" + prompt.encode()).digest())
    amount = TINT_MIN + (TINT_MAX - TINT_MIN) * mood.unit("amount")
    return _blend(pixels, mood.colour("colour", 0.55, 0.85), amount)


def _degrade(pixels: Pixels, dice: _Dice, generic: Pixels) -> Pixels:
    """What other weights do to a render: blur, blotchy noise, a cast, flat contrast."""
    height, width = pixels.shape[:2]
    radius = MISMATCH_BLUR_RADIUS * max(width, height) / 1024
    warped = _warp(pixels, dice, "mismatch", MISMATCH_WARP)
    blurred = _to_pixels(_to_image(warped).filter(ImageFilter.GaussianBlur(radius)))
    mean = blurred.mean(axis=(0, 1), keepdims=True)
    flat = mean + MISMATCH_CONTRAST * (blurred - mean)
    cast = _blend(flat, dice.colour("cast", 0.7, 0.7), MISMATCH_CAST)
    unlike = _blend(cast, generic, MISMATCH_GENERIC)
    noise = _blotches((width, height), dice, "mismatch", MISMATCH_NOISE_CELL)
    return np.clip(unlike + 2.0 * MISMATCH_NOISE * noise, 0.0, 1.0).astype(np.float32)


def _blotches(size: tuple[int, int], dice: _Dice, label: str, cell: int) -> Pixels:
    """Smooth colour noise in [-0.5, 0.5): drawn per ``cell`` px, then enlarged."""
    width, height = size
    grid = (max(2, height // cell), max(2, width // cell), 3)
    coarse = _to_image(dice.noise(label, grid) + 0.5)
    return _to_pixels(coarse.resize(size, Image.Resampling.BICUBIC)) - 0.5


def _warp(pixels: Pixels, dice: _Dice, label: str, share: float) -> Pixels:
    """Features moved by a smooth displacement of up to ``share`` of the short side."""
    height, width = pixels.shape[:2]
    reach = share * min(width, height)
    if reach < 0.5:
        return pixels
    # A mesh of small quads, each mapped to its displaced source quad, runs in Pillow's C.
    field = _blotches((WARP_MESH + 1, WARP_MESH + 1), dice, label, WARP_MESH // WARP_GRID)
    xs = [round(width * i / WARP_MESH) for i in range(WARP_MESH + 1)]
    ys = [round(height * j / WARP_MESH) for j in range(WARP_MESH + 1)]

    def source(i: int, j: int) -> tuple[float, float]:
        x = xs[i] + 2.0 * reach * float(field[j, i, 0])
        y = ys[j] + 2.0 * reach * float(field[j, i, 1])
        return min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))

    mesh = [
        (
            (xs[i], ys[j], xs[i + 1], ys[j + 1]),
            (*source(i, j), *source(i, j + 1), *source(i + 1, j + 1), *source(i + 1, j)),
        )
        for j in range(WARP_MESH)
        for i in range(WARP_MESH)
    ]
    image = _to_image(pixels).transform(
        (width, height), Image.Transform.MESH, mesh, Image.Resampling.BILINEAR
    )
    return _to_pixels(image)


def _blend(pixels: Pixels, toward: Pixels | Colour, amount: float) -> Pixels:
    return ((1.0 - amount) * pixels + amount * toward).astype(np.float32)


def _to_pixels(image: Image.Image) -> Pixels:
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def _to_image(pixels: Pixels) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8), "RGB")


def _encode(pixels: Pixels, output_format: str) -> bytes:
    """The file bytes, with fixed encoder settings; unknown formats give PNG."""
    image = _to_image(pixels)
    out = io.BytesIO()
    if output_format in ("jpg", "jpeg"):
        image.save(out, format="JPEG", quality=LOSSY_QUALITY)
    elif output_format == "webp":
        image.save(out, format="WEBP", quality=LOSSY_QUALITY, method=4)
    else:
        image.save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return out.getvalue()
