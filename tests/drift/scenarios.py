"""The demo world's situations as in-memory facts, each with the exact codes expected.

They mirror ``core/demo/personas.py``: the same histories, reduced to what the drift engine
reads. The comment on each says why every expected code applies and why the near
misses do not. Shared by the scenario tests and the whole-engine property tests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.drift import ModelFacts, UserFacts
from core.drift.facts import RetrainReview
from tests.drift.builders import (
    FAST_TRAINER_VERSION,
    MODEL_ID,
    OSTRIS_TRAINER,
    OSTRIS_TRAINER_VERSION,
    dataset,
    healthy,
    model_of,
    row_for,
    training,
)

SECOND_MODEL_ID = f"{MODEL_ID}-v2"


@dataclass(frozen=True)
class Scenario:
    name: str
    facts: UserFacts
    expected: frozenset[str]


def _scenario(name: str, facts: UserFacts, *expected: str) -> Scenario:
    return Scenario(name, facts, frozenset(expected))


def _stale_after_three_retrains() -> UserFacts:
    # Four trainings of the same 15 photos; the row kept the first version and its own
    # weights while training_id moved on. Only STALE: weights and trigger are the first
    # training's own, and the last two datasets and parameters are identical.
    records = tuple(training(n, photos=15) for n in range(1, 5))
    first = records[0]
    return healthy(
        *records, replicate_version_id=first.version_hash, lora_weights_url=first.output_weights
    )


def _version_lost() -> UserFacts:
    # The retrain (12 photos) failed after the app reset the row; the first version
    # still exists. Not STATUS_OUT_OF_SYNC (both say failed); no dataset/param findings,
    # as only one training succeeded.
    first, failed = training(1, photos=15), training(2, photos=12, status="failed")
    row = row_for(
        first,
        replicate_version_id=None,
        lora_weights_url=None,
        training_status="failed",
        training_id=failed.id,
        failure_reason=failed.error,
        updated_at=failed.completed_at,
    )
    return UserFacts(row=row, model=model_of([first, failed]), trainings=(first, failed))


def _stuck_training() -> UserFacts:
    # Nobody polled: the row is as the app left it right after submitting.
    only = training(1, photos=15)
    return UserFacts(
        row=row_for(
            only, replicate_version_id=None, lora_weights_url=None, training_status="training"
        ),
        model=model_of([only]),
        trainings=(only,),
    )


def _two_models() -> UserFacts:
    # The retrain went to a new model; the row follows it and its only version.
    first = training(1, photos=15)
    second = training(2, photos=15, destination=SECOND_MODEL_ID)
    return UserFacts(
        row=row_for(second),
        model=model_of([second], model_id=SECOND_MODEL_ID),
        trainings=(first, second),
        models_by_id={MODEL_ID: model_of([first])},
    )


def _weights_rebuilt() -> UserFacts:
    # An admin "sync" route rebuilt the URL from the hash; the version is right.
    one = training(1, photos=15)
    return healthy(
        one, lora_weights_url=(f"https://replicate.delivery/pbxt/{one.version_hash}/flux-lora.tar")
    )


def _retrain_judged(verdict: str) -> UserFacts:
    # Two healthy trainings of the same 16 photos; the watch's comparison of the first
    # version against the second judged the retrain ``verdict``.
    first, second = training(1, photos=16), training(2, photos=16)
    review = RetrainReview(
        training_id=second.id,
        verdict=verdict,
        sentence="The new version is further from the user's photos.",
        comparison_id=7,
        previous_version=first.version_hash,
        new_version=second.version_hash,
        reading={"change": 0.12, "noise_floor": 0.03, "sentence": "Further by 0.120."},
    )
    return replace(healthy(first, second), retrain=review)


def scenarios() -> tuple[Scenario, ...]:
    one = training(1, photos=15)
    return (
        _scenario("healthy_single", healthy(training(1, photos=16))),
        # 15 -> 18 photos: no shrink, and the app's parameters are the same (both >= 15).
        _scenario("healthy_retrained", healthy(training(1, photos=15), training(2, photos=18))),
        _scenario("stale_after_three_retrains", _stale_after_three_retrains(), "STALE_VERSION"),
        # The colon form names the latest version: after normalising nothing else is wrong.
        _scenario(
            "owner_name_hash",
            healthy(one, replicate_version_id=f"{MODEL_ID}:{one.version_hash}"),
            "VERSION_FORMAT",
        ),
        # Well-formed 64 hex, but the trainer's: no version of the model, so not STALE;
        # trigger and weights are the only training's (the fallback reading agrees).
        _scenario(
            "trainer_hash",
            healthy(one, replicate_version_id=FAST_TRAINER_VERSION),
            "VERSION_NOT_IN_MODEL",
        ),
        _scenario(
            "trigger_overwritten",
            healthy(one, trigger_word="user38172604"),
            "TRIGGER_WORD_MISMATCH",
        ),
        # Version checks need a model id; version, weights and trigger are otherwise right.
        _scenario(
            "model_id_missing",
            UserFacts(row=row_for(one, replicate_model_id=None), model=None, trainings=(one,)),
            "MODEL_ID_MISSING",
        ),
        _scenario(
            "model_deleted",
            UserFacts(row=row_for(one), model=ModelFacts(MODEL_ID, found=False), trainings=(one,)),
            "MODEL_NOT_FOUND",
        ),
        _scenario("version_lost", _version_lost(), "VERSION_LOST"),
        _scenario("stuck_training", _stuck_training(), "STATUS_OUT_OF_SYNC"),
        _scenario("weights_rebuilt", _weights_rebuilt(), "WEIGHTS_URL_MISMATCH"),
        _scenario("two_models", _two_models(), "DUPLICATE_MODELS"),
        # 16 good -> 5 blurry: fewer than 10 and 69% fewer (SHRANK); five photos fail the
        # blur check where none did (DEGRADED); and the app's adaptive table moves
        # steps/rank/alpha/repeats 1400/48/48/20 -> 1200/32/32/10 (PARAMS_CHANGED): a
        # shrink below 10 photos always changes the parameters.
        _scenario(
            "blurry_retrain",
            healthy(
                training(1, photos=16),
                training(2, photos=5, data=dataset(5, sharpness=20.0, failing=5)),
            ),
            "DATASET_SHRANK",
            "DATASET_DEGRADED",
            "PARAMS_CHANGED",
        ),
        # The same 16 shots squeezed to 600 px at JPEG 55: median short side 1024 -> 480.
        # Same count, so not SHRANK and the same parameters.
        _scenario(
            "squeezed_retrain",
            healthy(
                training(1, photos=16),
                training(2, photos=16, data=dataset(16, short_side=480, jpeg_quality=55)),
            ),
            "DATASET_DEGRADED",
        ),
        # Same photos and input to both trainers: inputs are compared as sent.
        _scenario(
            "trainer_changed",
            healthy(
                training(
                    1, photos=15, trainer=OSTRIS_TRAINER, trainer_version=OSTRIS_TRAINER_VERSION
                ),
                training(2, photos=15),
            ),
            "TRAINER_CHANGED",
        ),
        # 18 -> 14 photos: rank/alpha 48 -> 40, repeats 20 -> 18. 22% fewer and >= 10, so
        # not SHRANK; same quality, so not DEGRADED.
        _scenario(
            "params_changed",
            healthy(training(1, photos=18), training(2, photos=14)),
            "PARAMS_CHANGED",
        ),
        # Only the watch's verdict "worse" raises it; a retrain judged the same is healthy.
        _scenario("retrain_regressed", _retrain_judged("worse"), "RETRAIN_REGRESSED"),
        _scenario("retrain_no_difference", _retrain_judged("same")),
    )
