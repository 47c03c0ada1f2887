"""plan_repair without a database: what each repair would write, when it refuses, purity.

Rows are literal dicts shaped like ``read_row``'s answer (only the columns the planners
read matter); facts come from the drift builders.
"""

from __future__ import annotations

import copy
import pickle
from dataclasses import replace
from typing import Any

import pytest

from core.drift import ModelFacts, RepairAction, UserFacts, diagnose
from core.errors import DataRejected
from core.repairs import RepairPlan, plan_repair
from core.repairs.values import naive_utc
from tests.drift.builders import (
    FAST_TRAINER_VERSION,
    MODEL_ID,
    TRIGGER,
    healthy,
    model_of,
    row_for,
    training,
    version_hash,
)
from tests.repairs.world import CASES, Case

FIRST, SECOND = training(1), training(2)


def row_of(facts: UserFacts, **changes: Any) -> dict[str, Any]:
    """The ``user_models`` row the facts describe, as ``read_row`` would return it."""
    row = facts.row
    completed = row.training_status == "completed"
    return {
        "id": 1,
        "user_id": row.user_id,
        "replicate_model_id": row.replicate_model_id,
        "replicate_version_id": row.replicate_version_id,
        "trigger_word": row.trigger_word,
        "training_status": row.training_status,
        "training_id": row.training_id,
        "lora_weights_url": row.lora_weights_url,
        "failure_reason": row.failure_reason,
        "training_progress": 100 if completed else 0,
        "updated_at": naive_utc(row.updated_at),
        "completed_at": naive_utc(row.updated_at) if completed else None,
        **changes,
    }


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_repair_plans_exactly_its_columns(case: Case) -> None:
    row = row_of(case.facts)
    plan = plan_repair(case.action, case.facts, row)
    assert plan.user_id == case.facts.row.user_id
    assert plan.action is case.action
    assert dict(plan.after) == dict(case.expected_after)
    assert dict(plan.before) == {column: row[column] for column in case.expected_after}
    assert plan.explanation and plan.explanation.count(". ") <= 2
    assert plan.evidence


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_the_repaired_row_no_longer_has_the_finding(case: Case) -> None:
    plan = plan_repair(case.action, case.facts, row_of(case.facts))
    repaired = replace(
        case.facts,
        row=replace(
            case.facts.row,
            **{
                column: value
                for column, value in plan.after.items()
                if column
                in (
                    "replicate_version_id",
                    "lora_weights_url",
                    "trigger_word",
                    "training_status",
                    "training_id",
                    "failure_reason",
                )
            },
        ),
    )
    fixed = {finding.code for finding in diagnose(case.facts) if finding.fix.action is case.action}
    assert fixed, "the broken user should have a finding this repair fixes"
    left = {finding.code for finding in diagnose(repaired)}
    assert not fixed & left
    assert "STATUS_OUT_OF_SYNC" not in left


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_plan_repair_is_pure(case: Case) -> None:
    row = row_of(case.facts)
    kept_row = copy.deepcopy(row)  # the facts are frozen all the way down
    first = plan_repair(case.action, case.facts, row)
    assert plan_repair(case.action.value, case.facts, row) == first
    assert row == kept_row
    with pytest.raises(TypeError):
        first.after["trigger_word"] = "x"  # type: ignore[index]


def test_a_plan_survives_a_serialised_session_state() -> None:
    case = CASES[3]
    plan = plan_repair(case.action, case.facts, row_of(case.facts))
    assert pickle.loads(pickle.dumps(plan)) == plan == copy.deepcopy(plan)


def test_a_plan_refuses_columns_repairs_never_write() -> None:
    with pytest.raises(ValueError, match="never write"):
        RepairPlan(
            user_id="u",
            action=RepairAction.SYNC_STATUS,
            before={"is_test": True},
            after={"is_test": False},
            explanation="",
            evidence={},
        )


def _rejected(action: RepairAction | str, facts: UserFacts, **row_changes: Any) -> str:
    with pytest.raises(DataRejected) as caught:
        plan_repair(action, facts, row_of(facts, **row_changes))
    return str(caught.value)


def test_repoint_needs_a_succeeded_training_behind_the_latest_version() -> None:
    unknown = version_hash("made on replicate.com")
    facts = replace(healthy(FIRST), model=model_of([FIRST], extra_newer=[unknown]))
    assert "No succeeded training of this user produced the latest version" in _rejected(
        RepairAction.REPOINT_LATEST, facts
    )


def test_repoint_refuses_a_row_already_on_the_latest_version() -> None:
    assert "already points at the latest version" in _rejected(
        RepairAction.REPOINT_LATEST, healthy(FIRST, SECOND)
    )


def test_repoint_refuses_while_a_training_runs() -> None:
    running = training(3, status="processing")
    facts = healthy(
        FIRST,
        SECOND,
        running,
        training_status="training",
        training_id=running.id,
        replicate_version_id=FIRST.version_hash,
    )
    assert "still processing on Replicate" in _rejected(RepairAction.REPOINT_LATEST, facts)


def test_repoint_needs_the_models_versions() -> None:
    missing = replace(
        healthy(FIRST, SECOND, replicate_version_id=FIRST.version_hash),
        model=ModelFacts(model_id=MODEL_ID, found=False),
    )
    assert "does not exist on Replicate (404)" in _rejected(RepairAction.REPOINT_LATEST, missing)
    unfetched = UserFacts(row=missing.row, trainings=missing.trainings)
    assert "were not fetched" in _rejected(RepairAction.REPOINT_LATEST, unfetched)


def test_normalise_has_nothing_to_do_on_a_bare_hash() -> None:
    assert "nothing to normalise" in _rejected(RepairAction.NORMALISE_VERSION, healthy(FIRST))


def test_normalise_refuses_values_that_name_no_version() -> None:
    cut = (FIRST.version_hash or "")[:12]
    short = healthy(FIRST, replicate_version_id=f"{MODEL_ID}:{cut}")
    assert "does not name a 64-hex version id" in _rejected(RepairAction.NORMALISE_VERSION, short)
    empty = healthy(FIRST, replicate_version_id="  ")
    assert "No version is stored" in _rejected(RepairAction.NORMALISE_VERSION, empty)


def test_normalise_refuses_to_keep_a_foreign_version() -> None:
    trainer = healthy(
        FIRST, replicate_version_id=f"replicate/fast-flux-trainer:{FAST_TRAINER_VERSION}"
    )
    assert "is not a version of" in _rejected(RepairAction.NORMALISE_VERSION, trainer)


def test_restore_trigger_word_when_it_is_already_right() -> None:
    message = _rejected(RepairAction.RESTORE_TRIGGER_WORD, healthy(FIRST))
    assert f"already {TRIGGER!r}" in message


def test_restore_trigger_word_uses_the_producer_of_the_stored_version() -> None:
    renamed = training(2, trigger="newword")
    facts = healthy(
        FIRST,
        renamed,
        replicate_version_id=FIRST.version_hash,
        lora_weights_url=FIRST.output_weights,
        trigger_word="newword",
    )
    plan = plan_repair(RepairAction.RESTORE_TRIGGER_WORD, facts, row_of(facts))
    assert plan.after == {"trigger_word": TRIGGER}
    assert plan.evidence["training_id"] == FIRST.id


def test_restore_last_good_version_only_after_a_failed_retrain() -> None:
    message = _rejected(RepairAction.RESTORE_LAST_GOOD_VERSION, healthy(FIRST))
    assert "this row is 'completed'" in message


def test_restore_last_good_version_needs_a_version_that_still_exists() -> None:
    failed = training(2, status="failed")
    row = row_for(
        FIRST,
        replicate_version_id=None,
        lora_weights_url=None,
        training_status="failed",
        training_id=failed.id,
    )
    gone = UserFacts(
        row=row,
        model=ModelFacts(model_id=MODEL_ID, found=True, versions=()),
        trainings=(FIRST, failed),
    )
    assert "no good version to restore" in _rejected(RepairAction.RESTORE_LAST_GOOD_VERSION, gone)


def test_sync_status_when_already_in_sync() -> None:
    assert "nothing to sync" in _rejected(RepairAction.SYNC_STATUS, healthy(FIRST))


def test_sync_status_without_the_training_in_the_ledger() -> None:
    facts = healthy(FIRST, training_id="r8trainingunknown", training_status="training")
    assert "not in this user's ledger" in _rejected(RepairAction.SYNC_STATUS, facts)


def test_sync_status_of_a_running_training_marks_the_row_training() -> None:
    running = training(2, status="processing")
    facts = healthy(
        FIRST,
        running,
        replicate_version_id=None,
        lora_weights_url=None,
        training_status="pending",
        training_id=running.id,
    )
    plan = plan_repair(RepairAction.SYNC_STATUS, facts, row_of(facts))
    assert plan.before == {"training_status": "pending"}
    assert plan.after == {"training_status": "training"}


def test_canceled_without_an_error_gets_the_apps_wording() -> None:
    canceled = replace(training(2, status="canceled"), error=None)
    facts = healthy(
        FIRST,
        canceled,
        replicate_version_id=None,
        lora_weights_url=None,
        training_status="training",
        training_id=canceled.id,
    )
    plan = plan_repair(RepairAction.SYNC_STATUS, facts, row_of(facts))
    assert plan.after == {"training_status": "failed", "failure_reason": "Training canceled"}


def test_unknown_actions_and_other_users_facts_are_refused() -> None:
    facts = healthy(FIRST)
    assert "Unknown repair 'reboot'" in _rejected("reboot", facts)
    assert "the row for user someone-else" in _rejected(
        RepairAction.SYNC_STATUS, facts, user_id="someone-else"
    )
