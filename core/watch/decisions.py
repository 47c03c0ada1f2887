"""The watch's rules, over plain values: when a pass is due, what it lists, which of the
trainings it knows have ended get a review.

A pass asks Replicate for the account's listing only when the ledger already has a
bookmark (the newest training listed): the first, complete listing is the ledger sync's
(a scan's), never the watch's, which must not list the whole fleet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.ledger.reviews import Verdict
from core.roles import Actor, Role

# How a training ends for the watch: Replicate's terminal statuses but ``aborted``
# (terminated before running: nothing was trained, nothing to review).
ENDED_STATUSES = frozenset({"succeeded", "failed", "canceled"})
# WATCH_INTERVAL_SECONDS' default: what a worker or a hand run uses when given none.
DEFAULT_INTERVAL_SECONDS = 300.0
# Who the watch's own writes are by in the audit log (its alerts): nobody asked for them,
# so no staff member; admin-level, like the promotion gate's actor.
WATCH_ACTOR = Actor("retrain-watch@sselfie-console", Role.ADMIN)


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


# The findings that say the app's row is wrong after a training: it did not store the
# new version (or stored it in the wrong form), kept a stale one, lost it on a failure,
# overwrote the trigger word, or trained into another model. Any of them: broken.
BROKEN_CODES = frozenset(
    {
        "VERSION_FORMAT",
        "VERSION_NOT_IN_MODEL",
        "STALE_VERSION",
        "TRIGGER_WORD_MISMATCH",
        "MODEL_ID_MISSING",
        "MODEL_NOT_FOUND",
        "VERSION_LOST",
        "STATUS_OUT_OF_SYNC",
        "WEIGHTS_URL_MISMATCH",
        "DUPLICATE_MODELS",
    }
)


# What the console's Retrain wizard leaves on purpose until its new version is promoted:
# the row on the version before it (so not broken for a retrain the console made).
CONSOLE_HOLDS_ROW = frozenset({"STALE_VERSION", "WEIGHTS_URL_MISMATCH"})


def judge(
    *, training_status: str, row_codes: Iterable[str], tone: str | None, row_gone: bool = False
) -> Verdict | None:
    """The verdict on one ended training (pure).

    ``tone`` is the automatic comparison's bottom line (worse, better, no difference: the
    new version read against the one before, beyond the noise floor), None when none ran.
    A new version that is worse is said first, whatever the row (the chart answers "do
    retrains make images better?"; the sentence names the row too); then a wrong row is
    broken; a training that failed or was canceled and left the row right changed
    nothing; otherwise the comparison decides, and without one nothing is judged (None:
    the review says why)."""
    if tone == "worse":
        return Verdict.WORSE
    if row_gone or any(code in BROKEN_CODES for code in row_codes):
        return Verdict.BROKEN
    if training_status != "succeeded":
        return Verdict.SAME
    if tone == "better":
        return Verdict.BETTER
    if tone == "no difference":
        return Verdict.SAME
    return None


def review_sentence(
    *,
    verdict: Verdict | None,
    training_status: str,
    row_sentences: Sequence[str],
    comparison: str | None,
    skipped: str | None,
    row_gone: bool = False,
) -> str:
    """What the review found, in one or two sentences for support (pure): the comparison's
    bottom line first when it judged the new version worse, what is wrong with the row,
    else what the comparison or the training's end says."""
    row = (
        "The user's row is gone from the app's database."
        if row_gone
        else (
            f"The app's row is wrong after it: {_first_sentence(row_sentences)}"
            if row_sentences
            else ""
        )
    )
    compared = comparison or ""
    if verdict is Verdict.WORSE:
        return _joined(compared, row)
    if verdict is Verdict.BROKEN:
        return _joined(row, compared or skipped or "")
    if training_status != "succeeded":
        return (
            f"The training {'was canceled' if training_status == 'canceled' else 'failed'}; "
            "the app's row still holds the version it had."
        )
    return compared or skipped or "Nothing to compare the new version with."


def _first_sentence(sentences: Sequence[str]) -> str:
    first = sentences[0].strip()
    more = len(sentences) - 1
    return first + (f" (and {more} more finding{'s' if more > 1 else ''})" if more else "")


def _joined(*parts: str) -> str:
    return " ".join(part.strip() for part in parts if part and part.strip())
