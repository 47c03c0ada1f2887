"""The queue at a glance, for admins: workers alive, jobs waiting, running, failed.

Read straight from procrastinate's tables in schema ops (the caller owns the
connection; read-only is enough). A worker is alive while its heartbeat (every 10 s) is
recent; a job waits when it is due (a job scheduled for later is not counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, text

# procrastinate's workers beat every 10 s; three missed beats and a worker is gone.
WORKER_ALIVE_WITHIN = timedelta(seconds=30)
FAILED_WITHIN = timedelta(hours=1)


@dataclass(frozen=True)
class QueueState:
    workers_alive: int
    waiting: int
    running: int
    failed_last_hour: int

    @property
    def problem(self) -> str | None:
        """What an admin should do about the queue, or None (pure)."""
        if self.workers_alive == 0 and (self.waiting or self.running):
            return (
                "No worker is running, so queued work waits: start one with "
                "`python -m core.worker` (DEMO restarts its own on the next page load)."
            )
        return None


def queue_state(conn: Connection) -> QueueState:
    """Workers alive, jobs due and waiting, running, failed in the last hour."""
    row = conn.execute(
        text(
            "SELECT"
            " (SELECT count(*) FROM ops.procrastinate_workers"
            "   WHERE last_heartbeat > now() - :alive) AS workers,"
            " (SELECT count(*) FROM ops.procrastinate_jobs WHERE status = 'todo'"
            "   AND (scheduled_at IS NULL OR scheduled_at <= now())) AS waiting,"
            " (SELECT count(*) FROM ops.procrastinate_jobs WHERE status = 'doing') AS running,"
            " (SELECT count(*) FROM ops.procrastinate_events WHERE type = 'failed'"
            "   AND at > now() - :failed) AS failed"
        ),
        {"alive": WORKER_ALIVE_WITHIN, "failed": FAILED_WITHIN},
    ).one()
    return QueueState(int(row.workers), int(row.waiting), int(row.running), int(row.failed))


def held_by_jobs(conn: Connection, task_names: Sequence[str], argument: str) -> set[int]:
    """The ``argument`` ids (a retrain's, an image's…) that a waiting or running job of one
    of ``task_names`` holds: their owner is alive or about to run. A job whose worker died
    is ``doing`` until the maintenance job queues it again, so it still counts here."""
    return {int(value) for value in held_keys_by_jobs(conn, task_names, argument)}


def held_keys_by_jobs(conn: Connection, task_names: Sequence[str], argument: str) -> set[str]:
    """``held_by_jobs`` for text keys (a training's id), as the jobs' arguments hold them."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT args ->> :argument FROM ops.procrastinate_jobs"
            " WHERE status IN ('todo', 'doing') AND task_name = ANY(:tasks)"
            " AND args ->> :argument IS NOT NULL"
        ),
        {"argument": argument, "tasks": list(task_names)},
    ).scalars()
    return {str(value) for value in rows}
