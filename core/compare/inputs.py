"""What each column of a comparison sends to Replicate, as pure functions of plain values.

Three things differ between "the app" and "Replicate's site", and a comparison separates
them: the version, the input, and what Replicate actually uses of the input. The app's
input is rebuilt exactly as the app builds it (``core.app.calls``: prompt template
with the row's trigger word, ethnicity and gender, its fixed preset, the row's weights and
LoRA scale). The site runs a version with the defaults of the version's own
``openapi_schema`` and a prompt the person types, with the trigger word the version was
trained with. Replicate silently drops inputs a version does not declare, so every input
is checked against the schema and the undeclared ones are named.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.app.calls import (
    CATEGORY_ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    generation_prompt,
    prediction_input,
)


@dataclass(frozen=True)
class Preset:
    """A prompt as the app's concept categories phrase it; the category picks the app's
    aspect ratio."""

    name: str
    prompt: str
    category: str

    @property
    def aspect_ratio(self) -> str:
        return CATEGORY_ASPECT_RATIOS.get(self.category, DEFAULT_ASPECT_RATIO)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "headshot",
            "professional headshot, soft studio lighting, neutral grey background, sharp focus",
            "headshot",
        ),
        Preset(
            "editorial",
            "editorial fashion portrait, natural window light, magazine cover, 85mm lens",
            "editorial",
        ),
        Preset(
            "lifestyle",
            "candid lifestyle photo in a sunny cafe, warm tones, shallow depth of field",
            "portrait",
        ),
    )
}
DEFAULT_PRESET = "headshot"
# The prompt category of free text: the app's default 4:5 portrait.
FREE_TEXT_CATEGORY = "portrait"


@dataclass(frozen=True)
class AppProfile:
    """What the app reads from the user's rows to build its generation input."""

    trigger_word: str | None
    ethnicity: str | None
    gender: str | None
    lora_weights_url: str | None
    lora_scale: float | None


def app_input(profile: AppProfile, *, prompt: str, category: str, seed: int) -> dict[str, Any]:
    """The app's exact input for this user: its prompt template and preset."""
    full_prompt = generation_prompt(
        trigger_word=profile.trigger_word or "",
        ethnicity=profile.ethnicity,
        gender=profile.gender,
        prompt=prompt,
    )
    return prediction_input(
        prompt=full_prompt,
        lora_weights_url=profile.lora_weights_url,
        lora_scale=profile.lora_scale,
        seed=seed,
        category=category,
    )


def declared_inputs(input_schema: Mapping[str, Any] | None) -> frozenset[str] | None:
    """The input names a version's ``Input`` schema declares; None when there is no schema
    (Replicate may answer ``openapi_schema: null``): then nothing can be said."""
    if not input_schema:
        return None
    properties = input_schema.get("properties")
    return frozenset(properties) if isinstance(properties, Mapping) else None


def schema_defaults(input_schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Each declared input's default, as the site's form starts."""
    properties = (input_schema or {}).get("properties")
    if not isinstance(properties, Mapping):
        return {}
    return {
        name: spec["default"]
        for name, spec in properties.items()
        if isinstance(spec, Mapping) and "default" in spec
    }


def site_input(
    input_schema: Mapping[str, Any] | None, *, trigger_word: str | None, prompt: str, seed: int
) -> dict[str, Any]:
    """A version run the way Replicate's site runs it: the schema's defaults, the prompt
    typed with the trigger word the version was trained with, and the shared seed."""
    typed = f"{trigger_word}, {prompt}" if trigger_word else prompt
    return {**schema_defaults(input_schema), "prompt": typed, "seed": seed}


def ignored_inputs(
    input_schema: Mapping[str, Any] | None, given: Mapping[str, Any]
) -> tuple[str, ...]:
    """The inputs Replicate will drop silently: given but not declared (sorted). Empty when
    the schema is unknown (nothing can be said; the caller says so)."""
    declared = declared_inputs(input_schema)
    if declared is None:
        return ()
    return tuple(sorted(name for name in given if name not in declared))


@dataclass(frozen=True)
class DiffRow:
    """One input name across the columns: each column's value (None: not sent), whether
    they differ, and which columns send it to a version that ignores it."""

    name: str
    values: tuple[Any, ...]
    differs: bool
    ignored_in: tuple[int, ...]


MISSING = object()


def input_diff(
    inputs: Sequence[Mapping[str, Any]], ignored: Sequence[Sequence[str]]
) -> list[DiffRow]:
    """Every input name any column sends, differing ones first, then by name."""
    names = sorted({name for given in inputs for name in given})
    rows = []
    for name in names:
        values = tuple(given.get(name, MISSING) for given in inputs)
        shown = tuple(None if value is MISSING else value for value in values)
        rows.append(
            DiffRow(
                name=name,
                values=shown,
                differs=len({repr(value) for value in values}) > 1,
                ignored_in=tuple(
                    index
                    for index, names_ignored in enumerate(ignored)
                    if name in names_ignored and values[index] is not MISSING
                ),
            )
        )
    return sorted(rows, key=lambda row: (not row.differs, row.name))
