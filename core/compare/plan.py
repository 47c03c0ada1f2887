"""Planning a comparison: the user's facts from the databases, then each column's version
schema from Replicate, then every image's exact input. Reads only; nothing is paid here.

The caller owns the connections: ``read_compare_facts`` reads the app's rows and the
ledger (short reads), ``plan_comparison`` then asks Replicate with no connection held.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from core.compare.columns import (
    Column,
    Style,
    UserVersion,
    VersionFacts,
    parse_columns,
    resolve_columns,
    user_versions,
)
from core.compare.inputs import (
    DEFAULT_PRESET,
    FREE_TEXT_CATEGORY,
    PRESETS,
    AppProfile,
    app_input,
    declared_inputs,
    ignored_inputs,
    site_input,
)
from core.errors import DataRejected, ReplicateError
from core.facts.stored import read_stored_user
from core.gateway.gateway import ReplicateGateway
from core.ledger.datasets import input_images_url

DEFAULT_SEEDS = 4
MAX_SEEDS = 8
MAX_PROMPT = 1000
# The letter of the repeat of column A (same version, input and seeds): the noise floor.
REPEAT = "R"
# The seeds and preset of every comparison that judges one version against another by
# itself (the retrain's promotion gate, the watch's retrain review): fixed, so two such
# comparisons of one user read the same prompts and are comparable.
JUDGING_SEEDS = (1101, 2202, 3303, 4404)
JUDGING_PRESET = "headshot"


@dataclass(frozen=True)
class CompareFacts:
    """What the databases say: the app's profile for the user, the stored version, the
    model, the user's versions (creation order) and their training ZIPs."""

    user_id: str
    email: str | None
    profile: AppProfile
    stored: str | None
    model_id: str | None
    versions: tuple[UserVersion, ...]
    zip_urls: tuple[str, ...]  # the user's succeeded trainings' photos: the identity reference


@dataclass(frozen=True)
class PlannedColumn:
    column: Column
    schema_known: bool
    ignored: tuple[str, ...]  # inputs Replicate will drop for this version
    inputs: Mapping[int, Mapping[str, Any]]  # by seed
    trigger_sent: str | None = None  # the trigger word its prompt carries

    def to_json(self) -> dict[str, Any]:
        first = next(iter(self.inputs.values()))
        return {
            "letter": self.column.letter,
            "name": self.column.name,
            "label": self.column.label,
            "version_id": self.column.version_id,
            "model_id": self.column.model_id,
            "style": self.column.style.value,
            "trigger_word": self.column.trigger_word,
            "trigger_sent": self.trigger_sent,
            "note": self.column.note,
            "schema_known": self.schema_known,
            "ignored": list(self.ignored),
            "input": {key: value for key, value in first.items() if key != "seed"},
        }


@dataclass(frozen=True)
class ComparePlan:
    facts: CompareFacts
    columns: tuple[PlannedColumn, ...]
    prompt: str
    preset: str | None
    category: str
    seeds: tuple[int, ...]
    repeat: bool  # column A run twice, for the noise floor
    notes: tuple[str, ...] = field(default=())

    @property
    def image_count(self) -> int:
        return (len(self.columns) + (1 if self.repeat else 0)) * len(self.seeds)

    def estimate_usd(self, price_per_image: float) -> Decimal:
        return (Decimal(str(price_per_image)) * self.image_count).quantize(Decimal("0.0001"))


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def read_compare_facts(app: Connection, ops: Connection, user_id: str) -> CompareFacts:
    """The user's rows and ledger. ``NotFound`` for an unknown user."""
    stored = read_stored_user(app, ops, user_id)
    record, row, trainings = stored.record, stored.model_row, stored.trainings
    user = record.user
    versions = user_versions(trainings)
    zips: list[str] = []
    for training in trainings:
        url = input_images_url(training) if training.status == "succeeded" else None
        if url and url not in zips:
            zips.append(url)
    stored_model = row.get("replicate_model_id")
    row_model = str(stored_model).strip() if stored_model else ""
    return CompareFacts(
        user_id=record.user_id,
        email=str(user.get("email")) if user.get("email") else None,
        profile=AppProfile(
            trigger_word=str(row["trigger_word"]) if row.get("trigger_word") else None,
            ethnicity=str(user["ethnicity"]) if user.get("ethnicity") else None,
            gender=str(user["gender"]) if user.get("gender") else None,
            lora_weights_url=str(row["lora_weights_url"]) if row.get("lora_weights_url") else None,
            lora_scale=_number(row.get("lora_scale")),
        ),
        stored=str(row["replicate_version_id"]) if row.get("replicate_version_id") else None,
        model_id=row_model or (versions[-1].model_id if versions else None),
        versions=versions,
        zip_urls=tuple(zips),
    )


def choose_seeds(count: int, *, rng: random.Random | None = None) -> tuple[int, ...]:
    """``count`` distinct seeds, shared by every column."""
    if not 1 <= count <= MAX_SEEDS:
        raise DataRejected(f"Between 1 and {MAX_SEEDS} seeds; {count} were asked for.")
    chooser = rng or random.SystemRandom()
    return tuple(chooser.sample(range(1, 2**31 - 1), count))


def plan_comparison(
    gateway: ReplicateGateway,
    facts: CompareFacts,
    *,
    columns: str | Sequence[str] | None = None,
    preset: str | None = None,
    prompt: str | None = None,
    seeds: Sequence[int] | None = None,
    seed_count: int = DEFAULT_SEEDS,
    repeat: bool = True,
) -> ComparePlan:
    """Every column's version, schema and exact input per seed. ``DataRejected`` for what
    cannot be compared; ``ReplicateError`` when Replicate cannot be read."""
    text = (prompt or "").strip()
    if "\x00" in text or len(text) > MAX_PROMPT:
        raise DataRejected(f"A prompt is plain text of at most {MAX_PROMPT} characters.")
    if text:
        chosen_preset, category, body = None, FREE_TEXT_CATEGORY, text
    else:
        name = (preset or DEFAULT_PRESET).strip().lower()
        if name not in PRESETS:
            raise DataRejected(f"Unknown preset {name!r}: one of {', '.join(PRESETS)}.")
        chosen_preset, category, body = name, PRESETS[name].category, PRESETS[name].prompt
    shared_seeds = tuple(seeds) if seeds else choose_seeds(seed_count)
    if len(set(shared_seeds)) != len(shared_seeds) or len(shared_seeds) > MAX_SEEDS:
        raise DataRejected(f"Up to {MAX_SEEDS} distinct seeds.")
    latest = None
    if facts.model_id is not None:
        model = gateway.get_model(facts.model_id)
        if model is not None and model.latest_version is not None:
            latest = model.latest_version.id
    resolved = resolve_columns(
        parse_columns(columns),
        VersionFacts(facts.stored, latest, facts.model_id, facts.versions),
    )
    notes: list[str] = [column.note for column in resolved if column.note]
    planned = []
    schemas: dict[str, dict[str, Any] | None] = {}
    for column in resolved:
        if column.version_id not in schemas:
            schemas[column.version_id] = _schema(gateway, column, notes)
        schema = schemas[column.version_id]
        inputs: dict[int, dict[str, Any]] = {}
        # The site types the trigger word the version learned; the app sends the row's.
        sent = (
            column.trigger_word or facts.profile.trigger_word
            if column.style is Style.SITE
            else facts.profile.trigger_word
        )
        for seed in shared_seeds:
            if column.style is Style.SITE:
                inputs[seed] = site_input(schema, trigger_word=sent, prompt=body, seed=seed)
            else:
                inputs[seed] = app_input(
                    _profile_for(column, facts.profile), prompt=body, category=category, seed=seed
                )
        first = inputs[shared_seeds[0]]
        planned.append(
            PlannedColumn(
                column=column,
                schema_known=declared_inputs(schema) is not None,
                ignored=ignored_inputs(schema, first),
                inputs=inputs,
                trigger_sent=sent,
            )
        )
    return ComparePlan(
        facts=facts,
        columns=tuple(planned),
        prompt=body,
        preset=chosen_preset,
        category=category,
        seeds=shared_seeds,
        repeat=repeat,
        notes=tuple(notes),
    )


def _profile_for(column: Column, profile: AppProfile) -> AppProfile:
    """The row's profile; a version other than the stored one gets its own weights."""
    if column.name == "stored" or column.weights_url is None:
        return profile
    return replace(profile, lora_weights_url=column.weights_url)


def _schema(gateway: ReplicateGateway, column: Column, notes: list[str]) -> dict[str, Any] | None:
    if column.model_id is None:
        notes.append(f"{column.label}: no model known, so its inputs cannot be checked.")
        return None
    try:
        schema = gateway.version_input_schema(column.model_id, column.version_id)
    except ReplicateError as exc:
        if exc.status == 404:
            raise DataRejected(
                f"{column.label}: version {column.version_id[:12]}… is not a version of "
                f"{column.model_id} on Replicate."
            ) from exc
        raise
    if schema is None:
        notes.append(
            f"{column.label}: Replicate gives no input schema for this version, so which "
            "inputs it ignores cannot be said."
        )
    return schema
