"""How far the training history (the ledger) can be trusted for a page, and asking the
workers to bring it up to date.

Only the workers list the account's trainings (a fleet-wide read: one request per 100
trainings the first time, then down to the newest one already listed). A page reads
``read_history``: how long ago the last listing completed and whether a sync is queued
or running. When the history is older than ``HISTORY_FRESH_SECONDS``, or one user's facts
show a gap (``ledger_gap``) that their trainings by id cannot close, the page asks for a
sync (``request_history_refresh``: one queued job however many pages ask) and shows its
progress from the database, never waiting on Replicate in its script thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, text

from core.drift.facts import UserFacts, blank_to_none
from core.gateway.values import is_training_id
from core.jobs.app import Priority, Queue, TaskName, defer
from core.ledger.sync import last_listing

# HISTORY_FRESH_SECONDS' default: how old the last listing may be for a page to trust it.
HISTORY_FRESH = timedelta(seconds=300)
# One fleet sync queued and one running at a time, whoever asked.
SYNC_LOCK = "ledger-sync"


@dataclass(frozen=True)
class History:
    """The ledger's freshness as a page sees it."""

    listed_at: str | None  # when the last listing completed (a mark); None: never listed
    listed_age: timedelta | None  # how long ago
    syncing: bool  # a fleet sync is queued or running
    fresh_within: timedelta

    @property
    def fresh(self) -> bool:
        return self.listed_age is not None and self.listed_age <= self.fresh_within

    def describe(self) -> str:
        """The history's age in words, for a caption (pure)."""
        if self.listed_age is None:
            known = "Replicate's training list has not been read yet"
        else:
            known = f"training history read from Replicate {_ago(self.listed_age)}"
        return known + ("; a worker is reading it again now" if self.syncing else "")


def _ago(age: timedelta) -> str:
    seconds = max(0, int(age.total_seconds()))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min ago"
    return f"{round(seconds / 3600, 1):g} h ago"


def read_history(conn: Connection, *, fresh_within: timedelta) -> History:
    """The ledger's last listing and whether a sync job waits or runs (schema ops)."""
    syncing = conn.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM ops.procrastinate_jobs"
            " WHERE task_name = :task AND status IN ('todo', 'doing'))"
        ),
        {"task": TaskName.SYNC_LEDGER.value},
    ).scalar_one()
    listing = last_listing(conn)
    listed_at, age = listing if listing is not None else (None, None)
    return History(listed_at, age, bool(syncing), fresh_within)


def request_history_refresh(conn: Connection) -> bool:
    """Queue a fleet sync of the ledger in ``conn``'s transaction (the caller commits);
    False when one was already waiting, which then does the work."""
    job_id = defer(
        conn,
        TaskName.SYNC_LEDGER,
        queue=Queue.SCANS,
        lock=SYNC_LOCK,
        queueing_lock=SYNC_LOCK,
        priority=Priority.PERSON_WAITING,
    )
    return job_id is not None


def ledger_gap(facts: UserFacts) -> str | None:
    """Why the ledger looks incomplete for this user, or None.

    Pure. A gap is a training the row or Replicate names that the ledger lacks: the row's
    ``training_id``, the training behind the row's model's latest version, or any training
    at all while the row has a model or a training.
    """
    known = {record.id for record in facts.trainings}
    training_id = blank_to_none(facts.row.training_id)
    if training_id is not None and is_training_id(training_id) and training_id not in known:
        return f"the ledger lacks training {training_id} (the row's training_id)"
    model = facts.model
    latest = model.latest if model is not None else None
    if (
        model is not None
        and latest is not None
        and not any(record.version_hash == latest.id for record in facts.trainings)
    ):
        return f"the ledger lacks the training that made {model.model_id}'s latest version"
    if not facts.trainings and (facts.row.model_id is not None or training_id is not None):
        return "the ledger has no training of this user"
    return None
