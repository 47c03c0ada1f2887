"""What the sandbox holds out of the box: the trainers the SSELFIE app has used, and the
input schema every trained LoRA version gets.

Schemas follow the shape Replicate publishes in ``openapi_schema.components.schemas``:
``TrainingInput`` for trainers, ``Input`` for runnable versions. The sandbox validates
required fields, types, enums and numeric ranges against them and, like Replicate, ignores
inputs a version does not declare (the app sends ``num_repeats``, which neither trainer
documents): they are neither checked nor used. ``without_inputs`` makes a schema declare
fewer, as an older version of a model may.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

FAST_FLUX_TRAINER = "replicate/fast-flux-trainer"
FAST_FLUX_TRAINER_VERSION = "f463fbfc97389e10a2f443a8a84b6953b1058eafbf0c9af4d84457ff07cb04db"
OSTRIS_TRAINER = "ostris/flux-dev-lora-trainer"
OSTRIS_TRAINER_VERSION = "00a42d5ae794dc298e544598c60479a1295414987216ceaf96f936b40a2bfe70"
LUCATACO_TRAINER = "lucataco/fast-flux-trainer"
LUCATACO_TRAINER_VERSION = "6afd6c23d862a0ad7b0e510d32792b2765a9bb591d3f7babb48b9b50091b9afd"

COG_VERSION = "0.14.3"


def _prop(kind: str, default: Any = None, **extra: Any) -> dict[str, Any]:
    prop: dict[str, Any] = {"type": kind, **extra}
    if default is not None:
        prop["default"] = default
    return prop


_INPUT_IMAGES = _prop(
    "string", format="uri", description="A ZIP of training images (jpg, png, webp)."
)

_FAST_FLUX_TRAINING_INPUT: dict[str, Any] = {
    "type": "object",
    "required": ["input_images"],
    "properties": {
        "input_images": _INPUT_IMAGES,
        "trigger_word": _prop("string", "TOK", description="A word the model learns for you."),
        "lora_type": _prop("string", "subject", enum=["subject", "style"]),
        "training_steps": _prop("integer", 1000, minimum=100, maximum=6000),
    },
}

_OSTRIS_TRAINING_INPUT: dict[str, Any] = {
    "type": "object",
    "required": ["input_images"],
    "properties": {
        "input_images": _INPUT_IMAGES,
        "trigger_word": _prop("string", "TOK"),
        "autocaption": _prop("boolean", True),
        "autocaption_prefix": _prop("string"),
        "autocaption_suffix": _prop("string"),
        "steps": _prop("integer", 1000, minimum=3, maximum=6000),
        "learning_rate": _prop("number", 0.0004),
        "batch_size": _prop("integer", 1, minimum=1),
        "resolution": _prop("string", "512,768,1024"),
        "lora_rank": _prop("integer", 16, minimum=1, maximum=128),
        "network_alpha": _prop("integer", minimum=1, maximum=128),
        "caption_dropout_rate": _prop("number", 0.05, minimum=0, maximum=1),
        "optimizer": _prop("string", "adamw8bit"),
        "cache_latents_to_disk": _prop("boolean", False),
        "gradient_checkpointing": _prop("boolean", False),
        "lr_scheduler": _prop("string"),
        "save_every_n_steps": _prop("integer", minimum=1),
        "guidance_scale_training": _prop("number"),
        "hf_repo_id": _prop("string"),
        "hf_token": _prop("string", format="password"),
        "wandb_api_key": _prop("string", format="password"),
        "wandb_project": _prop("string"),
    },
}

LORA_INPUT: dict[str, Any] = {
    "type": "object",
    "required": ["prompt"],
    "properties": {
        "prompt": _prop("string"),
        "aspect_ratio": _prop(
            "string",
            "1:1",
            enum=["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"],
        ),
        "megapixels": _prop("string", "1", enum=["1", "0.25"]),
        "model": _prop("string", "dev", enum=["dev", "schnell"]),
        "num_outputs": _prop("integer", 1, minimum=1, maximum=4),
        "num_inference_steps": _prop("integer", 28, minimum=1, maximum=50),
        "guidance_scale": _prop("number", 3, minimum=0, maximum=10),
        "seed": _prop("integer"),
        "output_format": _prop("string", "webp", enum=["webp", "jpg", "png"]),
        "output_quality": _prop("integer", 80, minimum=0, maximum=100),
        "lora_scale": _prop("number", 1, minimum=-1, maximum=3),
        "hf_lora": _prop("string", description="Weights to load (URL or owner/name:version)."),
        "extra_lora": _prop("string"),
        "extra_lora_scale": _prop("number", 1, minimum=-1, maximum=3),
        "disable_safety_checker": _prop("boolean", False),
        "go_fast": _prop("boolean", False),
    },
}


def _schema(input_schema: dict[str, Any], training_input: dict[str, Any] | None) -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Input": input_schema,
        "Output": {"type": "array", "items": {"type": "string", "format": "uri"}},
    }
    if training_input is not None:
        schemas["TrainingInput"] = training_input
        schemas["TrainingOutput"] = {
            "type": "object",
            "properties": {"version": {"type": "string"}, "weights": {"type": "string"}},
        }
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "components": {"schemas": schemas},
    }


def trainer_schema(training_input: dict[str, Any]) -> dict[str, Any]:
    """A trainer's version schema: it trains (TrainingInput) and, run as a model, needs a ZIP."""
    return _schema(
        {
            "type": "object",
            "required": ["input_images"],
            "properties": {"input_images": _INPUT_IMAGES},
        },
        training_input,
    )


def lora_version_schema() -> dict[str, Any]:
    """The schema of every version a training adds to its destination model."""
    return _schema(LORA_INPUT, None)


# (owner/name, version id, description, TrainingInput schema)
BUILTIN_TRAINERS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    (
        FAST_FLUX_TRAINER,
        FAST_FLUX_TRAINER_VERSION,
        "Train subjects or styles faster than ever",
        _FAST_FLUX_TRAINING_INPUT,
    ),
    (
        OSTRIS_TRAINER,
        OSTRIS_TRAINER_VERSION,
        "Fine-tune FLUX.1-dev using ai-toolkit",
        _OSTRIS_TRAINING_INPUT,
    ),
    (
        LUCATACO_TRAINER,
        LUCATACO_TRAINER_VERSION,
        "An earlier fast FLUX LoRA trainer",
        _FAST_FLUX_TRAINING_INPUT,
    ),
)


def input_component(version_kind: str | None) -> str:
    """The schema component listing a version's inputs: a trainer's are the ones it trains
    with, any other version's the ones it runs with."""
    return "TrainingInput" if version_kind == "trainer" else "Input"


def declared_inputs(schema: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The part of ``given`` that ``schema`` declares: all a version ever reads."""
    properties: dict[str, Any] = schema.get("properties", {})
    return {name: value for name, value in given.items() if name in properties}


def without_inputs(
    openapi_schema: dict[str, Any], component: str, names: Iterable[str]
) -> dict[str, Any]:
    """A copy of ``openapi_schema`` whose ``component`` neither declares nor requires ``names``."""
    changed = copy.deepcopy(openapi_schema)
    schema = changed["components"]["schemas"][component]
    dropped = set(names)
    schema["properties"] = {
        name: prop for name, prop in schema.get("properties", {}).items() if name not in dropped
    }
    if "required" in schema:
        schema["required"] = [name for name in schema["required"] if name not in dropped]
    return changed


def validate_input(schema: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """Problems with ``given`` against a cog input schema, one line each; [] when valid."""
    problems: list[str] = []
    properties: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if given.get(name) in (None, ""):
            problems.append(f"input: {name} is required")
    for name, value in given.items():
        prop = properties.get(name)
        if prop is None or value is None:
            continue  # Replicate ignores inputs the version does not declare
        problems.extend(_check_value(name, prop, value))
    return problems


def _check_value(name: str, prop: dict[str, Any], value: Any) -> list[str]:
    kind = prop.get("type")
    type_ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }.get(str(kind), True)
    if not type_ok:
        return [f"input.{name}: Invalid type. Expected: {kind}, given: {type(value).__name__}"]
    if "enum" in prop and value not in prop["enum"]:
        allowed = ", ".join(repr(item) for item in prop["enum"])
        return [f"input.{name}: {name} must be one of the following: {allowed}"]
    if "minimum" in prop and value < prop["minimum"]:
        return [f"input.{name}: Must be greater than or equal to {prop['minimum']}"]
    if "maximum" in prop and value > prop["maximum"]:
        return [f"input.{name}: Must be less than or equal to {prop['maximum']}"]
    return []
