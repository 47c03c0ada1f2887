"""The vocabulary of a demo user's history: uploads, trainings, and how the app recorded them.

A ``Script`` is a plain value: what the user uploaded and trained, in order, which of the
app's recorded faults touched their row, and how often they generated images. The player
(``core.demo.history``) acts it out against Replicate (the sandbox) the way the app did.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.app.calls import APP_TRAINER, APP_TRAINER_VERSION
from core.demo.photos import GOOD_JPEG_QUALITY, GOOD_LONG_SIDE

# What the demo's failed trainings say (the error the app then keeps as failure_reason).
TRAINING_FAILURE = "CUDA out of memory. Tried to allocate 2.00 GiB"


class Completion(StrEnum):
    """How the app's progress poll recorded a training that succeeded."""

    # As the app does today: bare hash (the model's newest version) and output.weights.
    RECORDED = "recorded"
    # An older retrain path: it skipped the reset and its poll only filled an empty
    # version, so the row kept the previous version and weights (the stale-version bug).
    KEPT_PREVIOUS = "kept_previous"
    # ``output.version`` stored verbatim: ``owner/name:hash``.
    FULL_VERSION = "full_version"
    # The training's ``version`` stored: the TRAINER's hash, not the new LoRA's.
    TRAINER_VERSION = "trainer_version"
    # Nobody opened the progress page: the row still says ``training``.
    NEVER_POLLED = "never_polled"


class Aftermath(StrEnum):
    """Something that happened to the user's model after the last training."""

    # A later code path wrote a new trigger word that the model never learned.
    TRIGGER_OVERWRITTEN = "trigger_overwritten"
    # A sync wrote NULL into ``replicate_model_id``.
    MODEL_ID_CLEARED = "model_id_cleared"
    # An admin sync replaced the weights URL with one built from the hash (pbxt).
    WEIGHTS_REBUILT = "weights_rebuilt"
    # Someone deleted the model's versions and the model on Replicate.
    MODEL_DELETED = "model_deleted"


@dataclass(frozen=True)
class Upload:
    """The photos in one training ZIP: ``count`` shots of the user from ``first_shot`` on."""

    count: int
    first_shot: int = 0
    long_side: int = GOOD_LONG_SIDE
    blur: float = 0.0
    jpeg_quality: int = GOOD_JPEG_QUALITY


@dataclass(frozen=True)
class TrainingStep:
    """One training the user started, and what followed it until the next one."""

    upload: Upload
    trainer: str = APP_TRAINER
    trainer_version: str = APP_TRAINER_VERSION
    # Another destination model name (the forked-model bug); None: the app's own choice.
    destination_name: str | None = None
    fails: bool = False
    failure: str = TRAINING_FAILURE
    completion: Completion = Completion.RECORDED
    generations: int = 1  # images the user made from the row as this training left it


@dataclass(frozen=True)
class Script:
    """A user's whole history, oldest first."""

    steps: tuple[TrainingStep, ...] = ()
    aftermath: Aftermath | None = None
    generations_after: int = 0  # images attempted after the aftermath


@dataclass(frozen=True)
class Profile:
    """The ``users`` row's human side."""

    first_name: str
    last_name: str
    plan: str
    gender: str | None
    ethnicity: str | None
    look: int  # which photo look (colour grade, framing) their selfies have
    lora_scale: float = 1.0
    legacy_auth: bool = False  # signed up under the old auth provider (stack_auth_id)
