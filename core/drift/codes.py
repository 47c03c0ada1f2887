"""The drift engine's vocabulary: finding codes, thresholds and repairs, each with its help.

Three self-describing tables (like datasette's ``Setting(name, default, help)``) that the
pages and README render from, and that the checks read so no number or wording hides in
them: ``CODES`` (product.md's "Findings vocabulary", in its order), ``THRESHOLDS`` (every
number a check compares with) and ``REPAIRS`` (the only actions a ``Fix`` may name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Severity(StrEnum):
    """How bad a finding is; ``rank`` orders them, most serious first."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class CodeSpec:
    """One finding code: its severity, one-line title template and when it is raised.

    ``title`` is a ``str.format`` template filled by the check that raises the code.
    """

    code: str
    severity: Severity
    title: str
    help: str

    @property
    def plain(self) -> str:
        """What the code means in a few words a support agent reads at a glance."""
        return PLAIN_WORDS[self.code]


CODES: tuple[CodeSpec, ...] = (
    CodeSpec(
        "VERSION_FORMAT",
        Severity.CRITICAL,
        "Version stored as {shape}, not a bare 64-hex id",
        "The stored replicate_version_id is not exactly 64 lowercase hex (e.g. "
        "owner/name:hash, a short hash, whitespace), or is empty on a completed row.",
    ),
    CodeSpec(
        "VERSION_NOT_IN_MODEL",
        Severity.CRITICAL,
        "Generating with {identified_as}, not a version of {model_id}",
        "The stored hash, normalised (text after the last ':', stripped, lower-cased), "
        "is not a version of replicate_model_id (e.g. the trainer's version, another "
        "model's).",
    ),
    CodeSpec(
        "STALE_VERSION",
        Severity.CRITICAL,
        "Generating with a version {versions_behind} behind the latest",
        "The row is completed and its hash is a version of the model but not the latest, "
        "and the latest came from a succeeded training of this user.",
    ),
    CodeSpec(
        "TRIGGER_WORD_MISMATCH",
        Severity.CRITICAL,
        "Trigger word {stored_trigger_word!r} is not the trained {trained_trigger_word!r}",
        "The row's trigger_word differs from input.trigger_word of the training that "
        "produced the stored version (else of the latest succeeded training).",
    ),
    CodeSpec(
        "MODEL_ID_MISSING",
        Severity.CRITICAL,
        "No model stored in the row, though {reason}",
        "replicate_model_id is empty while the row is completed, has a training_id, or "
        "the user has trainings.",
    ),
    CodeSpec(
        "MODEL_NOT_FOUND",
        Severity.CRITICAL,
        "Model {model_id} no longer exists on Replicate (404)",
        "replicate_model_id is set but Replicate answers 404 for it.",
    ),
    CodeSpec(
        "VERSION_LOST",
        Severity.CRITICAL,
        "No version to generate with, though {last_good_short}… of training "
        "{last_good_training_id} still exists",
        "replicate_version_id is empty and the row is failed or pending, while an earlier "
        "succeeded training of this user produced a version that still exists.",
    ),
    CodeSpec(
        "STATUS_OUT_OF_SYNC",
        Severity.WARNING,
        "Row says {row_status!r} but Replicate says {replicate_status!r} for training "
        "{training_id}",
        "The row's training_status disagrees with the Replicate status of its training_id "
        "(starting/processing → training; succeeded → completed; "
        "failed/canceled/aborted → failed).",
    ),
    CodeSpec(
        "WEIGHTS_URL_MISMATCH",
        Severity.WARNING,
        "Weights URL is not the weights of training {training_id}, which made the stored version",
        "lora_weights_url differs from output.weights of the training that produced the "
        "stored version.",
    ),
    CodeSpec(
        "DUPLICATE_MODELS",
        Severity.WARNING,
        "Trainings went to {destination_count} model(s); the row uses {row_model}",
        "The user's trainings went to more than one destination model, or the row's model "
        "is not the destination of the user's latest succeeded training.",
    ),
    CodeSpec(
        "DATASET_SHRANK",
        Severity.WARNING,
        "Latest version trained on {image_count} photos, {previous_image_count} before",
        "The training behind the model's latest version used at least shrink_fraction "
        "fewer photos than the previous succeeded training, or fewer than min_photos.",
    ),
    CodeSpec(
        "DATASET_DEGRADED",
        Severity.WARNING,
        "Latest version trained on worse photos: {worse}",
        "The dataset behind the model's latest version is materially worse than the "
        "previous succeeded training's: median short side down by short_side_drop_fraction, "
        "or now under min_short_side_px where it was not, or more photos failing checks.",
    ),
    CodeSpec(
        "TRAINER_CHANGED",
        Severity.INFO,
        "Trainer changed from {previous_trainer} to {trainer}",
        "The trainer model or version differs between the last two succeeded trainings.",
    ),
    CodeSpec(
        "PARAMS_CHANGED",
        Severity.INFO,
        "Training parameters changed: {changed}",
        "The training inputs (everything but input_images and trigger_word: steps, rank, "
        "learning rate, resolution, repeats, captioning…) differ between the last two "
        "succeeded trainings.",
    ),
    CodeSpec(
        "RETRAIN_REGRESSED",
        Severity.CRITICAL,
        "The latest retrain made a version worse than the one before (comparison #{comparison_id})",
        "The watch's automatic comparison of the user's latest retrain (the version before "
        "it against the new one, the app's own input, fixed seeds) found the new version "
        "loses the face or is further from the user's photos beyond the noise floor.",
    ),
    CodeSpec(
        "SCAN_ERROR",
        Severity.WARNING,
        "Could not check this user: {message}",
        "This user's facts could not be fetched (the message says why); other users are "
        "unaffected.",
    ),
)

_CODES_BY_NAME: Mapping[str, CodeSpec] = MappingProxyType({spec.code: spec for spec in CODES})
CODE_ORDER: Mapping[str, int] = MappingProxyType({spec.code: n for n, spec in enumerate(CODES)})


# What each code means in a few words (the Fleet page's table, the Users page's tips);
# ``help`` says it exactly, in the app's column names.
PLAIN_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "VERSION_FORMAT": "The row's version is not stored as a bare version id",
        "VERSION_NOT_IN_MODEL": "The app generates with a version that is not this model's",
        "STALE_VERSION": "The app generates with an older version than the latest",
        "TRIGGER_WORD_MISMATCH": "The app sends a trigger word the model did not learn",
        "MODEL_ID_MISSING": "The row names no model, though the user trained one",
        "MODEL_NOT_FOUND": "The row's model does not exist on Replicate",
        "VERSION_LOST": "A failed retrain wiped the version the app generated with",
        "STATUS_OUT_OF_SYNC": "The row's training status disagrees with Replicate",
        "WEIGHTS_URL_MISMATCH": "The row's weights file is not its version's",
        "DUPLICATE_MODELS": "The user's trainings went to more than one model",
        "DATASET_SHRANK": "The latest training had fewer photos than the one before",
        "DATASET_DEGRADED": "The latest training's photos are worse than before",
        "TRAINER_CHANGED": "The trainer changed between the last two trainings",
        "PARAMS_CHANGED": "The training settings changed between the last two trainings",
        "RETRAIN_REGRESSED": "The latest retrain made the user's images worse",
        "SCAN_ERROR": "This user could not be checked",
    }
)


def code_spec(code: str) -> CodeSpec:
    """The table row of ``code``; ``KeyError`` for a code that is not in the vocabulary."""
    return _CODES_BY_NAME[code]


@dataclass(frozen=True)
class Threshold:
    """One number a check compares with, and what it means."""

    name: str
    value: float
    help: str


THRESHOLDS: tuple[Threshold, ...] = (
    Threshold(
        "shrink_fraction",
        0.25,
        "DATASET_SHRANK when the latest version's training used at least this fraction "
        "fewer photos than the previous succeeded training (20 → 15 is 0.25).",
    ),
    Threshold(
        "min_photos",
        10,
        "DATASET_SHRANK when the latest version's training used fewer photos than this; "
        "the app asks for 10–20 selfies.",
    ),
    Threshold(
        "short_side_drop_fraction",
        0.25,
        "DATASET_DEGRADED when the median short side of the photos dropped by at least "
        "this fraction since the previous succeeded training.",
    ),
    Threshold(
        "min_short_side_px",
        1024,
        "DATASET_DEGRADED when the median short side is now under this many px and was "
        "not before: FLUX LoRAs train at 1024 px, smaller photos are upscaled.",
    ),
    Threshold(
        "failing_photos_increase",
        1,
        "DATASET_DEGRADED when at least this many more photos fail the quality checks "
        "(blurry, no face, several faces, another person) than before.",
    ),
)

_THRESHOLDS_BY_NAME: Mapping[str, float] = MappingProxyType(
    {row.name: row.value for row in THRESHOLDS}
)


def threshold(name: str) -> float:
    """The value of the threshold ``name``; ``KeyError`` when the table has no such row."""
    return _THRESHOLDS_BY_NAME[name]


class RepairAction(StrEnum):
    """The repairs the console offers; a ``Fix`` names one of these or none."""

    REPOINT_LATEST = "repoint_latest"
    NORMALISE_VERSION = "normalise_version"
    RESTORE_TRIGGER_WORD = "restore_trigger_word"
    RESTORE_LAST_GOOD_VERSION = "restore_last_good_version"
    SYNC_STATUS = "sync_status"
    # Written by the retrain wizard's promotion gate (core.retrain.promote), never planned
    # from a finding: it is audited and undone as a repair is.
    PROMOTE_RETRAIN = "promote_retrain"


@dataclass(frozen=True)
class Repair:
    """One repair action and what it writes to the app's row."""

    action: RepairAction
    help: str


REPAIRS: tuple[Repair, ...] = (
    Repair(
        RepairAction.REPOINT_LATEST,
        "Set replicate_version_id to the model's latest version (bare hash) and "
        "lora_weights_url to output.weights of the training that produced it.",
    ),
    Repair(
        RepairAction.NORMALISE_VERSION,
        "Store the bare 64-hex hash the stored value already names (text after the last "
        "':', stripped, lower-cased).",
    ),
    Repair(
        RepairAction.RESTORE_TRIGGER_WORD,
        "Set trigger_word back to input.trigger_word of the training that made the version.",
    ),
    Repair(
        RepairAction.RESTORE_LAST_GOOD_VERSION,
        "After a failed retrain: store the last succeeded training's version, weights and "
        "status completed, as the row was before the retrain reset it.",
    ),
    Repair(
        RepairAction.SYNC_STATUS,
        "Write what the app's progress poll would have written for training_id: status, "
        "and on success the version and weights.",
    ),
)

# How the app maps a Replicate training status onto user_models.training_status.
ROW_STATUS_FOR_REPLICATE: Mapping[str, str] = MappingProxyType(
    {
        "starting": "training",
        "processing": "training",
        "succeeded": "completed",
        "failed": "failed",
        "canceled": "failed",
        "aborted": "failed",
    }
)
