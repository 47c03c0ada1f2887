"""The watch's rules, over plain values: when a pass is due, what it lists, which of the
trainings it knows have ended get a review.

A pass asks Replicate for the account's listing only when the ledger already has a
bookmark (the newest training listed): the first, complete listing is the ledger sync's
(a scan's), never the watch's, which must not list the whole fleet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from core.roles import Actor, Role

# How a training ends for the watch: Replicate's terminal statuses but ``aborted``
# (terminated before running: nothing was trained, nothing to review).
ENDED_STATUSES = frozenset({"succeeded", "failed", "canceled"})
# WATCH_INTERVAL_SECONDS' default: what a worker or a hand run uses when given none.
DEFAULT_INTERVAL_SECONDS = 300.0
# Who the watch's own writes are by in the audit log (its alerts): nobody asked for them,
# so no staff member; admin-level, like the promotion gate's actor.
WATCH_ACTOR = Actor("retrain-watch@sselfie-console", Role.ADMIN)


class Verdict(StrEnum):
    """What a retrain review says of one ended training (``ops.retrain_reviews.verdict``)."""

    BETTER = "better"  # the new version is closer to the user's photos beyond the noise
    SAME = "same"  # no difference beyond the noise (or nothing changed: a failed training)
    WORSE = "worse"  # the new version loses the face or is further beyond the noise
    BROKEN = "broken"  # the app's row is wrong after it (stale, lost or malformed version…)

    @property
    def words(self) -> str:
        return VERDICT_WORDS[self]

    @property
    def alerts(self) -> bool:
        """Whether a retrain so judged sends an alert."""
        return self in (Verdict.WORSE, Verdict.BROKEN)


VERDICT_WORDS = {
    Verdict.BETTER: "Better",
    Verdict.SAME: "No difference",
    Verdict.WORSE: "Worse",
    Verdict.BROKEN: "Broken",
}


@dataclass(frozen=True)
class EndedTraining:
    """A ledger training as the review rule sees it."""

    id: str
    user_id: str | None
    status: str
    ended_at: datetime | None  # completed_at, else when the ledger last wrote it


def watch_cron(interval_seconds: float) -> tuple[str, float]:
    """The periodic job's cron line and its tick in seconds: every minute for an interval
    of a minute or more (a tick that finds the last pass too young skips), else every
    ``interval_seconds`` (a 6th cron field is seconds)."""
    if interval_seconds >= 60:
        return "* * * * *", 60.0
    every = max(1, round(interval_seconds))
    return f"* * * * * */{every}", float(every)


def pass_due(
    last_pass_at: datetime | None, now: datetime, interval: timedelta, *, tick: timedelta
) -> bool:
    """Whether a periodic tick at ``now`` runs a pass: never run, or the last one is at
    least ``interval`` old, give or take half a tick (a pass takes a moment, so the one
    five minutes later would otherwise slip by a whole tick)."""
    if last_pass_at is None:
        return True
    return now - last_pass_at >= interval - tick / 2


def lists_trainings(bookmark: str | None) -> bool:
    """A pass lists the account's trainings only down to a bookmark; none yet: the first
    complete listing is left to the ledger's sync."""
    return bookmark is not None


def reviews_due(
    trainings: Iterable[EndedTraining], *, since: datetime, reviewed: Iterable[str] = ()
) -> list[EndedTraining]:
    """The trainings whose end queues a review: attached to a user, ended (succeeded,
    failed or canceled) at or after ``since`` (when the watch began), and not reviewed
    yet. Oldest end first."""
    seen = set(reviewed)
    due = [
        training
        for training in trainings
        if training.user_id is not None
        and training.status in ENDED_STATUSES
        and training.ended_at is not None
        and training.ended_at >= since
        and training.id not in seen
    ]
    return sorted(due, key=lambda training: (training.ended_at or since, training.id))
