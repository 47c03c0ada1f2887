"""Trigger word, status and weights URL against the ledger: raised, and near misses."""

from __future__ import annotations

import pytest

from core.drift import RepairAction, UserFacts
from tests.drift.builders import (
    FAST_TRAINER_VERSION,
    TRIGGER,
    codes,
    healthy,
    model_of,
    only,
    row_for,
    training,
)

FIRST, SECOND = training(1), training(2)


# TRIGGER_WORD_MISMATCH


def test_trigger_differs_from_the_training_that_made_the_stored_version() -> None:
    finding = only(healthy(FIRST, trigger_word="user99999999"), "TRIGGER_WORD_MISMATCH")
    assert finding.evidence["trained_trigger_word"] == TRIGGER
    assert finding.evidence["training_id"] == FIRST.id
    assert finding.fix.action is RepairAction.RESTORE_TRIGGER_WORD


def test_trigger_is_compared_with_the_producer_not_the_latest() -> None:
    renamed = training(2, trigger="newword")
    facts = healthy(
        FIRST,
        renamed,
        replicate_version_id=FIRST.version_hash,
        lora_weights_url=FIRST.output_weights,
    )
    assert "TRIGGER_WORD_MISMATCH" not in codes(facts)  # TRIGGER is what FIRST learned


def test_without_a_producer_the_latest_succeeded_training_decides() -> None:
    facts = healthy(FIRST, replicate_version_id=FAST_TRAINER_VERSION, trigger_word="other")
    finding = only(facts, "TRIGGER_WORD_MISMATCH")
    assert finding.evidence["training_is"] == "latest succeeded training"


def test_surrounding_spaces_are_not_a_mismatch_but_case_is() -> None:
    assert "TRIGGER_WORD_MISMATCH" not in codes(healthy(FIRST, trigger_word=f" {TRIGGER} "))
    assert "TRIGGER_WORD_MISMATCH" in codes(healthy(FIRST, trigger_word=TRIGGER.upper()))


def test_a_training_without_a_trigger_proves_nothing() -> None:
    silent = training(1, input_changes={"trigger_word": None})
    assert "TRIGGER_WORD_MISMATCH" not in codes(healthy(silent, trigger_word="anything"))


# STATUS_OUT_OF_SYNC


@pytest.mark.parametrize(
    ("row_status", "replicate_status"),
    [
        ("training", "succeeded"),
        ("training", "failed"),
        ("training", "aborted"),
        ("completed", "canceled"),
        ("failed", "processing"),
        ("Completed", "succeeded"),  # the app's queries ask for exactly 'completed'
    ],
)
def test_status_out_of_sync(row_status: str, replicate_status: str) -> None:
    record = FIRST if replicate_status == "succeeded" else training(2, status=replicate_status)
    facts = UserFacts(
        row=row_for(FIRST, training_status=row_status, training_id=record.id),
        model=model_of([FIRST]),
        trainings=tuple({FIRST.id: FIRST, record.id: record}.values()),
    )
    finding = only(facts, "STATUS_OUT_OF_SYNC")
    assert finding.fix.action is RepairAction.SYNC_STATUS
    assert finding.evidence["replicate_status"] == replicate_status


@pytest.mark.parametrize("replicate_status", ["starting", "processing"])
def test_a_running_training_with_a_training_row_is_in_sync(replicate_status: str) -> None:
    running = training(2, status=replicate_status)
    facts = UserFacts(
        row=row_for(
            FIRST,
            replicate_version_id=None,
            lora_weights_url=None,
            training_status="training",
            training_id=running.id,
        ),
        model=model_of([FIRST]),
        trainings=(FIRST, running),
    )
    assert codes(facts) == set()


def test_an_unknown_training_id_is_not_judged() -> None:
    facts = healthy(FIRST, training_status="training", training_id="not-in-ledger")
    assert "STATUS_OUT_OF_SYNC" not in codes(facts)


def test_stuck_row_title_says_both_statuses() -> None:
    facts = UserFacts(
        row=row_for(
            FIRST, training_status="training", replicate_version_id=None, lora_weights_url=None
        ),
        model=model_of([FIRST]),
        trainings=(FIRST,),
    )
    assert only(facts, "STATUS_OUT_OF_SYNC").title == (
        f"Row says 'training' but Replicate says 'succeeded' for training {FIRST.id}"
    )


# WEIGHTS_URL_MISMATCH


def test_rebuilt_weights_url_on_the_latest_version_repoints() -> None:
    rebuilt = f"https://replicate.delivery/pbxt/{FIRST.version_hash}/flux-lora.tar"
    finding = only(healthy(FIRST, lora_weights_url=rebuilt), "WEIGHTS_URL_MISMATCH")
    assert finding.evidence["looks_constructed"] is True
    assert finding.evidence["training_weights_url"] == FIRST.output_weights
    assert finding.fix.action is RepairAction.REPOINT_LATEST


def test_weights_of_another_training_on_a_stale_version_is_a_weights_only_fix() -> None:
    facts = healthy(FIRST, SECOND, replicate_version_id=FIRST.version_hash)
    assert codes(facts) == {"STALE_VERSION", "WEIGHTS_URL_MISMATCH"}
    fix = only(facts, "WEIGHTS_URL_MISMATCH").fix
    assert fix.action is None and "the training that made v1 · trained 2 Jun 2025" in fix.text
    assert str(FIRST.output_weights) not in fix.text  # the id is shown beside, not in words


def test_matching_weights_and_unknown_producer_are_not_judged() -> None:
    assert "WEIGHTS_URL_MISMATCH" not in codes(healthy(FIRST))
    unknown = healthy(
        FIRST,
        replicate_version_id=FAST_TRAINER_VERSION,
        lora_weights_url="https://elsewhere.example/x.tar",
    )
    assert "WEIGHTS_URL_MISMATCH" not in codes(unknown)
