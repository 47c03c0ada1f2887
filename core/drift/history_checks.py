"""Checks across the user's trainings: destinations, datasets, trainer and parameters.

Choices where the vocabulary leaves room:
- Destinations come from succeeded trainings only: Replicate reports no destination, it
  is read from ``output.version``.
- DATASET_SHRANK / DATASET_DEGRADED judge "the training behind the latest version": the
  ledger training whose output hash is the row's model's latest version, against the
  succeeded training just before it. They are skipped when the model's versions are
  unknown, when no ledger training made the latest version, and when there is no earlier
  succeeded training (a first training is not a drift). A comparison needs both
  datasets read; "fewer than min_photos" needs only the latest one.
- "More photos failing checks" counts photos, not shares: five blurry photos are five
  bad photos whatever the dataset size.
- TRAINER_CHANGED / PARAMS_CHANGED compare the last two succeeded trainings, whichever
  model they went to. Parameters are compared as sent (a dict comparison, so key order
  never matters); the app scales steps, rank, alpha and repeats with the photo count, so
  a retrain on fewer photos usually changes them too, and that is reported.
"""

from __future__ import annotations

from typing import Any

from core.drift.codes import threshold
from core.drift.context import Context
from core.drift.facts import DatasetFacts, TrainingRecord
from core.drift.findings import Finding, Fix, make_finding, short
from core.redaction import shown_value

# The inputs the app derives from the photo count (app-facts.md, "Adaptive parameters").
ADAPTIVE_PARAMETERS = frozenset({"steps", "lora_rank", "network_alpha", "num_repeats"})
RETRAIN_ADVICE = (
    "Retrain with the previous training's photos plus the new ones, at full "
    "quality (not squeezed to fit 4 MB), with at least 10 sharp single-face "
    "selfies, into this user's existing model with their trained trigger word."
)


def check_duplicate_models(ctx: Context) -> Finding | None:
    destinations = ctx.destinations
    latest = ctx.latest_destination
    split = len(destinations) > 1
    row_elsewhere = ctx.model_id is not None and latest is not None and latest != ctx.model_id
    if not (split or row_elsewhere):
        return None
    by_destination = {
        model_id: [record.id for record in ctx.trainings if record.destination == model_id]
        for model_id in destinations
    }
    if row_elsewhere:
        text = (
            f"The latest training went to {latest} but the row uses {ctx.model_id}: decide "
            "which model the user generates from, and retrain only into that one."
        )
    else:
        text = (
            f"The row follows {latest}; the other model(s) hold older versions. Retrain "
            "only into the row's model (the app starts a new one when the last attempt "
            "failed or was cancelled)."
        )
    last = ctx.last_succeeded
    return make_finding(
        "DUPLICATE_MODELS",
        evidence={
            "model_id": ctx.model_id,
            "destinations": list(destinations),
            "trainings_by_destination": by_destination,
            "latest_destination": latest,
            "latest_succeeded_training_id": last.id if last else None,
        },
        fix=Fix(None, text),
        destination_count=len(destinations),
        row_model=(
            f"{ctx.model_id or 'no model'}, not {latest} where the latest went"
            if row_elsewhere
            else f"the latest, {latest}"
        ),
    )


def _datasets(ctx: Context) -> tuple[TrainingRecord, TrainingRecord] | None:
    """The training behind the model's latest version and the succeeded one before it."""
    behind = ctx.latest_producer
    previous = ctx.succeeded_before(behind) if behind is not None else None
    if behind is None or previous is None:
        return None
    return behind, previous


def _readable(record: TrainingRecord) -> DatasetFacts | None:
    return record.dataset if record.dataset is not None and record.dataset.readable else None


def _dataset_evidence(
    behind: TrainingRecord, previous: TrainingRecord, reasons: list[str]
) -> dict[str, Any]:
    return {
        "training_id": behind.id,
        "latest_version": behind.version_hash,
        "previous_training_id": previous.id,
        "reasons": reasons,
        "dataset": behind.dataset.summary() if behind.dataset else None,
        "previous_dataset": previous.dataset.summary() if previous.dataset else None,
    }


def _drop(before: float, after: float) -> float:
    return (before - after) / before if before > 0 else 0.0


def check_dataset_shrank(ctx: Context) -> Finding | None:
    pair = _datasets(ctx)
    if pair is None:
        return None
    behind, previous = pair
    now, before = _readable(behind), _readable(previous)
    count = now.image_count if now is not None else None
    if count is None:
        return None
    before_count = before.image_count if before is not None else None
    reasons = []
    if before_count is not None and _drop(before_count, count) >= threshold("shrink_fraction"):
        reasons.append(f"{_drop(before_count, count):.0%} fewer photos than before")
    if count < threshold("min_photos"):
        reasons.append(f"fewer than {threshold('min_photos'):g} photos")
    if not reasons:
        return None
    return make_finding(
        "DATASET_SHRANK",
        evidence=_dataset_evidence(behind, previous, reasons),
        fix=Fix(None, RETRAIN_ADVICE),
        image_count=count,
        previous_image_count=before_count if before_count is not None else "an unknown number",
    )


def check_dataset_degraded(ctx: Context) -> Finding | None:
    pair = _datasets(ctx)
    if pair is None:
        return None
    behind, previous = pair
    now, before = _readable(behind), _readable(previous)
    if now is None or before is None:
        return None
    reasons = []
    side, side_before = now.median_short_side, before.median_short_side
    if side is not None and side_before is not None:
        if _drop(side_before, side) >= threshold("short_side_drop_fraction"):
            reasons.append(
                f"median short side {side} px, down {_drop(side_before, side):.0%} "
                f"from {side_before} px"
            )
        elif side < threshold("min_short_side_px") <= side_before:
            reasons.append(
                f"median short side {side} px, now under "
                f"{threshold('min_short_side_px'):g} px (was {side_before} px)"
            )
    failing, failing_before = now.photos_failing, before.photos_failing
    if (
        failing is not None
        and failing_before is not None
        and failing - failing_before >= threshold("failing_photos_increase")
    ):
        reasons.append(f"{failing} photos failing checks (was {failing_before})")
    if not reasons:
        return None
    return make_finding(
        "DATASET_DEGRADED",
        evidence=_dataset_evidence(behind, previous, reasons),
        fix=Fix(None, RETRAIN_ADVICE),
        worse="; ".join(reasons),
    )


def _last_two(ctx: Context) -> tuple[TrainingRecord, TrainingRecord] | None:
    return (ctx.succeeded[-2], ctx.succeeded[-1]) if len(ctx.succeeded) >= 2 else None


def check_trainer_changed(ctx: Context) -> Finding | None:
    pair = _last_two(ctx)
    if pair is None:
        return None
    previous, last = pair
    same_model = previous.trainer_model == last.trainer_model
    if same_model and previous.trainer_version == last.trainer_version:
        return None

    def label(record: TrainingRecord) -> str:
        return (
            record.trainer_model
            if not same_model
            else f"{record.trainer_model}:{short(record.trainer_version)}"
        )

    return make_finding(
        "TRAINER_CHANGED",
        evidence={
            "training_id": last.id,
            "previous_training_id": previous.id,
            "trainer_model": [previous.trainer_model, last.trainer_model],
            "trainer_version": [previous.trainer_version, last.trainer_version],
        },
        fix=Fix(
            None,
            "Trainers read the same input differently: compare the two versions "
            "side by side before retraining; the app trains with "
            "replicate/fast-flux-trainer.",
        ),
        previous_trainer=label(previous),
        trainer=label(last),
    )


def _params_advice(changed: list[str], counts: list[int | None]) -> str:
    if set(changed) <= ADAPTIVE_PARAMETERS and None not in counts and counts[0] != counts[1]:
        return (
            f"Expected from the photo count ({counts[0]} → {counts[1]}): the app scales "
            "steps, rank, alpha and repeats with it. Compare the two versions side by "
            "side; a retrain on a full dataset restores the full-dataset parameters."
        )
    return (
        "The app sent different training inputs: compare the two versions side by side "
        "before retraining with the previous parameters."
    )


def check_params_changed(ctx: Context) -> Finding | None:
    pair = _last_two(ctx)
    if pair is None:
        return None
    previous, last = pair
    before, after = previous.parameters, last.parameters
    # A key not sent equals a key sent as null: the trainer uses its default for both.
    changed = sorted(
        key for key in before.keys() | after.keys() if before.get(key) != after.get(key)
    )
    if not changed:
        return None
    diff = {
        key: [shown_value(key, before.get(key)), shown_value(key, after.get(key))]
        for key in changed
    }
    counts = [record.dataset.image_count if record.dataset else None for record in (previous, last)]
    return make_finding(
        "PARAMS_CHANGED",
        evidence={
            "training_id": last.id,
            "previous_training_id": previous.id,
            "diff": diff,
            "image_count": counts,
        },
        fix=Fix(None, _params_advice(changed, counts)),
        changed=", ".join(changed),
    )


# The watch's verdict on a retrain whose new version is worse (``core.watch``).
WORSE_VERDICT = "worse"


def check_retrain_regressed(ctx: Context) -> Finding | None:
    """The watch judged the user's latest reviewed retrain worse: its comparison found
    the new version loses the face or is further from the user beyond the noise floor.
    Raised while that review is the user's latest (a later, better retrain clears it)."""
    review = ctx.facts.retrain
    if review is None or review.verdict != WORSE_VERDICT:
        return None
    previous = review.previous_version
    return make_finding(
        "RETRAIN_REGRESSED",
        evidence={
            "training_id": review.training_id,
            "comparison_id": review.comparison_id,
            "previous_version": previous,
            "new_version": review.new_version,
            "stored_version": ctx.stored_hash,
            "reason": review.reading.get("sentence") or review.sentence,
            "change": review.reading.get("change"),
            "noise_floor": review.reading.get("noise_floor"),
        },
        fix=Fix(
            None,
            (
                f"Keep the app on the version before the retrain ({short(previous)}…) and "
                if previous
                else "Keep the app on the version before the retrain and "
            )
            + "open the comparison; then "
            + RETRAIN_ADVICE[0].lower()
            + RETRAIN_ADVICE[1:],
        ),
        comparison_id=review.comparison_id if review.comparison_id is not None else "?",
    )
