"""The scan's pure decisions, on values built in memory: when the ledger vouches for a
user, and which training ZIPs the dataset checks need."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from core.scan.datasets import SucceededTraining, needed_zip_urls
from core.scan.facts import LedgerHealth, ledger_problem
from tests.drift.builders import MODEL_ID, healthy, model_of, training

LISTING_DOWN = LedgerHealth(listing_error="Replicate is unavailable while listing trainings")


def test_a_complete_ledger_vouches_even_when_the_listing_failed() -> None:
    facts = healthy(training(1), training(2))
    assert ledger_problem(facts, LedgerHealth()) is None
    assert ledger_problem(facts, LISTING_DOWN) is None


def test_a_failed_listing_errs_when_the_ledger_misses_the_rows_training() -> None:
    first, second = training(1), training(2)
    facts = replace(healthy(first, second), trainings=(first,))  # the ledger is one behind
    problem = ledger_problem(facts, LISTING_DOWN)
    assert problem is not None and "could not be read from Replicate" in problem
    assert second.id in problem


def test_a_failed_listing_errs_when_no_ledger_training_made_the_latest_version() -> None:
    first = training(1)
    facts = replace(
        healthy(first, training_id=None), model=model_of([first], extra_newer=["f" * 64])
    )
    problem = ledger_problem(facts, LISTING_DOWN)
    assert problem is not None and "latest version" in problem


def test_a_user_without_history_needs_no_ledger() -> None:
    facts = replace(
        healthy(training(1), training_id=None, replicate_model_id=None, training_status="pending"),
        model=None,
        trainings=(),
    )
    assert ledger_problem(facts, LISTING_DOWN) is None


def test_a_training_that_could_not_be_read_errs_only_for_its_user() -> None:
    first, second = training(1), training(2)
    facts = healthy(first, second)
    assert ledger_problem(facts, LedgerHealth(training_errors={"other": "HTTP 500"})) is None
    problem = ledger_problem(facts, LedgerHealth(training_errors={first.id: "HTTP 500"}))
    assert problem == f"training {first.id} could not be read: HTTP 500"
    unread = replace(facts, trainings=(first,))
    problem = ledger_problem(unread, LedgerHealth(training_errors={second.id: "HTTP 503"}))
    assert problem is not None and "the row's training_id" in problem


def test_an_interrupted_sync_errs_for_unread_or_unfinished_trainings() -> None:
    first, second = training(1), training(2)
    stopped = LedgerHealth(interrupted="Replicate is unavailable")
    assert ledger_problem(healthy(first, second), stopped) is None
    assert ledger_problem(replace(healthy(first, second), trainings=(first,)), stopped) is not None
    assert (
        ledger_problem(
            replace(healthy(first, second), trainings=(first,)),
            replace(stopped, not_found=frozenset({second.id})),
        )
        is None
    )
    running = training(3, status="processing")
    assert ledger_problem(healthy(first, second, running), stopped) is not None


def test_junk_training_ids_are_not_the_ledgers_fault() -> None:
    facts = healthy(training(1), training_id="not/an id")
    assert ledger_problem(facts, LISTING_DOWN) is None
    assert ledger_problem(facts, LedgerHealth(training_errors={"not/an id": "junk"})) is None


T0 = datetime(2025, 6, 1, tzinfo=UTC)


def succeeded(
    n: int, destination: str | None = MODEL_ID, zip_url: str | None = "auto"
) -> SucceededTraining:
    url = f"https://blob.example/{n}.zip" if zip_url == "auto" else zip_url
    version = f"{n:x}" * 64
    return SucceededTraining("u", f"t{n}", destination, T0 + timedelta(days=n), url, version[:64])


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([], []),
        ([succeeded(1)], [1]),
        ([succeeded(1), succeeded(2), succeeded(3)], [2, 3]),
        # The row may follow either model: the last into each, and the one before each.
        ([succeeded(1), succeeded(2, "o/other"), succeeded(3), succeeded(4, "o/other")], [2, 3, 4]),
        ([succeeded(1), succeeded(2, "o/other"), succeeded(3)], [1, 2, 3]),
    ],
)
def test_the_dataset_checks_need_the_last_two_trainings_into_each_model(
    history: list[SucceededTraining],
    expected: list[int],
) -> None:
    assert needed_zip_urls(history) == [f"https://blob.example/{n}.zip" for n in expected]


def test_the_stored_version_s_training_is_needed_too_however_old() -> None:
    history = [succeeded(1), succeeded(2), succeeded(3), succeeded(4)]
    stored = f"{MODEL_ID}:{('1' * 64).upper()}"  # the app stores it however it does
    assert needed_zip_urls(history, stored) == [f"https://blob.example/{n}.zip" for n in (1, 3, 4)]
    assert needed_zip_urls(history, "not a version") == [
        f"https://blob.example/{n}.zip" for n in (3, 4)
    ]


def test_trainings_without_a_readable_zip_url_are_skipped() -> None:
    history = [succeeded(1, zip_url=None), succeeded(2, zip_url="data:zip"), succeeded(3)]
    assert needed_zip_urls(history) == ["https://blob.example/3.zip"]
