"""The SSELFIE app's own training and generation calls, as pure functions of plain values.

Each function reproduces one thing ``docs/app-facts.md`` records about the app (names,
parameters, prompt template, preset), so the demo world is made exactly the way the app
made its users' histories. The retrain wizard and the side-by-side generator need the
same facts; they belong in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

APP_OWNER = "sandrasocial"
# The app's trainer since late 2025 (earlier rows came from ostris and lucataco trainers).
APP_TRAINER = "replicate/fast-flux-trainer"
APP_TRAINER_VERSION = "f463fbfc97389e10a2f443a8a84b6953b1058eafbf0c9af4d84457ff07cb04db"
APP_MODEL_TYPE = "flux-dev-lora"

# Sent with every training, whatever the photo count.
FIXED_TRAINING_INPUT: dict[str, Any] = {
    "optimizer": "adamw_bf16",
    "batch_size": 1,
    "resolution": "1024",
    "autocaption": True,
    "learning_rate": 0.00008,
    "caption_dropout_rate": 0.15,
    "cache_latents_to_disk": False,
    "save_every_n_steps": 250,
    "guidance_scale_training": 1.0,
    "lr_scheduler": "constant_with_warmup",
}

# The browser's re-encoding before a training upload (app-facts, "Training" 1): every
# photo as a JPEG of at most this long side and quality, level after level, until the ZIP
# is under BROWSER_ZIP_LIMIT_BYTES. Which level was used is recorded nowhere.
BROWSER_SQUEEZE_LEVELS: tuple[tuple[int, float], ...] = (
    (1600, 0.85),
    (1400, 0.75),
    (1200, 0.70),
    (1000, 0.65),
    (800, 0.60),
    (600, 0.55),
)
BROWSER_ZIP_LIMIT_BYTES = 4 * 1024 * 1024
# The upload route refuses a ZIP with fewer photos; its page asks for 10 to this many.
UPLOAD_MIN_PHOTOS = 5
UPLOAD_MAX_PHOTOS = 20

# A public "super-realism" FLUX LoRA mixed into every generation at a low scale.
REALISM_LORA_URL = (
    "https://huggingface.co/strangerzonehf/Flux-Super-Realism-LoRA/resolve/main/"
    "super-realism.safetensors"
)
REALISM_LORA_SCALE = 0.2
# Aspect ratio per concept category; anything else is a 4:5 portrait.
CATEGORY_ASPECT_RATIOS = {"headshot": "1:1", "editorial": "3:4"}
DEFAULT_ASPECT_RATIO = "4:5"
# The admin "sync" routes rebuild the weights URL from the hash instead of asking Replicate.
PBXT_WEIGHTS_TEMPLATE = "https://replicate.delivery/pbxt/{hash}/flux-lora.tar"


@dataclass(frozen=True)
class AdaptiveParams:
    """The part of the training input the app scales with the photo count."""

    steps: int
    lora_rank: int
    network_alpha: int
    num_repeats: int


def adaptive_params(image_count: int | None) -> AdaptiveParams:
    """The app's table: 15+ (or unknown) photos, 10-14, fewer than 10."""
    if image_count is None or image_count >= 15:
        return AdaptiveParams(steps=1400, lora_rank=48, network_alpha=48, num_repeats=20)
    if image_count >= 10:
        return AdaptiveParams(
            steps=1400, lora_rank=40, network_alpha=40, num_repeats=max(15, int(1.3 * image_count))
        )
    return AdaptiveParams(
        steps=1200, lora_rank=32, network_alpha=32, num_repeats=max(10, int(1.5 * image_count))
    )


def training_input(
    *, image_count: int | None, trigger_word: str, input_images: str
) -> dict[str, Any]:
    """The ``input`` of the app's training create."""
    params = adaptive_params(image_count)
    return {
        "steps": params.steps,
        "lora_rank": params.lora_rank,
        "network_alpha": params.network_alpha,
        "num_repeats": params.num_repeats,
        **FIXED_TRAINING_INPUT,
        "trigger_word": trigger_word,
        "input_images": input_images,
    }


def first_trigger_word(user_id: str) -> str:
    """``user`` + the first 8 characters of the user id (kept on every retrain)."""
    return f"user{user_id[:8]}"


def destination_model(owner: str, user_id: str) -> str:
    """The model a first training creates: ``{owner}/user-{first 8}-selfie-lora``."""
    return f"{owner}/user-{user_id[:8]}-selfie-lora"


def training_zip_path(user_id: str, timestamp_ms: int) -> str:
    """Where the app stores a training ZIP in its public blob store (path only)."""
    return f"training/{user_id}/{timestamp_ms}-images.zip"


def bare_version(stored_version: str) -> str:
    """What the generate route sends as ``version``: the text after the last ``:``."""
    return stored_version.rsplit(":", 1)[-1].strip()


def pbxt_weights_url(version_hash: str) -> str:
    """The URL the admin sync routes write instead of the training's ``output.weights``."""
    return PBXT_WEIGHTS_TEMPLATE.format(hash=version_hash)


def gender_word(gender: str | None) -> str:
    """``woman|female`` -> woman, ``man|male`` -> man, anything else -> person."""
    value = (gender or "").strip().lower()
    if value in ("woman", "female"):
        return "woman"
    if value in ("man", "male"):
        return "man"
    return "person"


def generation_prompt(
    *, trigger_word: str, ethnicity: str | None, gender: str | None, prompt: str
) -> str:
    """``"{trigger}, {ethnicity} {gender}, {prompt}"``; ethnicity left out when NULL or
    ``Other``; the trigger not repeated when the prompt already starts with it."""
    subject = gender_word(gender)
    if ethnicity and ethnicity.strip() and ethnicity.strip() != "Other":
        subject = f"{ethnicity.strip()} {subject}"
    body = prompt
    if body.startswith(trigger_word):
        body = body[len(trigger_word) :].lstrip(" ,")
    return f"{trigger_word}, {subject}, {body}"


def prediction_input(
    *,
    prompt: str,
    lora_weights_url: str | None,
    lora_scale: float | None,
    seed: int,
    category: str = "portrait",
    authentic: bool = False,
) -> dict[str, Any]:
    """The main generate route's input: its preset plus the user's weights and seed."""
    return {
        "prompt": prompt,
        "guidance_scale": 3.5,
        "num_inference_steps": 50,
        "aspect_ratio": CATEGORY_ASPECT_RATIOS.get(category, DEFAULT_ASPECT_RATIO),
        "megapixels": "1",
        "output_format": "png",
        "output_quality": 95,
        "lora_scale": 1.0 if lora_scale is None else float(lora_scale),
        "hf_lora": lora_weights_url,
        "disable_safety_checker": True,
        "go_fast": False,
        "num_outputs": 1,
        "model": "dev",
        "extra_lora": REALISM_LORA_URL,
        "extra_lora_scale": 0.0 if authentic else REALISM_LORA_SCALE,
        "seed": seed,
    }
