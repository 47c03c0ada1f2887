"""The review's verdict and sentence, on plain values."""

from __future__ import annotations

import pytest

from core.drift.facts import TrainingRecord
from core.ledger.reviews import Verdict
from core.watch.decisions import judge, review_sentence
from core.watch.review import trained_pair

pytestmark = pytest.mark.timeout(10)

HASH = "{:064x}"


@pytest.mark.parametrize(
    ("status", "codes", "tone", "expected"),
    [
        # A worse new version is said first, whatever the row.
        ("succeeded", ["STALE_VERSION"], "worse", Verdict.WORSE),
        ("succeeded", [], "worse", Verdict.WORSE),
        # A wrong row is broken, better images or not.
        ("succeeded", ["STALE_VERSION"], "better", Verdict.BROKEN),
        ("succeeded", ["TRIGGER_WORD_MISMATCH"], None, Verdict.BROKEN),
        ("failed", ["VERSION_LOST"], None, Verdict.BROKEN),
        # A dataset finding alone explains; it does not judge.
        ("succeeded", ["DATASET_SHRANK"], "no difference", Verdict.SAME),
        ("succeeded", [], "better", Verdict.BETTER),
        # A failure that left the row right changed nothing.
        ("failed", [], None, Verdict.SAME),
        ("canceled", [], None, Verdict.SAME),
        # No comparison and nothing wrong: not judged.
        ("succeeded", [], None, None),
    ],
)
def test_the_verdict(status: str, codes: list[str], tone: str | None, expected: Verdict) -> None:
    assert judge(training_status=status, row_codes=codes, tone=tone) is expected


def test_a_user_whose_row_is_gone_is_broken() -> None:
    assert judge(training_status="succeeded", row_codes=[], tone=None, row_gone=True) is (
        Verdict.BROKEN
    )


def test_only_worse_and_broken_alert() -> None:
    assert {verdict for verdict in Verdict if verdict.alerts} == {Verdict.WORSE, Verdict.BROKEN}
    assert [verdict.words for verdict in Verdict] == ["Better", "No difference", "Worse", "Broken"]


def test_the_sentence_leads_with_the_worse_images_then_names_the_row() -> None:
    said = review_sentence(
        verdict=Verdict.WORSE,
        training_status="succeeded",
        row_sentences=["The app generates with v1, one version behind.", "Second."],
        comparison="The new version (v2) is less like maya@example.com than v1.",
        skipped=None,
    )
    assert said.startswith("The new version (v2) is less like")
    assert "The app's row is wrong after it: The app generates with v1" in said
    assert "(and 1 more finding)" in said


def test_the_sentence_of_a_failure() -> None:
    broken = review_sentence(
        verdict=Verdict.BROKEN,
        training_status="failed",
        row_sentences=["A failed retrain wiped the version."],
        comparison=None,
        skipped=None,
    )
    assert broken == "The app's row is wrong after it: A failed retrain wiped the version."
    intact = review_sentence(
        verdict=Verdict.SAME,
        training_status="canceled",
        row_sentences=[],
        comparison=None,
        skipped=None,
    )
    assert intact == "The training was canceled; the app's row still holds the version it had."


def test_the_sentence_says_why_nothing_was_compared() -> None:
    said = review_sentence(
        verdict=None,
        training_status="succeeded",
        row_sentences=[],
        comparison=None,
        skipped="Not compared: over today's budget.",
    )
    assert said == "Not compared: over today's budget."


def _record(n: int, status: str = "succeeded") -> TrainingRecord:
    version = f"o/m:{HASH.format(n)}" if status == "succeeded" else None
    return TrainingRecord(
        id=f"t{n}",
        trainer_model="t/t",
        trainer_version="v",
        status=status,
        output_version=version,
    )


def test_the_version_before_a_retrain_is_the_last_succeeded_one_before_it() -> None:
    ledger = (_record(1), _record(2, "failed"), _record(3), _record(4, "failed"), _record(5))
    reviewed, before = trained_pair(ledger, "t5")
    assert reviewed is not None and reviewed.id == "t5"
    assert before is not None and before.id == "t3"
    assert trained_pair(ledger, "t1") == (ledger[0], None)  # a first training
    assert trained_pair(ledger, "nope") == (None, None)
