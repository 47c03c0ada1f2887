"""How blind review names versions, columns and users, from values built in memory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core.drift.facts import TrainingRecord
from core.errors import DataRejected
from core.review.names import column_words, ledger_versions, named, person
from core.review.people import Person, chosen_user
from core.users import UserRow

pytestmark = pytest.mark.timeout(60)

COLUMNS: list[dict[str, Any]] = [
    {"letter": "A", "name": "stored", "style": "app"},
    {"letter": "B", "name": "latest", "style": "app"},
    {"letter": "C", "name": "site", "style": "site"},
    {"letter": "D", "name": "v2", "style": "app"},
]


def _training(
    training_id: str, version: str | None, created: datetime, status: str = "succeeded"
) -> TrainingRecord:
    return TrainingRecord(
        id=training_id,
        trainer_model="ostris/flux-dev-lora-trainer",
        trainer_version="t" * 64,
        status=status,
        input={"trigger_word": "user1234"},
        output_version=f"sandrasocial/user-lora:{version}" if version else None,
        output_weights=None,
        error=None,
        created_at=created,
        completed_at=created,
    )


@pytest.mark.parametrize(
    ("letter", "words"),
    [
        ("A", "column A: stored, the app's input"),
        ("B", "column B: latest, the app's input"),
        ("C", "column C: latest, Replicate's way"),
        ("D", "column D: the app's input"),
        ("R", None),  # the noise floor's repeat is never paired; nothing to say
        (None, None),
    ],
)
def test_a_column_is_named_by_what_it_runs_and_how(letter: str | None, words: str | None) -> None:
    assert column_words(letter, COLUMNS) == words


def test_a_comparison_without_recorded_columns_names_none() -> None:
    assert column_words("A", []) is None
    assert column_words("A", None) is None
    assert column_words("A", ["not a column"]) is None


def test_versions_come_from_succeeded_trainings_oldest_first_dated_by_their_training() -> None:
    first, second = datetime(2026, 10, 3, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC)
    trainings = [
        _training("t3", "c" * 64, datetime(2026, 11, 20, tzinfo=UTC), status="failed"),
        _training("t2", "b" * 64, second),
        _training("t1", "a" * 64, first),
    ]
    versions = ledger_versions(trainings)
    assert [(version.id, version.created_at) for version in versions] == [
        ("a" * 64, first),
        ("b" * 64, second),
    ]
    shown = named("b" * 64, "column B: latest, the app's input", versions)
    assert shown.name.startswith("v2 · trained 9 Nov")
    assert shown.words.endswith("(column B: latest, the app's input)")
    assert named("f" * 64, None, versions).words == "f" * 12  # not among them: its short hash


def _row(user_id: str, email: str | None) -> UserRow:
    return UserRow(user_id, email, None, None, None, None, None, None)


def test_the_filter_names_a_user_by_exact_id_first_then_exact_email_in_any_case() -> None:
    rows = [_row("u-2", "ann@example.test"), _row("ann@example.test", "other@example.test")]
    assert chosen_user(rows, "ann@example.test") == Person("ann@example.test", "other@example.test")
    assert chosen_user(rows[:1], " ANN@Example.test ") == Person("u-2", "ann@example.test")
    assert chosen_user([_row("u-3", "xann@example.test")], "ann@example.test") is None


def test_an_email_of_several_users_asks_for_the_id() -> None:
    rows = [_row("u-2", "ann@example.test"), _row("u-1", "Ann@example.test")]
    with pytest.raises(DataRejected, match=r"2 users have the email .*\(u-1, u-2\)"):
        chosen_user(rows, "ann@example.test")


def test_a_user_is_shown_by_email_first() -> None:
    assert person("u-1", "ann@example.test") == "ann@example.test · u-1"
    assert person("u-1", None) == "u-1"
