"""Act out one demo user's script against Replicate (the sandbox), the way the app did.

Every Replicate-side fact is made through the API with the real client: the ZIP goes to
the blob store, the destination model is created on 404, the training runs on the
trainer with the app's input, and images are generated with the app's exact prediction
input from the row as it stood. The row itself is replayed with ``core.demo.app_row``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import httpx

from core.app import calls as app_calls
from core.demo import app_row
from core.demo.app_row import ModelRow
from core.demo.personas import Cast
from core.demo.photos import photo_set, zip_of
from core.demo.script import Aftermath, Completion, TrainingStep, Upload
from core.errors import InvalidInput, InvalidVersion, ReplicateUnavailable
from core.gateway.gateway import ReplicateGateway
from core.gateway.values import Prediction, Training

POLL_SECONDS = 0.02
JOB_TIMEOUT_SECONDS = 120.0
# What users asked Maya for: (category, concept title, prompt).
CONCEPTS: tuple[tuple[str, str, str], ...] = (
    ("portrait", "Golden hour", "golden hour portrait on a rooftop, soft backlight, 85mm"),
    ("headshot", "LinkedIn headshot", "professional headshot, neutral grey backdrop, blazer"),
    ("editorial", "Magazine cover", "editorial fashion photo, bold colour blocking, studio"),
    ("lifestyle", "Coffee shop", "candid photo in a cozy coffee shop, natural window light"),
    ("portrait", "Beach walk", "walking on the beach at sunset, linen shirt, wind in hair"),
    ("editorial", "City street", "street style photo in a busy city, trench coat, overcast"),
)


@dataclass(frozen=True)
class TrainingRun:
    """One training as it ended on Replicate, with what the app uploaded for it."""

    training: Training
    destination: str
    zip_url: str
    image_count: int
    version_before: str | None = None  # the row's version when the training was started


@dataclass(frozen=True)
class Generation:
    """One image the user made (or tried to), as the app records it."""

    prediction_id: str
    status: str  # ai_images.generation_status: completed or failed
    image_url: str | None
    concept: str
    category: str
    prompt: str  # the final prompt sent to Replicate
    created_at: datetime


@dataclass(frozen=True)
class PersonaHistory:
    """Everything one persona's script produced."""

    cast: Cast
    row: ModelRow | None
    trainings: tuple[TrainingRun, ...]
    generations: tuple[Generation, ...]
    refused_generations: int  # creates Replicate refused (422): the app records nothing


class TrainingStarts:
    """Lets trainings start concurrently, except one that must start alone.

    The sandbox's "fail the next training" plan applies to whichever training is
    created next, so a planned failure takes this gate exclusively.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0
        self._exclusive = False
        self._waiting = 0  # exclusive starts waiting: they go first, so they are not starved

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._exclusive and not self._waiting)
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._changed:
            self._waiting += 1
            self._changed.wait_for(lambda: not self._exclusive and self._running == 0)
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._changed:
                self._exclusive = False
                self._changed.notify_all()


@dataclass(frozen=True)
class Stage:
    """What a player needs: the gateway, the sandbox, the owner, the start gate."""

    gateway: ReplicateGateway
    sandbox: httpx.Client  # base_url = the sandbox: its blob store and control API
    owner: str
    starts: TrainingStarts
    report: Callable[[str], None]


def play(cast: Cast, stage: Stage) -> PersonaHistory:
    """Run the persona's script end to end; returns what it left behind."""
    user_id = cast.persona.user_id
    rng = random.Random(f"generations:{user_id}")
    row: ModelRow | None = None
    trainings: list[TrainingRun] = []
    generations: list[Generation] = []
    refused = 0
    total = len(cast.script.steps)
    for number, step in enumerate(cast.script.steps, start=1):
        stage.report(f"{cast.persona.key}: training {number}/{total}")
        row, record = _train(cast, step, row, stage)
        trainings.append(record)
        made, refusals = _generate(cast, row, step.generations, rng, stage)
        generations += made
        refused += refusals
    if cast.script.aftermath is not None:
        row = _aftermath(cast.script.aftermath, row, trainings, stage)
        made, refusals = _generate(cast, row, cast.script.generations_after, rng, stage)
        generations += made
        refused += refusals
    stage.report(f"{cast.persona.key}: done")
    return PersonaHistory(cast, row, tuple(trainings), tuple(generations), refused)


def upload_zip(upload: Upload, *, look: int) -> bytes:
    """The training ZIP for ``upload``: the person's shots, treated as the upload was."""
    indexes = range(upload.first_shot, upload.first_shot + upload.count)
    return zip_of(
        photo_set(
            look,
            indexes,
            long_side=upload.long_side,
            blur=upload.blur,
            jpeg_quality=upload.jpeg_quality,
        )
    )


# -- training -------------------------------------------------------------------------------


def _train(
    cast: Cast, step: TrainingStep, row: ModelRow | None, stage: Stage
) -> tuple[ModelRow, TrainingRun]:
    user_id = cast.persona.user_id
    version_before = row.replicate_version_id if row is not None else None
    zip_url = _put_blob(
        stage,
        app_calls.training_zip_path(user_id, now_ms()),
        upload_zip(step.upload, look=cast.profile.look),
        "application/zip",
    )
    trigger = app_row.trigger_for_next_training(row, user_id)
    destination = _destination(stage.owner, user_id, row, step)
    row = app_row.reset_for_submit(
        row,
        user_id=user_id,
        trigger_word=trigger,
        lora_scale=cast.profile.lora_scale,
        at=utc_now(),
        keep_version=step.completion is Completion.KEPT_PREVIOUS,
    )
    if stage.gateway.get_model(destination) is None:
        stage.gateway.create_model(destination, visibility="private", hardware="gpu-t4")
    training_input = app_calls.training_input(
        image_count=step.upload.count, trigger_word=trigger, input_images=zip_url
    )
    training = _start_training(stage, step, destination, training_input)
    row = app_row.submitted(
        row,
        training=training,
        destination=destination,
        at=naive_utc(training.created_at) or utc_now(),
    )
    # Replicate finishes the training whether or not the app ever asks about it.
    training_id = training.id
    training = _wait(lambda: stage.gateway.get_training(training_id))
    newest = None
    if training.status == "succeeded":
        versions = stage.gateway.list_versions(destination)
        newest = versions[0].id if versions else None
    row = app_row.polled(
        row,
        training=training,
        newest_version=newest,
        completion=step.completion,
        at=naive_utc(training.completed_at) or utc_now(),
    )
    return row, TrainingRun(training, destination, zip_url, step.upload.count, version_before)


def _destination(owner: str, user_id: str, row: ModelRow | None, step: TrainingStep) -> str:
    """A retrain reuses the row's model; otherwise the app's name; a fork names another."""
    standard = app_calls.destination_model(owner, user_id)
    if step.destination_name is not None:
        base = standard.split("/", 1)[1]
        return f"{owner}/{step.destination_name.format(base=base)}"
    if app_row.is_retrain(row) and row is not None and row.replicate_model_id:
        return row.replicate_model_id
    return standard


def _start_training(
    stage: Stage, step: TrainingStep, destination: str, training_input: dict[str, object]
) -> Training:
    def create() -> Training:
        return stage.gateway.create_training(
            step.trainer, step.trainer_version, destination, training_input
        )

    if not step.fails:
        with stage.starts.shared():
            return create()
    with stage.starts.exclusive():
        planned = stage.sandbox.post(
            "/_sandbox/trainings/next", json={"outcome": "fail", "error": step.failure}
        )
        planned.raise_for_status()
        return create()


# -- generation -----------------------------------------------------------------------------


def _generate(
    cast: Cast, row: ModelRow | None, count: int, rng: random.Random, stage: Stage
) -> tuple[list[Generation], int]:
    """``count`` images through the main generate route, which needs a completed row."""
    if count == 0 or row is None or row.training_status != "completed":
        return [], 0
    if not row.replicate_version_id:
        return [], 0
    made: list[Generation] = []
    refused = 0
    for _ in range(count):
        category, concept, wish = rng.choice(CONCEPTS)
        prompt = app_calls.generation_prompt(
            trigger_word=row.trigger_word,
            ethnicity=cast.profile.ethnicity,
            gender=cast.profile.gender,
            prompt=wish,
        )
        prediction_input = app_calls.prediction_input(
            prompt=prompt,
            lora_weights_url=row.lora_weights_url,
            lora_scale=row.lora_scale,
            seed=rng.randrange(1_000_000),
            category=category,
        )
        try:
            prediction = stage.gateway.create_prediction(
                app_calls.bare_version(row.replicate_version_id), prediction_input, wait=True
            )
        except (InvalidVersion, InvalidInput):
            refused += 1  # the route answers 500 and writes no row
            continue
        if not prediction.is_terminal:
            prediction = _wait_prediction(stage, prediction.id)
        made.append(_recorded(cast.persona.user_id, prediction, concept, category, prompt, stage))
    return made, refused


def _recorded(
    user_id: str, prediction: Prediction, concept: str, category: str, prompt: str, stage: Stage
) -> Generation:
    """The app copies each output to its blob store and keeps that URL."""
    image_url = None
    if prediction.status == "succeeded" and prediction.output:
        output = stage.sandbox.get(prediction.output[0])
        output.raise_for_status()
        image_url = _put_blob(
            stage, f"generated/{user_id}/{prediction.id}.png", output.content, "image/png"
        )
    return Generation(
        prediction_id=prediction.id,
        status="completed" if image_url else "failed",
        image_url=image_url,
        concept=concept,
        category=category,
        prompt=prompt,
        created_at=naive_utc(prediction.created_at) or utc_now(),
    )


# -- what happened afterwards --------------------------------------------------------------


def _aftermath(
    kind: Aftermath, row: ModelRow | None, trainings: list[TrainingRun], stage: Stage
) -> ModelRow | None:
    if row is None:
        return None
    at = utc_now()
    if kind is Aftermath.TRIGGER_OVERWRITTEN:
        # A refactored route built the trigger with an underscore: one the LoRA never saw.
        return replace(row, trigger_word=f"user_{row.user_id[:8]}", updated_at=at)
    if kind is Aftermath.MODEL_ID_CLEARED:
        return replace(row, replicate_model_id=None, updated_at=at)
    if kind is Aftermath.WEIGHTS_REBUILT:
        version = app_calls.bare_version(row.replicate_version_id or "")
        return replace(row, lora_weights_url=app_calls.pbxt_weights_url(version), updated_at=at)
    for model_id in dict.fromkeys(record.destination for record in trainings):
        _delete_model(stage, model_id)
    return row


def _delete_model(stage: Stage, model_id: str) -> None:
    """Versions first, then the model. The gateway has no delete (the console never
    deletes), so the demo asks the sandbox's own API, which takes any token."""
    sandbox_token = {"Authorization": "Bearer r8_demo_world"}
    for version in stage.gateway.list_versions(model_id):
        stage.sandbox.delete(
            f"/v1/models/{model_id}/versions/{version.id}", headers=sandbox_token
        ).raise_for_status()
    stage.sandbox.delete(f"/v1/models/{model_id}", headers=sandbox_token).raise_for_status()


# -- plumbing ------------------------------------------------------------------------------


def _put_blob(stage: Stage, path: str, content: bytes, content_type: str) -> str:
    response = stage.sandbox.put(
        f"/_blob/{path}", content=content, headers={"content-type": content_type}
    )
    response.raise_for_status()
    return str(response.json()["url"])


def _wait(fetch: Callable[[], Training]) -> Training:
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    training = fetch()
    while not training.is_terminal:
        if time.monotonic() > deadline:
            raise ReplicateUnavailable(
                f"Training {training.id} did not finish within {JOB_TIMEOUT_SECONDS:.0f} s; "
                "check the sandbox's pace (/_sandbox/config) and seed again."
            )
        time.sleep(POLL_SECONDS)
        training = fetch()
    return training


def _wait_prediction(stage: Stage, prediction_id: str) -> Prediction:
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    prediction = stage.gateway.get_prediction(prediction_id)
    while not prediction.is_terminal:
        if time.monotonic() > deadline:
            raise ReplicateUnavailable(
                f"Prediction {prediction_id} did not finish within {JOB_TIMEOUT_SECONDS:.0f} s."
            )
        time.sleep(POLL_SECONDS)
        prediction = stage.gateway.get_prediction(prediction_id)
    return prediction


def now_ms() -> int:
    """Milliseconds since the epoch, as the app stamps its ZIPs' names."""
    return time.time_ns() // 1_000_000


def utc_now() -> datetime:
    """Now, as the app's ``timestamp without time zone`` columns hold it (UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(moment: datetime | None) -> datetime | None:
    """The app's columns are ``timestamp without time zone`` holding UTC."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
