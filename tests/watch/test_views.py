"""What the pages read of the retrain reviews (``core.watch.views``), against the real
PostgreSQL: rows written into ops.retrain_reviews and the app's users as the review job
and the app write them, then read back as Fleet and the User page read them.

The clock is set years ahead (``NOW``), so reviews other tests committed to the shared
database fall outside every window here; the users are this module's own.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert

from core.gateway.values import ModelVersion
from core.ledger.reviews import Verdict, retrain_reviews
from core.schema import users
from core.watch.views import (
    OUTCOME_ORDER,
    REVIEWING,
    DayOutcomes,
    RecentRetrain,
    latest_review,
    outcomes_per_day,
    recent_retrains,
    retrain_window,
    summary_words,
    versions_words,
)

pytestmark = pytest.mark.timeout(30)

NOW = datetime(2040, 3, 10, 15, 0, tzinfo=UTC)  # the window of 7 days starts on 4 March
ANN, BEN, GONE = "rv-ann-0001", "rv-ben-0002", "rv-gone-0003"  # GONE: no users row
OLD, NEW = "a" * 64, "b" * 64


def _review(training_id: str, user_id: str, ended_at: datetime, **values: Any) -> dict[str, Any]:
    return {
        "training_id": training_id,
        "user_id": user_id,
        "training_status": "succeeded",
        "ended_at": ended_at,
        "status": "done",
        **values,
    }


@pytest.fixture
def world(conn: Connection) -> Connection:
    """Two users with emails, one the app no longer has, and their reviews: one just
    before the window, one at its first instant, a pending one, and three judged."""
    conn.execute(
        insert(users),
        [{"id": ANN, "email": "ann@example.test"}, {"id": BEN, "email": "ben@example.test"}],
    )
    for review in [
        _review("t-before", ANN, datetime(2040, 3, 3, 23, 59, 59, tzinfo=UTC), verdict="same"),
        _review(
            "t-first",
            ANN,
            datetime(2040, 3, 4, tzinfo=UTC),
            verdict="better",
            sentence="Closer to her photos than v1.",
            photos_before=12,
            photos_after=20,
            previous_version=OLD,
            new_version=NEW,
            comparison_id=41,
        ),
        _review(
            "t-worse",
            BEN,
            datetime(2040, 3, 9, 8, 0, tzinfo=UTC),
            verdict="worse",
            sentence="The new version lost the face.",
            photos_before=20,
            photos_after=6,
            alert_status="sent",
            alert_sent_at=datetime(2040, 3, 9, 8, 5, tzinfo=UTC),
        ),
        _review(
            "t-broken",
            GONE,
            datetime(2040, 3, 9, 9, 0, tzinfo=UTC),
            training_status="failed",
            verdict="broken",
            sentence="The failed retrain wiped the stored version.",
            alert_status="failed",
            alert_error="the webhook answered 500 three times",
        ),
        _review(
            "t-pending",
            ANN,
            datetime(2040, 3, 10, 14, 0, tzinfo=UTC),
            status="comparing",
            comparison_id=42,
        ),
    ]:
        conn.execute(insert(retrain_reviews).values(**review))  # each row its own columns
    return conn


def test_the_window_is_the_last_days_in_utc_today_included() -> None:
    window = retrain_window(7, NOW)
    assert (window.first_day, window.last_day) == (date(2040, 3, 4), date(2040, 3, 10))
    assert window.since == datetime(2040, 3, 4, tzinfo=UTC)
    assert len(window.days) == 7
    # 20:00 on the 10th in New York (UTC-5) is already the 11th in UTC.
    new_york = datetime(2040, 3, 10, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert retrain_window(1, new_york).days == (date(2040, 3, 11),)
    with pytest.raises(ValueError):
        retrain_window(0, NOW)


def test_recent_retrains_are_the_window_s_newest_first_with_emails(world: Connection) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(world, "before_cursor_execute", count)
    try:
        rows = recent_retrains(world, world, days=7, now=NOW)
    finally:
        event.remove(world, "before_cursor_execute", count)
    # One query on ops for the reviews, one on the app's users for their emails.
    assert len(statements) == 2, statements
    assert [row.training_id for row in rows] == ["t-pending", "t-broken", "t-worse", "t-first"]
    assert {row.training_id: row.email for row in rows} == {
        "t-pending": "ann@example.test",
        "t-broken": None,  # the app has no such user any more
        "t-worse": "ben@example.test",
        "t-first": "ann@example.test",
    }
    first = rows[-1]
    assert first.verdict is Verdict.BETTER and first.comparison_id == 41
    assert first.photos_words == "12 → 20" and first.alert_words == "—"
    assert [row.training_id for row in recent_retrains(world, world, days=14, now=NOW)][-1] == (
        "t-before"
    )


def test_a_review_still_running_reads_as_reviewing(world: Connection) -> None:
    pending = recent_retrains(world, world, days=7, now=NOW)[0]
    assert pending.reviewing and pending.verdict is None
    assert pending.verdict_words == REVIEWING == "reviewing…"
    assert pending.sentence_words.startswith("Comparing the version before")
    assert pending.alert_words == "—" and pending.photos_words == "— → —"


def test_the_alert_in_words(world: Connection) -> None:
    by_id = {row.training_id: row for row in recent_retrains(world, world, days=7, now=NOW)}
    assert by_id["t-worse"].alert_words == "sent 2040-03-09 08:05 UTC"
    assert by_id["t-broken"].alert_words == "not sent: the webhook answered 500 three times"
    assert by_id["t-broken"].ended_words == "failed"


def test_outcomes_per_day_has_every_day_of_the_window_zeros_included(world: Connection) -> None:
    rows = recent_retrains(world, world, days=7, now=NOW)
    days = outcomes_per_day(rows, days=7, now=NOW)
    assert [item.day for item in days] == [date(2040, 3, 4) + timedelta(days=n) for n in range(7)]
    assert days[0] == DayOutcomes(date(2040, 3, 4), better=1)
    assert days[1:5] == [DayOutcomes(date(2040, 3, 4) + timedelta(days=n)) for n in range(1, 5)]
    assert days[5] == DayOutcomes(date(2040, 3, 9), worse=1, broken=1)
    assert days[6] == DayOutcomes(date(2040, 3, 10), reviewing=1)
    assert [days[5].count(verdict) for verdict in OUTCOME_ORDER] == [0, 0, 1, 1]
    assert sum(item.judged for item in days) == 3
    assert summary_words(rows, days=7) == (
        "4 retrains ended in the last 7 days: 1 better, 0 no difference, 1 worse, "
        "1 broken; 1 still being reviewed."
    )
    # A row outside the window (as a caller might pass) is not counted anywhere.
    everything = recent_retrains(world, world, days=30, now=NOW)
    assert outcomes_per_day(everything, days=7, now=NOW) == days


def test_latest_review_is_the_user_s_last_ended_training_or_none(world: Connection) -> None:
    latest = latest_review(world, ANN)
    assert latest is not None and latest.training_id == "t-pending" and latest.email is None
    ben = latest_review(world, BEN)
    assert ben is not None and ben.verdict is Verdict.WORSE
    assert ben.sentence_words == "The new version lost the face."
    assert latest_review(world, "rv-nobody") is None


def test_versions_are_named_as_staff_call_them() -> None:
    versions = (
        ModelVersion(id=OLD, created_at=datetime(2040, 1, 3, tzinfo=UTC)),
        ModelVersion(id=NEW, created_at=datetime(2040, 3, 4, tzinfo=UTC)),
    )
    review = _plain(previous_version=OLD, new_version=NEW)
    assert versions_words(review, versions, this_year=2040) == (
        "v1 · trained 3 Jan → v2 · trained 4 Mar"
    )
    failed = _plain(previous_version=OLD, new_version=None)
    assert versions_words(failed, versions, this_year=2040) == (
        "v1 · trained 3 Jan, no new version"
    )
    assert versions_words(_plain(), versions) is None


def _plain(**values: Any) -> RecentRetrain:
    fields: dict[str, Any] = {
        "training_id": "t",
        "user_id": "u",
        "email": None,
        "training_status": "succeeded",
        "ended_at": NOW,
        "status": "done",
        "verdict": Verdict.SAME,
        "sentence": None,
        "codes": (),
        "previous_version": None,
        "new_version": None,
        "photos_before": None,
        "photos_after": None,
        "comparison_id": None,
        "skipped": None,
        "reviewed_at": None,
        "alert_status": "none",
        "alert_sent_at": None,
        "alert_error": None,
    }
    return RecentRetrain(**{**fields, **values})


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("none", "—"),
        ("off", "off: no alert webhook is set"),
        ("queued", "not sent yet: waiting to be sent"),
        ("sending", "sending…"),
        ("failed", "not sent: every attempt failed"),
        ("unknown", "not sent again: the sender stopped while sending, so it may or may not"),
    ],
)
def test_every_alert_status_has_words(status: str, words: str) -> None:
    assert _plain(verdict=Verdict.WORSE, alert_status=status).alert_words.startswith(words)


def test_a_retrain_that_sends_no_alert_reads_as_nothing_to_alert() -> None:
    assert _plain(verdict=Verdict.BETTER, alert_status="off").alert_words == "—"
    assert _plain(verdict=Verdict.SAME, alert_status="none").alert_words == "—"
    assert _plain(verdict=Verdict.BROKEN, alert_status="off").alert_words.startswith("off")


def test_no_review_means_no_row(conn: Connection) -> None:
    assert recent_retrains(conn, conn, days=7, now=NOW) == []
    assert outcomes_per_day([], days=3, now=NOW) == [
        DayOutcomes(date(2040, 3, 8)),
        DayOutcomes(date(2040, 3, 9)),
        DayOutcomes(date(2040, 3, 10)),
    ]
