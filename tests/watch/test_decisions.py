"""The watch's pure rules, on values built here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.watch.decisions import (
    EndedTraining,
    lists_trainings,
    pass_due,
    reviews_due,
    watch_cron,
)

pytestmark = pytest.mark.timeout(10)

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_the_tick_is_a_minute_or_the_interval_when_shorter() -> None:
    assert watch_cron(300) == ("* * * * *", 60.0)
    assert watch_cron(60) == ("* * * * *", 60.0)
    assert watch_cron(15) == ("* * * * * */15", 15.0)


def test_a_pass_is_due_once_the_last_is_an_interval_old_give_or_take_half_a_tick() -> None:
    five, minute = timedelta(minutes=5), timedelta(minutes=1)
    assert pass_due(None, T0, five, tick=minute)
    assert not pass_due(T0, T0 + timedelta(minutes=4), five, tick=minute)
    # The pass at T0 wrote a moment after its tick: the tick five minutes on still runs.
    assert pass_due(T0 + timedelta(seconds=2), T0 + five, five, tick=minute)
    assert not pass_due(T0, T0 + timedelta(minutes=4, seconds=29), five, tick=minute)


def test_no_bookmark_no_listing() -> None:
    assert not lists_trainings(None)
    assert lists_trainings("abc")


def test_reviews_are_for_ended_trainings_of_a_user_since_the_watch_began() -> None:
    after = T0 + timedelta(minutes=1)
    trainings = [
        EndedTraining("ok", "u1", "succeeded", after + timedelta(seconds=2)),
        EndedTraining("failed", "u2", "failed", after),
        EndedTraining("canceled", "u3", "canceled", after),
        EndedTraining("aborted", "u4", "aborted", after),  # never ran: nothing to review
        EndedTraining("running", "u5", "processing", after),
        EndedTraining("loose", None, "succeeded", after),  # no user (yet)
        EndedTraining("old", "u6", "succeeded", T0 - timedelta(seconds=1)),  # history
        EndedTraining("done", "u7", "succeeded", after),
    ]
    due = reviews_due(trainings, since=T0, reviewed={"done"})
    assert [training.id for training in due] == ["canceled", "failed", "ok"]
