"""The row's model and version against Replicate: each code raised, and its near misses."""

from __future__ import annotations

import pytest

from core.drift import ModelFacts, RepairAction, UserFacts
from core.drift.facts import VersionOwner
from tests.drift.builders import (
    FAST_TRAINER_VERSION,
    MODEL_ID,
    USER_ID,
    codes,
    healthy,
    model_of,
    only,
    row_for,
    training,
    version_hash,
)

FIRST, SECOND, THIRD = training(1), training(2), training(3)


# VERSION_FORMAT


@pytest.mark.parametrize(
    "stored",
    [
        f"{MODEL_ID}:{THIRD.version_hash}",
        f"  {THIRD.version_hash}\n",
        f"{THIRD.version_hash}\n",  # a final newline alone (re.match with "$" let it by)
        f"\t{THIRD.version_hash}",
        f"{THIRD.version_hash} ",
        (THIRD.version_hash or "").upper(),
        f"{MODEL_ID}:{(THIRD.version_hash or '').upper()}",
    ],
)
def test_a_wrapped_latest_hash_is_a_format_finding_only(stored: str) -> None:
    facts = healthy(FIRST, SECOND, THIRD, replicate_version_id=stored)
    assert codes(facts) == {"VERSION_FORMAT"}
    finding = only(facts, "VERSION_FORMAT")
    assert finding.fix.action is RepairAction.NORMALISE_VERSION
    assert finding.evidence["normalised_version"] == THIRD.version_hash


def test_a_wrapped_stale_hash_is_format_and_stale() -> None:
    facts = healthy(
        FIRST,
        SECOND,
        THIRD,
        replicate_version_id=f"{MODEL_ID}:{FIRST.version_hash}",
        lora_weights_url=FIRST.output_weights,
    )
    assert codes(facts) == {"VERSION_FORMAT", "STALE_VERSION"}


def test_a_short_hash_is_format_and_not_in_model_and_repoints() -> None:
    facts = healthy(FIRST, replicate_version_id=(FIRST.version_hash or "")[:12])
    assert codes(facts) == {"VERSION_FORMAT", "VERSION_NOT_IN_MODEL"}
    assert only(facts, "VERSION_FORMAT").fix.action is RepairAction.REPOINT_LATEST
    assert only(facts, "VERSION_FORMAT").title == (
        "Version stored as a 12-character value, not a bare 64-hex id"
    )


def test_nothing_stored_on_a_completed_row_is_a_format_finding() -> None:
    facts = healthy(FIRST, replicate_version_id="   ")
    assert codes(facts) == {"VERSION_FORMAT"}
    assert only(facts, "VERSION_FORMAT").fix.action is RepairAction.REPOINT_LATEST


def test_nothing_stored_while_training_is_normal() -> None:
    running = training(2, status="processing")
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


def test_a_bare_hash_is_well_formed() -> None:
    assert "VERSION_FORMAT" not in codes(healthy(FIRST))


def test_format_is_judged_without_the_model_when_it_is_missing() -> None:
    facts = UserFacts(
        row=row_for(
            FIRST, replicate_model_id=None, replicate_version_id=f"{MODEL_ID}:{FIRST.version_hash}"
        ),
        trainings=(FIRST,),
    )
    assert codes(facts) == {"VERSION_FORMAT", "MODEL_ID_MISSING"}
    assert only(facts, "VERSION_FORMAT").fix.action is RepairAction.NORMALISE_VERSION


# VERSION_NOT_IN_MODEL


def test_the_trainers_hash_is_not_in_the_model_and_is_named() -> None:
    finding = only(
        healthy(FIRST, replicate_version_id=FAST_TRAINER_VERSION), "VERSION_NOT_IN_MODEL"
    )
    assert finding.evidence["identified_as"].startswith("the trainer's version")
    assert finding.fix.action is RepairAction.REPOINT_LATEST


def test_another_models_version_is_named() -> None:
    other = training(1, destination="sandrasocial/someone-else")
    facts = UserFacts(
        row=row_for(FIRST, replicate_version_id=other.version_hash),
        model=model_of([FIRST]),
        trainings=(FIRST,),
        models_by_id={
            "sandrasocial/someone-else": model_of([other], model_id="sandrasocial/someone-else")
        },
    )
    finding = only(facts, "VERSION_NOT_IN_MODEL")
    assert finding.evidence["identified_as"] == "a version of sandrasocial/someone-else"


def test_another_users_version_names_that_user_and_their_model() -> None:
    theirs = training(7, destination="sandrasocial/user-0ther000-selfie-lora")
    facts = UserFacts(
        row=row_for(FIRST, replicate_version_id=theirs.version_hash),
        model=model_of([FIRST]),
        trainings=(FIRST,),
        stored_owner=VersionOwner(
            theirs.id, "0ther000-user", "sandrasocial/user-0ther000-selfie-lora"
        ),
    )
    finding = only(facts, "VERSION_NOT_IN_MODEL")
    assert finding.evidence["identified_as"] == (
        "a version of user 0ther000-user's model sandrasocial/user-0ther000-selfie-lora"
    )
    assert finding.evidence["belongs_to_user_id"] == "0ther000-user"
    assert finding.evidence["identified_by_training_id"] == theirs.id
    assert "someone else's face" in finding.fix.text
    assert "user 0ther000-user's model" in finding.title
    # The ledger saying the version is this user's own is no foreign version.
    own = UserFacts(
        row=row_for(FIRST, replicate_version_id=theirs.version_hash),
        model=model_of([FIRST]),
        trainings=(FIRST,),
        stored_owner=VersionOwner(theirs.id, USER_ID, "sandrasocial/old"),
    )
    assert only(own, "VERSION_NOT_IN_MODEL").evidence["belongs_to_user_id"] is None


def test_an_old_version_of_the_model_is_in_the_model() -> None:
    assert "VERSION_NOT_IN_MODEL" not in codes(
        healthy(FIRST, SECOND, replicate_version_id=FIRST.version_hash)
    )


def test_versions_are_not_checked_against_a_missing_model() -> None:
    facts = UserFacts(
        row=row_for(FIRST, replicate_version_id=FAST_TRAINER_VERSION),
        model=ModelFacts(MODEL_ID, found=False),
        trainings=(FIRST,),
    )
    assert codes(facts) == {"MODEL_NOT_FOUND"}


def test_repoint_needs_the_training_behind_the_latest() -> None:
    facts = UserFacts(
        row=row_for(FIRST, replicate_version_id=FAST_TRAINER_VERSION),
        model=model_of([FIRST], extra_newer=[version_hash("pushed by hand")]),
        trainings=(FIRST,),
    )
    fix = only(facts, "VERSION_NOT_IN_MODEL").fix
    assert fix.action is None and "find that training" in fix.text


# STALE_VERSION


def test_a_version_two_behind_is_stale() -> None:
    finding = only(
        healthy(FIRST, SECOND, THIRD, replicate_version_id=FIRST.version_hash), "STALE_VERSION"
    )
    assert finding.title == "Generating with a version 2 behind the latest"
    assert finding.evidence["versions_behind"] == 2
    assert finding.evidence["latest_training_id"] == THIRD.id
    assert finding.fix.action is RepairAction.REPOINT_LATEST


def test_the_latest_version_is_not_stale() -> None:
    assert "STALE_VERSION" not in codes(healthy(FIRST, SECOND, THIRD))


def test_a_latest_of_unknown_origin_is_not_stale() -> None:
    facts = healthy(FIRST)
    facts = UserFacts(
        row=facts.row,
        trainings=facts.trainings,
        model=model_of([FIRST], extra_newer=[version_hash("another user")]),
    )
    assert "STALE_VERSION" not in codes(facts)


def test_stale_needs_a_completed_row() -> None:
    facts = healthy(
        FIRST,
        SECOND,
        replicate_version_id=FIRST.version_hash,
        training_status="failed",
        training_id=None,
    )
    assert "STALE_VERSION" not in codes(facts)


# MODEL_ID_MISSING


@pytest.mark.parametrize(
    ("status", "training_id", "with_trainings"),
    [
        ("completed", None, False),
        ("pending", "tr-some", False),
        ("failed", None, True),
    ],
)
def test_model_id_missing_with_any_sign_of_training(
    status: str, training_id: str | None, with_trainings: bool
) -> None:
    facts = UserFacts(
        row=row_for(
            FIRST,
            replicate_model_id="  ",
            training_status=status,
            training_id=training_id,
            replicate_version_id=None,
        ),
        trainings=(FIRST,) if with_trainings else (),
    )
    assert "MODEL_ID_MISSING" in codes(facts)


def test_model_id_missing_names_the_ledgers_destination() -> None:
    facts = UserFacts(row=row_for(FIRST, replicate_model_id=None), trainings=(FIRST,))
    finding = only(facts, "MODEL_ID_MISSING")
    assert finding.evidence["latest_destination"] == MODEL_ID
    assert MODEL_ID in finding.fix.text and finding.fix.action is None


def test_a_new_user_without_model_id_is_fine() -> None:
    facts = UserFacts(
        row=row_for(
            FIRST,
            replicate_model_id=None,
            replicate_version_id=None,
            training_status="pending",
            training_id=None,
            lora_weights_url=None,
        )
    )
    assert codes(facts) == set()


# MODEL_NOT_FOUND


def test_model_not_found_only_when_replicate_said_404() -> None:
    gone = UserFacts(
        row=row_for(FIRST), model=ModelFacts(MODEL_ID, found=False), trainings=(FIRST,)
    )
    assert codes(gone) == {"MODEL_NOT_FOUND"}
    assert "MODEL_NOT_FOUND" not in codes(healthy(FIRST))
    not_fetched = UserFacts(row=row_for(FIRST), model=None, trainings=(FIRST,))
    assert codes(not_fetched) == set()


# VERSION_LOST


def _after_failed_retrain(status: str, *, model: ModelFacts | None = None) -> UserFacts:
    failed = training(2, status="failed")
    return UserFacts(
        row=row_for(
            FIRST,
            replicate_version_id=None,
            lora_weights_url=None,
            training_status=status,
            training_id=failed.id,
        ),
        model=model if model is not None else model_of([FIRST]),
        trainings=(FIRST, failed),
    )


@pytest.mark.parametrize("status", ["failed", "pending"])
def test_version_lost_after_a_failed_retrain(status: str) -> None:
    facts = _after_failed_retrain(status)
    finding = only(facts, "VERSION_LOST")
    assert finding.evidence["last_good_version"] == FIRST.version_hash
    assert finding.fix.action is RepairAction.RESTORE_LAST_GOOD_VERSION


def test_version_not_lost_when_the_old_version_is_gone() -> None:
    emptied = ModelFacts(MODEL_ID, found=True, versions=())
    assert "VERSION_LOST" not in codes(_after_failed_retrain("failed", model=emptied))


def test_version_not_lost_while_a_version_is_stored() -> None:
    facts = healthy(FIRST, training_status="failed")
    assert "VERSION_LOST" not in codes(facts)


def test_version_not_lost_without_an_earlier_success() -> None:
    failed = training(1, status="failed")
    facts = UserFacts(
        row=row_for(
            FIRST,
            replicate_version_id=None,
            lora_weights_url=None,
            training_status="failed",
            training_id=failed.id,
        ),
        model=ModelFacts(MODEL_ID, found=True),
        trainings=(failed,),
    )
    assert codes(facts) == set()
