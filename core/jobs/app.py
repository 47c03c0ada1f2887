"""The one procrastinate ``App``, the names of its tasks and queues, and ``defer``.

The app is built at import time with a connector that has no address yet: a worker gives
it the real connector when it starts (``core.jobs.worker``: ``app.replace_connector``),
after adding every domain's tasks to it (``core.tasks``; this module knows no domain).
Pages, the CLI and the tasks themselves never open the app: ``defer`` writes the job by
name with the caller's own database connection, inside the caller's transaction, so a
job exists exactly when the rows that describe it (a scan, its batches) were committed,
and a rollback takes both back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import IntEnum, StrEnum
from typing import Any

from procrastinate import App, PsycopgConnector, SyncPsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.manager import JobManager
from procrastinate.tasks import configure_task
from sqlalchemy import Connection, text

from core.schema import OPS_SCHEMA


class Queue(StrEnum):
    """Where a job waits; a worker may listen to some of them (``--queue``)."""

    SCANS = "scans"  # planning a scan, checking batches of users, following a scan
    DATASETS = "datasets"  # reading a training ZIP's photos (dlib: CPU-bound)
    MAINTENANCE = "maintenance"  # retrying jobs of dead workers, the nightly scan, the watch
    COMPARE = "compare"  # comparisons: creating and following predictions, scoring images
    RETRAIN = "retrain"  # retrains: checking photos, the one training create, following it


class Priority(IntEnum):
    """Which waiting job a free worker thread takes first (procrastinate: higher first).

    A comparison someone is watching must not queue behind a fleet scan's photo reads:
    on a fresh DEMO start the first scan reads every user's ZIP for over a minute."""

    DEMO = -10  # the demo world's own comparisons: filler, after everything else
    BACKGROUND = 0  # scans, photo reads, maintenance
    # The watch's passes, retrain reviews (their comparisons too) and alerts: a bad
    # retrain is caught within minutes even while a fleet scan reads every user's photos.
    WATCH = 5
    PERSON_WAITING = 10  # a comparison a person asked for (its steps, retries, cancels)


class TaskName(StrEnum):
    """Every task's name: explicit, so moving a function never orphans queued jobs."""

    PLAN_SCAN = "scan.plan"
    CHECK_BATCH = "scan.check_batch"
    FOLLOW_SCAN = "scan.follow"
    READ_ZIP = "dataset.read_zip"
    NIGHTLY_SCAN = "scan.nightly"
    MAINTAIN = "maintenance.tick"
    START_COMPARISON = "compare.start"
    PREDICT_IMAGE = "compare.predict"
    FOLLOW_IMAGE = "compare.follow"
    SCORE_IMAGE = "compare.score"
    CANCEL_COMPARISON = "compare.cancel"
    READ_TRAINING_PHOTOS = "photos.read"
    CHECK_RETRAIN = "retrain.check"
    SUBMIT_RETRAIN = "retrain.submit"
    FOLLOW_RETRAIN = "retrain.follow"
    SYNC_LEDGER = "ledger.sync"
    WATCH = "watch.pass"
    REVIEW_RETRAIN = "watch.review"
    SEND_ALERT = "watch.alert"


app = App(connector=PsycopgConnector())


def zip_lock(url: str) -> str:
    """The lock (and queueing lock) of the job reading ``url``'s photos: one such job
    queued at a time, and one running at a time, whoever asked."""
    return "zip:" + hashlib.sha256(url.encode()).hexdigest()[:40]


def defer(
    conn: Connection,
    task: TaskName,
    *,
    queue: Queue,
    lock: str | None = None,
    queueing_lock: str | None = None,
    schedule_in_seconds: float | None = None,
    priority: int = Priority.BACKGROUND,
    **arguments: Any,
) -> int | None:
    """Queue ``task(**arguments)`` in ``conn``'s transaction; its job id, or None when a
    job with the same ``queueing_lock`` is already waiting (which then does the work).

    procrastinate's SQL names its tables unqualified, so ``search_path`` leads with schema
    ops for the insert and is put back afterwards.
    """
    options: dict[str, Any] = {"queue": queue.value, "priority": int(priority)}
    if lock is not None:
        options["lock"] = lock
    if queueing_lock is not None:
        options["queueing_lock"] = queueing_lock
    if schedule_in_seconds is not None:
        options["schedule_in"] = {"seconds": schedule_in_seconds}
    try:
        # A refused insert must not abort the caller's transaction: a savepoint.
        with conn.begin_nested(), ops_search_path(conn):
            deferrer = configure_task(
                name=task.value, job_manager=_connection_only(), connection=_driver(conn), **options
            )
            job_id: int = deferrer.defer(**arguments)
    except AlreadyEnqueued:
        return None
    return job_id


def waiting_locks(conn: Connection, queueing_locks: Sequence[str]) -> set[str]:
    """Which of ``queueing_locks`` a waiting job already holds (one query): a page that
    asks again every run skips those instead of having each insert refused."""
    if not queueing_locks:
        return set()
    rows = conn.execute(
        text(
            "SELECT queueing_lock FROM ops.procrastinate_jobs"
            " WHERE status = 'todo' AND queueing_lock = ANY(:locks)"
        ),
        {"locks": list(queueing_locks)},
    ).scalars()
    return {str(lock) for lock in rows}


@contextmanager
def ops_search_path(conn: Connection) -> Iterator[None]:
    """``search_path`` led by schema ops for the block (procrastinate's functions and
    triggers name its tables unqualified), then put back. The setting is local to the
    transaction: when the block fails, rolling back (to a savepoint) undoes it."""
    previous = conn.execute(text("SELECT current_setting('search_path')")).scalar_one()
    conn.execute(
        text("SELECT set_config('search_path', :path, true)"), {"path": f"{OPS_SCHEMA}, {previous}"}
    )
    yield
    conn.execute(text("SELECT set_config('search_path', :path, true)"), {"path": previous})


def _connection_only() -> JobManager:
    """A job manager that only ever uses the connection it is handed: the app's own
    connector is async inside a worker, and cannot run on a caller's sync connection."""
    return JobManager(SyncPsycopgConnector())


def _driver(conn: Connection) -> Any:
    """The psycopg connection under SQLAlchemy's, so the job joins its transaction."""
    return conn.connection.driver_connection
