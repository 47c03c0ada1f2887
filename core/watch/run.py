"""One watch pass: what is new on Replicate since the last look, into the ledger, and a
retrain review queued for every user whose training ended since.

A pass reuses the ledger's sync (``core.ledger.sync``: ``read_sync_plan``, ``fetch_sync``,
``write_sync``) with a narrower plan:

1. the account's listing, newest first, page by page, only down to the ledger's bookmark
   (the newest training already listed), or to the first training created before it
   should the bookmark itself be gone; no bookmark yet, no listing (the first complete
   listing is the ledger sync's, run by a scan);
2. a GET by id of each training the ledger holds as unfinished (starting, processing), to
   see which ended; not the app's rows' training ids (the ledger sync's business);
3. in the same transaction as the ledger's write, a row of ``ops.retrain_reviews`` for
   every training attached to a user that ended (succeeded, failed, canceled) since the
   watch began (``watch.since`` in ``ops.ledger_state``, set by the first pass) and has
   none yet, ``ON CONFLICT DO NOTHING``, and its ``watch.review`` job
   (``core.watch.review``): two passes, or two workers, queue one review.

Replicate calls of a pass with nothing new: exactly one listing call (the bookmark is on
the first page) plus one GET per training the ledger holds as unfinished, whatever the
number of users or trainings; each new page of 100 trainings adds one call. The gateway
keeps them within the rate limit. No connection is held while Replicate is read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, Engine, exists, func, select
from sqlalchemy.dialects.postgresql import insert

from core.gateway.gateway import ReplicateGateway
from core.jobs.app import Priority, Queue, TaskName, defer
from core.ledger.reviews import retrain_reviews
from core.ledger.store import read_state, set_state
from core.ledger.sync import SyncFetch, SyncPlan, fetch_sync, read_sync_plan, write_sync
from core.ledger.tables import trainings
from core.watch.decisions import (
    ENDED_STATUSES,
    EndedTraining,
    lists_trainings,
    pass_due,
    reviews_due,
)

# The review of a training that failed or was canceled starts this long after the watch
# saw it end: the app writes its row when Replicate's webhook reaches it, usually within
# seconds, and such a review judges the row at once. A succeeded training's review starts
# at once: its row is judged after its comparison, which gives the app that time.
REVIEW_GRACE_SECONDS = 10.0

# Kept in ops.ledger_state: when the watch began (reviews are for trainings ended since)
# and when its last pass wrote.
SINCE_KEY = "watch.since"
LAST_PASS_KEY = "watch.last_pass_at"


@dataclass(frozen=True)
class QueuedReview:
    training_id: str
    user_id: str
    training_status: str


@dataclass(frozen=True)
class WatchReport:
    """What one pass did."""

    listed: bool  # whether the account's listing was read (a bookmark existed)
    new_trainings: int  # trainings the listing brought that the ledger lacked
    refreshed: int  # unfinished ledger trainings read again by id
    queued: tuple[QueuedReview, ...]  # reviews this pass queued (not those already queued)
    errors: Mapping[str, str] = field(default_factory=dict)  # training id -> message
    interrupted: str | None = None  # why some reads were left for the next pass
    seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "errors", MappingProxyType(dict(self.errors)))

    def as_json(self) -> dict[str, Any]:
        return {
            "listed": self.listed,
            "new_trainings": self.new_trainings,
            "refreshed": self.refreshed,
            "queued": len(self.queued),
            "training_ids": [review.training_id for review in self.queued],
            "reviews": [
                {
                    "training_id": review.training_id,
                    "user_id": review.user_id,
                    "training_status": review.training_status,
                }
                for review in self.queued
            ],
            "errors": dict(self.errors),
            "interrupted": self.interrupted,
            "seconds": self.seconds,
        }


def read_watch_plan(conn: Connection, *, app_conn: Connection | None = None) -> SyncPlan:
    """The ledger sync's plan narrowed to the watch: list only down to a bookmark (none:
    no listing) or to the first training created before it (should Replicate no longer
    list the bookmark itself), read by id only the unfinished trainings, no training ids
    of the app's rows."""
    plan = read_sync_plan(conn, app_conn=app_conn)
    bookmarked_at = (
        conn.execute(
            select(trainings.c.created_at).where(trainings.c.id == plan.bookmark)
        ).scalar_one_or_none()
        if plan.bookmark is not None
        else None
    )
    return replace(
        plan,
        row_ids=frozenset(),
        in_ledger=frozenset(),
        known_missing=frozenset(),
        listing=lists_trainings(plan.bookmark),
        listed_after=bookmarked_at,
    )


def watch_pass(
    conn: Connection, gateway: ReplicateGateway, *, app_conn: Connection | None = None
) -> WatchReport:
    """One pass on the caller's connection and transaction (tests, scripts); services
    call ``run_watch``, which holds no connection while Replicate is read."""
    plan = read_watch_plan(conn, app_conn=app_conn)
    return write_pass(conn, plan, fetch_sync(gateway, plan), app_conn=app_conn)


def run_watch(*, ops_engine: Engine, app_engine: Engine, gateway: ReplicateGateway) -> WatchReport:
    """One pass, committed: plan on the databases, let go, read Replicate, then write the
    ledger and the reviews in one short transaction. A failed listing raises
    (``ReplicateError``) and changes nothing."""
    with ops_engine.connect() as conn:
        if ops_engine is app_engine:
            plan = read_watch_plan(conn)
        else:
            with app_engine.connect() as app_conn:
                plan = read_watch_plan(conn, app_conn=app_conn)
    fetched = fetch_sync(gateway, plan)
    with ops_engine.begin() as conn:
        if ops_engine is app_engine:
            return write_pass(conn, plan, fetched)
        with app_engine.connect() as app_conn:
            return write_pass(conn, plan, fetched, app_conn=app_conn)


def run_watch_if_due(
    *,
    ops_engine: Engine,
    app_engine: Engine,
    gateway: ReplicateGateway,
    interval: timedelta,
    tick: timedelta,
) -> WatchReport | None:
    """A periodic tick: one pass when the last is at least ``interval`` old, else None."""
    with ops_engine.connect() as conn:
        last = last_pass_at(conn)
        now: datetime = conn.execute(select(func.clock_timestamp())).scalar_one()
    if not pass_due(last, now, interval, tick=tick):
        return None
    return run_watch(ops_engine=ops_engine, app_engine=app_engine, gateway=gateway)


def write_pass(
    conn: Connection, plan: SyncPlan, fetched: SyncFetch, *, app_conn: Connection | None = None
) -> WatchReport:
    """Write what the pass read into the ledger (``write_sync``), then queue the reviews
    due, in the caller's transaction."""
    sync = write_sync(conn, plan, fetched, app_conn=app_conn)
    now: datetime = conn.execute(select(func.clock_timestamp())).scalar_one()
    since = _since(conn, now)
    due = reviews_due(_ended_unreviewed(conn, since), since=since)
    queued = _queue_reviews(conn, due)
    set_state(conn, LAST_PASS_KEY, now.isoformat())
    return WatchReport(
        listed=plan.listing,
        new_trainings=sync.inserted,
        refreshed=sync.refreshed,
        queued=queued,
        errors=sync.errors,
        interrupted=sync.interrupted,
        seconds=round(time.perf_counter() - plan.started, 3),
    )


def last_pass_at(conn: Connection) -> datetime | None:
    value = read_state(conn, LAST_PASS_KEY)
    return datetime.fromisoformat(value) if value else None


def _since(conn: Connection, now: datetime) -> datetime:
    """When the watch began; the first pass sets it (what ended before is history)."""
    value = read_state(conn, SINCE_KEY)
    if value:
        return datetime.fromisoformat(value)
    set_state(conn, SINCE_KEY, now.isoformat())
    return now


def _ended_unreviewed(conn: Connection, since: datetime) -> list[EndedTraining]:
    ended_at = func.coalesce(trainings.c.completed_at, trainings.c.synced_at)
    rows = conn.execute(
        select(trainings.c.id, trainings.c.user_id, trainings.c.status, ended_at.label("ended"))
        .where(
            trainings.c.user_id.is_not(None),
            trainings.c.status.in_(sorted(ENDED_STATUSES)),
            ended_at >= since,
            ~exists().where(retrain_reviews.c.training_id == trainings.c.id),
        )
        .order_by(ended_at, trainings.c.id)
    )
    return [EndedTraining(row.id, row.user_id, row.status, row.ended) for row in rows]


def _queue_reviews(conn: Connection, due: list[EndedTraining]) -> tuple[QueuedReview, ...]:
    """Insert a queued review per training; one already there (another pass, another
    worker) is left as it is and not reported as queued by this pass."""
    if not due:
        return ()
    statement = (
        insert(retrain_reviews)
        .values(
            [
                {
                    "training_id": training.id,
                    "user_id": training.user_id,
                    "training_status": training.status,
                    "ended_at": training.ended_at,
                }
                for training in due
            ]
        )
        .on_conflict_do_nothing(index_elements=[retrain_reviews.c.training_id])
        .returning(retrain_reviews.c.training_id)
    )
    inserted = set(conn.execute(statement).scalars())
    for training in due:
        if training.id in inserted:
            grace = None if training.status == "succeeded" else REVIEW_GRACE_SECONDS
            queue_review(conn, training.id, after_seconds=grace)
    return tuple(
        QueuedReview(training.id, training.user_id or "", training.status)
        for training in due
        if training.id in inserted
    )


def review_lock(training_id: str) -> str:
    return f"review:{training_id}"


def queue_review(conn: Connection, training_id: str, *, after_seconds: float | None = None) -> None:
    """Queue the next step of ``training_id``'s review in the caller's transaction (one
    waiting job per review: its queueing lock)."""
    defer(
        conn,
        TaskName.REVIEW_RETRAIN,
        queue=Queue.MAINTENANCE,
        queueing_lock=review_lock(training_id),
        lock=review_lock(training_id),
        schedule_in_seconds=after_seconds,
        priority=Priority.WATCH,
        training_id=training_id,
    )


def open_reviews(conn: Connection) -> list[str]:
    """The reviews not done yet, for the maintenance job to resume those no job holds."""
    return list(
        conn.execute(
            select(retrain_reviews.c.training_id).where(retrain_reviews.c.status != "done")
        ).scalars()
    )
