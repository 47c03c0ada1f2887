"""Destinations, datasets, trainer and parameters across trainings: raised, and near misses.

Photo counts that cross the app's adaptive bands (15 and 10) change the parameters too;
the dataset tests that only care about DATASET_* assert on that code alone.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.drift import DatasetFacts, UserFacts
from tests.drift.builders import (
    MODEL_ID,
    OSTRIS_TRAINER,
    OSTRIS_TRAINER_VERSION,
    codes,
    dataset,
    healthy,
    model_of,
    only,
    row_for,
    training,
    version_hash,
)

OTHER_MODEL = f"{MODEL_ID}-v2"


# DUPLICATE_MODELS


def test_trainings_into_two_models() -> None:
    first, second = training(1), training(2, destination=OTHER_MODEL)
    facts = UserFacts(
        row=row_for(second),
        model=model_of([second], model_id=OTHER_MODEL),
        trainings=(first, second),
    )
    finding = only(facts, "DUPLICATE_MODELS")
    assert finding.evidence["destinations"] == [MODEL_ID, OTHER_MODEL]


def test_row_on_another_model_than_the_latest_training() -> None:
    only_one = training(1, destination=OTHER_MODEL)
    facts = UserFacts(
        row=row_for(only_one, replicate_model_id=MODEL_ID),
        model=model_of([], model_id=MODEL_ID),
        trainings=(only_one,),
    )
    assert "DUPLICATE_MODELS" in codes(facts)
    assert "not" in only(facts, "DUPLICATE_MODELS").title


def test_one_model_and_failed_attempts_are_not_duplicates() -> None:
    failed = training(3, status="failed")  # no destination is reported for a failure
    assert "DUPLICATE_MODELS" not in codes(healthy(training(1), training(2)))
    facts = healthy(training(1), training(2))
    facts = UserFacts(row=facts.row, model=facts.model, trainings=(*facts.trainings, failed))
    assert "DUPLICATE_MODELS" not in codes(facts)


# DATASET_SHRANK


@pytest.mark.parametrize(
    ("before", "after", "raised"),
    [
        (12, 10, False),  # 17% fewer, and 10 is enough
        (12, 9, True),  # fewer than 10
        (100, 76, False),  # 24% fewer
        (100, 75, True),  # 25% fewer
        (20, 15, True),
    ],
)
def test_shrink_thresholds(before: int, after: int, raised: bool) -> None:
    facts = healthy(training(1, photos=before), training(2, photos=after))
    assert ("DATASET_SHRANK" in codes(facts)) is raised


def test_shrink_judges_the_training_behind_the_latest_version() -> None:
    # The row is stale on the first version; the latest came from a 5-photo retrain.
    first, second = training(1, photos=16), training(2, photos=5)
    facts = healthy(
        first,
        second,
        replicate_version_id=first.version_hash,
        lora_weights_url=first.output_weights,
    )
    assert only(facts, "DATASET_SHRANK").evidence["training_id"] == second.id


def test_a_first_training_on_few_photos_is_not_a_shrink() -> None:
    assert "DATASET_SHRANK" not in codes(healthy(training(1, photos=6)))


def test_no_shrink_when_the_latest_came_from_elsewhere() -> None:
    first, second = training(1, photos=16), training(2, photos=5)
    facts = UserFacts(
        row=row_for(second),
        trainings=(first, second),
        model=model_of([first, second], extra_newer=[version_hash("manual")]),
    )
    assert "DATASET_SHRANK" not in codes(facts)


def test_an_unreadable_previous_zip_still_counts_few_photos() -> None:
    first = training(1, data=DatasetFacts(error="ZIP expired"))
    second = training(2, photos=6)
    finding = only(healthy(first, second), "DATASET_SHRANK")
    assert finding.evidence["reasons"] == ["fewer than 10 photos"]
    assert "DATASET_DEGRADED" not in codes(healthy(first, second))


# DATASET_DEGRADED


@pytest.mark.parametrize(
    ("before_px", "after_px", "raised"),
    [
        (1024, 1024, False),
        (1024, 1023, True),  # now under 1024 where it was not
        (1023, 900, False),  # was under already, and down only 12%
        (2000, 1500, True),  # down 25%
        (2000, 1501, False),  # down 24.95%, still over 1024
    ],
)
def test_resolution_thresholds(before_px: int, after_px: int, raised: bool) -> None:
    facts = healthy(
        training(1, data=dataset(16, short_side=before_px)),
        training(2, data=dataset(16, short_side=after_px)),
    )
    assert ("DATASET_DEGRADED" in codes(facts)) is raised


@pytest.mark.parametrize(
    ("before", "after", "raised"), [(0, 0, False), (1, 1, False), (0, 1, True), (2, 1, False)]
)
def test_failing_photo_thresholds(before: int, after: int, raised: bool) -> None:
    facts = healthy(
        training(1, data=dataset(16, failing=before)), training(2, data=dataset(16, failing=after))
    )
    assert ("DATASET_DEGRADED" in codes(facts)) is raised


def test_degraded_evidence_holds_both_datasets() -> None:
    facts = healthy(training(1), training(2, data=dataset(16, short_side=480, jpeg_quality=55)))
    evidence = only(facts, "DATASET_DEGRADED").evidence
    assert evidence["dataset"]["median_short_side"] == 480
    assert evidence["previous_dataset"]["median_short_side"] == 1024
    assert evidence["dataset"]["jpeg_quality"] == 55


# TRAINER_CHANGED


def test_trainer_model_or_version_changed() -> None:
    ostris = training(1, trainer=OSTRIS_TRAINER, trainer_version=OSTRIS_TRAINER_VERSION)
    assert codes(healthy(ostris, training(2))) == {"TRAINER_CHANGED"}
    bumped = training(1, trainer_version=version_hash("older fast-flux"))
    finding = only(healthy(bumped, training(2)), "TRAINER_CHANGED")
    assert finding.evidence["trainer_version"][1] != finding.evidence["trainer_version"][0]


def test_trainer_compares_the_last_two_succeeded_only() -> None:
    ostris = training(1, trainer=OSTRIS_TRAINER, trainer_version=OSTRIS_TRAINER_VERSION)
    assert "TRAINER_CHANGED" not in codes(healthy(ostris, training(2), training(3)))


# PARAMS_CHANGED


def test_params_diff_is_the_evidence() -> None:
    facts = healthy(training(1), training(2, input_changes={"learning_rate": 0.0004}))
    finding = only(facts, "PARAMS_CHANGED")
    assert finding.evidence["diff"] == {"learning_rate": [0.00008, 0.0004]}
    assert "different training inputs" in finding.fix.text


def test_same_params_in_another_order_and_new_photos_or_trigger_are_not_a_change() -> None:
    first = training(1)
    reordered = dict(reversed(list(first.input.items())))
    reordered.update(input_images="https://blob.example/zips/other.zip", trigger_word="x")
    second = replace(training(2), input=reordered)
    assert list(second.input) != list(first.input)
    assert "PARAMS_CHANGED" not in codes(healthy(first, second, trigger_word="x"))


def test_secret_inputs_are_compared_but_not_shown() -> None:
    facts = healthy(
        training(1, input_changes={"hf_token": "hf_old"}),
        training(2, input_changes={"hf_token": "hf_new"}),
    )
    assert only(facts, "PARAMS_CHANGED").evidence["diff"] == {
        "hf_token": ["[redacted]", "[redacted]"]
    }
