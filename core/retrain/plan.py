"""What a retrain will send: the destination, the trigger word, the pinned trainer and the
training input, checked against the trainer's own schema.

The seeds' retrain bugs are decided here, once, as pure functions of what the ledger
knows: the destination is the user's existing model (found from their succeeded
trainings even when the row lost it; never a new model), the trigger word is the one the
user's current version was trained with (never a new one), and the training input is the
app's own (its adaptive table by photo count, ``core.app.calls``), with every input
the trainer's ``TrainingInput`` schema does not declare listed as "ignored by this
trainer": Replicate drops undeclared inputs silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.app.calls import APP_TRAINER, APP_TRAINER_VERSION, training_input
from core.compare.inputs import declared_inputs, ignored_inputs
from core.drift.facts import TrainingRecord, blank_to_none
from core.errors import DataRejected
from core.gateway.values import ModelVersion
from core.ledger.datasets import input_images_url
from core.versions import normalise_version

# The trainer every retrain uses, pinned: the app's own since late 2025.
RETRAIN_TRAINER = APP_TRAINER
RETRAIN_TRAINER_VERSION = APP_TRAINER_VERSION

MAX_PHOTOS = 40  # photos a retrain takes at most (uploads and earlier photos together)
MAX_PHOTO_BYTES = 15 * 1024 * 1024  # per photo, as the app's own upload limit

# Findings whose fix is a retrain (their fix text is the drift engine's RETRAIN_ADVICE):
# the User page links each to the wizard.
RETRAIN_FINDINGS = frozenset({"DATASET_SHRANK", "DATASET_DEGRADED"})

# What each input of the app's training means, for the wizard's parameter table.
INPUT_MEANINGS: Mapping[str, str] = {
    "input_images": "the ZIP of training photos (the files API URL of the uploaded ZIP)",
    "trigger_word": "the word the LoRA learns for this person; the app prepends it to prompts",
    "steps": "training steps: more learns the face harder (and risks over-fitting)",
    "training_steps": "training steps, as fast-flux-trainer names them",
    "lora_rank": "the LoRA's capacity (rank): higher holds more detail, needs more photos",
    "network_alpha": "scales the LoRA's updates; the app sets it equal to the rank",
    "num_repeats": "how often each photo is seen per epoch: fewer photos are repeated more",
    "optimizer": "the optimiser the trainer uses",
    "batch_size": "photos per training step",
    "resolution": "the training resolution in px (photos are scaled to it)",
    "autocaption": "caption each photo automatically before training",
    "learning_rate": "how far each step moves the weights",
    "caption_dropout_rate": "share of steps that train without the caption",
    "cache_latents_to_disk": "trainer memory setting; no effect on the result",
    "save_every_n_steps": "checkpoint interval; no effect on the final weights",
    "guidance_scale_training": "guidance used while training",
    "lr_scheduler": "how the learning rate changes over the steps",
}


@dataclass(frozen=True)
class RetrainTarget:
    """Where a user's retrain goes, from the ledger: never a new model or trigger word."""

    destination: str  # owner/name
    trigger_word: str
    previous_training_id: str  # the succeeded training behind the current version
    previous_zip_url: str | None  # its photos: the dataset the gate compares with
    # Every succeeded training's photos, oldest first, labelled by the version it made
    # (v1, v2…): a retrain that only had the newest (fewer, squeezed) photos is how the
    # app's retrains got worse; the wizard offers them all and drops what the checks reject.
    photo_zips: tuple[tuple[str, str], ...]
    current_version: str | None  # the bare hash the row stores (None: malformed or empty)
    notes: tuple[str, ...]  # e.g. the row lost its model id: found from the ledger
    why: str = ""  # why this destination, in words ("the model the app's row points at…")
    # The user's other models (their succeeded trainings went there too), newest first:
    # the wizard names them and lets the admin choose one instead.
    other_destinations: tuple[str, ...] = ()
    # The destination's versions the user's trainings made (id, made at): for naming them.
    versions: tuple[ModelVersion, ...] = ()


@dataclass(frozen=True)
class InputRow:
    name: str
    value: Any
    meaning: str
    ignored: bool  # the trainer does not declare it: Replicate drops it


@dataclass(frozen=True)
class TrainingPlan:
    trainer: str
    trainer_version: str
    destination: str
    trigger_word: str
    image_count: int
    training_input: Mapping[str, Any]  # without input_images (the ZIP is not uploaded yet)
    schema_known: bool
    ignored: tuple[str, ...]

    def rows(self) -> tuple[InputRow, ...]:
        return tuple(
            InputRow(name, value, INPUT_MEANINGS.get(name, ""), name in self.ignored)
            for name, value in self.training_input.items()
        )

    def with_zip(self, zip_url: str) -> dict[str, Any]:
        """The input as sent, once the ZIP is uploaded."""
        return {**self.training_input, "input_images": zip_url}


def retrain_target(
    trainings: Sequence[TrainingRecord],
    *,
    stored_version: str | None,
    row_model: str | None,
    into: str | None = None,
) -> RetrainTarget:
    """The user's destination and trigger word from their succeeded trainings (oldest
    first or any order). ``DataRejected`` when they never had a succeeded training: the
    wizard retrains an existing model, it does not make a first one.

    By default the retrain goes into the model the row's current version was trained into;
    ``into`` (an admin's choice) is another of the user's models, one their succeeded
    trainings went into, and then its own latest training gives the trigger word and the
    photos compared against (``DataRejected`` for a model that is not one of theirs)."""
    succeeded = sorted(
        (t for t in trainings if t.status == "succeeded" and t.version_hash is not None),
        key=lambda t: (t.created_at is None, t.created_at),
    )
    if not succeeded:
        raise DataRejected(
            "This user has no succeeded training on record, so there is no model or trigger "
            "word to keep. Sync the training history (the User page does it) or let the "
            "user train once in the app."
        )
    notes: list[str] = []
    current = normalise_version(stored_version)
    behind = next((t for t in reversed(succeeded) if t.version_hash == current), None)
    if behind is None:
        behind = succeeded[-1]
        notes.append(
            "The row's version is not one this user's trainings made"
            + (f" ({stored_version!r})" if current else " (it is empty)")
            + ": the latest succeeded training's model and trigger word are used."
        )
    destination = behind.destination
    if destination is None:
        # output.version was a bare hash: the model is the one the user's other trainings
        # went to, else the row's (never an empty destination).
        destination = next(
            (t.destination for t in reversed(succeeded) if t.destination is not None),
            None,
        ) or blank_to_none(row_model)
        if destination is None:
            raise DataRejected(
                f"Training {behind.id} gave its version as a bare hash, without the model "
                "it went to, and neither the user's other trainings nor the row name a "
                "model: where the retrain would go is unknown."
            )
        notes.append(
            f"Training {behind.id} gave its version without the model it went to: the "
            f"retrain goes to {destination!r}, the model the user's trainings and row name."
        )
    if row_model and row_model.strip() != destination:
        notes.append(
            f"The row names model {row_model.strip()!r}, but the version it stores was "
            f"trained into {destination!r}: the retrain goes to {destination!r}."
        )
    elif not row_model:
        notes.append(f"The row lost its model id: the retrain goes to {destination!r}.")
    why = _why(destination, row_model, found_current=behind.version_hash == current)
    models = _models_of(succeeded)
    chosen = (into or "").strip()
    if chosen and chosen != destination:
        if chosen not in models:
            raise DataRejected(
                f"{chosen!r} is not a model this user's trainings went into; a retrain goes "
                f"into one of theirs: {', '.join(repr(model) for model in models)}."
            )
        behind = next(t for t in reversed(succeeded) if t.destination == chosen)
        notes = [
            f"You chose {chosen!r} instead of {destination!r} (the one the row's current "
            f"version was trained into): its latest training {behind.id} gives the trigger "
            "word and the photos the gate compares with."
        ]
        destination, why = chosen, "the model you chose"
    trigger = behind.input.get("trigger_word")
    if not isinstance(trigger, str) or not trigger.strip():
        raise DataRejected(
            f"Training {behind.id} records no trigger word, so the one the user's version "
            "learnt is unknown; a retrain would teach a new one."
        )
    photo_zips: list[tuple[str, str]] = []
    for number, training in enumerate(succeeded, start=1):
        url = input_images_url(training)
        if url and url not in (known for _, known in photo_zips):
            photo_zips.append((f"v{number}", url))
    return RetrainTarget(
        destination=destination,
        trigger_word=trigger.strip(),
        previous_training_id=behind.id,
        previous_zip_url=input_images_url(behind),
        photo_zips=tuple(photo_zips),
        current_version=current,
        notes=tuple(notes),
        why=why,
        other_destinations=tuple(model for model in models if model != destination),
        versions=_versions_of(succeeded, destination),
    )


def _versions_of(succeeded: Sequence[TrainingRecord], destination: str) -> tuple[ModelVersion, ...]:
    """The destination's versions the user's trainings made, each made when its training
    ended (for ``core.versions.version_name``)."""
    found = []
    for training in succeeded:
        version = training.version_hash
        if version is not None and training.destination == destination:
            found.append(ModelVersion(version, training.completed_at or training.created_at))
    return tuple(found)


def _models_of(succeeded: Sequence[TrainingRecord]) -> tuple[str, ...]:
    """The models the user's succeeded trainings went into, newest training first."""
    return tuple(
        dict.fromkeys(t.destination for t in reversed(succeeded) if t.destination is not None)
    )


def _why(destination: str, row_model: str | None, *, found_current: bool) -> str:
    """Why the default destination, in words (the notes tell what was odd on the way)."""
    points = (row_model or "").strip() == destination
    if found_current:
        return (
            "the model the app's row points at, and the one its current version was trained into"
            if points
            else "the model the row's current version was trained into"
        )
    return (
        "the model the app's row points at, and the one of the user's latest succeeded training"
        if points
        else "the model of the user's latest succeeded training"
    )


def plan_training(
    target: RetrainTarget,
    trainer_schema: Mapping[str, Any] | None,
    *,
    image_count: int,
    trainer: str = RETRAIN_TRAINER,
    trainer_version: str = RETRAIN_TRAINER_VERSION,
) -> TrainingPlan:
    """The app's training input for ``image_count`` photos into the target, and which of
    its inputs the trainer's ``TrainingInput`` schema does not declare (pure)."""
    planned = training_input(
        image_count=image_count, trigger_word=target.trigger_word, input_images=""
    )
    planned.pop("input_images", None)
    return TrainingPlan(
        trainer=trainer,
        trainer_version=trainer_version,
        destination=target.destination,
        trigger_word=target.trigger_word,
        image_count=image_count,
        training_input=planned,
        schema_known=declared_inputs(trainer_schema) is not None,
        ignored=ignored_inputs(trainer_schema, planned),
    )


def target_of_draft(row: Any) -> RetrainTarget:
    """The target a draft was opened with, as stored on it (pure): a draft's destination
    and trigger word are fixed when it opens, whatever the ledger says later."""
    return RetrainTarget(
        destination=row.destination,
        trigger_word=row.trigger_word,
        previous_training_id=row.previous_training_id or "",
        previous_zip_url=row.previous_zip_url,
        photo_zips=tuple((str(zip_["label"]), str(zip_["url"])) for zip_ in row.source_zips),
        current_version=row.previous_version,
        notes=(),
    )


def plan_of_draft(row: Any, image_count: int) -> TrainingPlan:
    """What the draft would send with ``image_count`` photos: its stored target, the
    trainer it pinned and that trainer's schema as read when it opened (pure). The page,
    the command line and the confirmation all show and fix this one plan."""
    return plan_training(
        target_of_draft(row),
        row.trainer_schema,
        image_count=image_count,
        trainer=row.trainer_model,
        trainer_version=row.trainer_version,
    )


def confirmed_target(plan: TrainingPlan) -> dict[str, Any]:
    """What a confirmation fixes, as stored on the retrain (``confirmed``)."""
    return {
        "destination": plan.destination,
        "trigger_word": plan.trigger_word,
        "trainer_model": plan.trainer,
        "trainer_version": plan.trainer_version,
        "photos": plan.image_count,
    }
