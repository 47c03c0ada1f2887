"""The engine as a whole: its tables, its outputs' shape, order and purity of inputs."""

from __future__ import annotations

import json
import re
import string
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from core.drift import (
    CODES,
    REPAIRS,
    THRESHOLDS,
    Finding,
    RepairAction,
    Severity,
    TrainingRecord,
    UserFacts,
    code_spec,
    diagnose,
    scan_error,
    threshold,
    worst_severity,
)
from core.gateway.values import Training
from tests.drift.builders import T0, healthy, training
from tests.drift.scenarios import scenarios

VOCABULARY = {
    "VERSION_FORMAT": "critical",
    "VERSION_NOT_IN_MODEL": "critical",
    "STALE_VERSION": "critical",
    "TRIGGER_WORD_MISMATCH": "critical",
    "MODEL_ID_MISSING": "critical",
    "MODEL_NOT_FOUND": "critical",
    "VERSION_LOST": "critical",
    "STATUS_OUT_OF_SYNC": "warning",
    "WEIGHTS_URL_MISMATCH": "warning",
    "DUPLICATE_MODELS": "warning",
    "DATASET_SHRANK": "warning",
    "DATASET_DEGRADED": "warning",
    "TRAINER_CHANGED": "info",
    "PARAMS_CHANGED": "info",
    "RETRAIN_REGRESSED": "critical",
    "SCAN_ERROR": "warning",
}
DRIFT_SOURCES = Path(__file__).resolve().parents[2] / "core" / "drift"


def _all_findings() -> list[Finding]:
    found = [finding for scenario in scenarios() for finding in diagnose(scenario.facts)]
    return [*found, scan_error("45038279", "Replicate answered 503\nafter 10 tries")]


# The tables


def test_codes_table_is_the_vocabulary_with_title_and_help() -> None:
    assert [spec.code for spec in CODES] == list(VOCABULARY)
    for spec in CODES:
        assert spec.severity == VOCABULARY[spec.code]
        assert spec.title and spec.help.endswith(".")
        assert code_spec(spec.code) is spec


def test_every_code_is_raised_by_some_scenario() -> None:
    assert {finding.code for finding in _all_findings()} == set(VOCABULARY)


def test_thresholds_table_is_complete_and_used() -> None:
    assert {row.name: row.value for row in THRESHOLDS} == {
        "shrink_fraction": 0.25,
        "min_photos": 10,
        "short_side_drop_fraction": 0.25,
        "min_short_side_px": 1024,
        "failing_photos_increase": 1,
    }
    source = "".join(path.read_text() for path in DRIFT_SOURCES.glob("*_checks.py"))
    used = set(re.findall(r"threshold\(['\"](\w+)['\"]\)", source))
    assert used == {row.name for row in THRESHOLDS}
    assert all(row.help for row in THRESHOLDS)
    with pytest.raises(KeyError):
        threshold("no_such_threshold")


def test_repairs_are_exactly_the_five_the_console_offers() -> None:
    assert {repair.action.value for repair in REPAIRS} == {
        "repoint_latest",
        "normalise_version",
        "restore_trigger_word",
        "restore_last_good_version",
        "sync_status",
    }
    assert all(repair.help for repair in REPAIRS)


# The findings


def test_every_fix_names_a_repair_or_none_and_says_what_to_do() -> None:
    for finding in _all_findings():
        assert finding.fix.action is None or isinstance(finding.fix.action, RepairAction)
        assert finding.fix.text


def test_evidence_and_findings_are_json_safe() -> None:
    for finding in _all_findings():
        json.dumps(finding.evidence)
        assert json.loads(json.dumps(finding.to_dict()))["code"] == finding.code


def test_titles_are_one_line_and_filled() -> None:
    for finding in _all_findings():
        assert "\n" not in finding.title and "{" not in finding.title
        assert finding.severity == code_spec(finding.code).severity


def test_title_templates_only_use_named_fields() -> None:
    for spec in CODES:
        fields = [name for _, name, _, _ in string.Formatter().parse(spec.title) if name]
        assert all(name.isidentifier() for name in fields), spec.code


def test_a_healthy_user_has_no_finding() -> None:
    assert diagnose(healthy(training(1))) == ()
    assert diagnose(healthy(training(1, photos=15), training(2, photos=18))) == ()


# Order and purity


def _many_problems() -> UserFacts:
    first, second = training(1, photos=16), training(2, photos=5)
    return healthy(
        first, second, replicate_version_id=first.version_hash, trigger_word="someone-else"
    )


def test_order_is_severity_then_vocabulary() -> None:
    assert [finding.code for finding in diagnose(_many_problems())] == [
        "STALE_VERSION",
        "TRIGGER_WORD_MISMATCH",
        "WEIGHTS_URL_MISMATCH",
        "DATASET_SHRANK",
        "PARAMS_CHANGED",
    ]


def test_same_facts_in_any_ledger_order_give_the_same_findings() -> None:
    facts = _many_problems()
    shuffled = UserFacts(
        row=facts.row, model=facts.model, trainings=tuple(reversed(facts.trainings))
    )
    assert diagnose(shuffled) == diagnose(facts) == diagnose(facts)


def test_worst_severity() -> None:
    assert worst_severity(()) is None
    assert worst_severity(diagnose(_many_problems())) is Severity.CRITICAL
    assert worst_severity([scan_error("u", "boom")]) is Severity.WARNING


def test_scan_error_keeps_the_message_and_a_one_line_title() -> None:
    finding = scan_error("45038279", "Replicate answered 503\nafter 10 tries")
    assert finding.code == "SCAN_ERROR" and finding.severity is Severity.WARNING
    assert finding.title == "Could not check this user: Replicate answered 503 after 10 tries"
    assert finding.evidence == {
        "user_id": "45038279",
        "message": "Replicate answered 503\nafter 10 tries",
    }
    assert finding.fix.action is None


# The facts


def test_ledger_is_sorted_oldest_first_with_naive_and_undated_records() -> None:
    aware = training(2)
    naive = replace(training(1), created_at=datetime(2025, 6, 1, 12, 0))
    undated = replace(training(3), created_at=None)
    facts = UserFacts(row=healthy().row, trainings=(aware, naive, undated))
    assert [record.id for record in facts.trainings] == [undated.id, naive.id, aware.id]


def test_training_record_reads_the_gateways_training() -> None:
    record = training(1)
    gateway = Training.from_api(
        {
            "id": record.id,
            "model": record.trainer_model,
            "version": record.trainer_version,
            "status": "succeeded",
            "input": dict(record.input),
            "output": {"version": record.output_version, "weights": record.output_weights},
            "created_at": (T0 + timedelta(days=1)).isoformat(),
        }
    )
    read = TrainingRecord.from_training(gateway, dataset=record.dataset)
    assert read.destination == record.destination and read.version_hash == record.version_hash
    assert "input_images" not in read.parameters and "trigger_word" not in read.parameters
    with pytest.raises(TypeError):
        read.input["steps"] = 1  # type: ignore[index]
