"""What the maintenance job resumes of comparisons: every open state that no live run owns.

Each open state of ``core.compare.states`` has an owner; when that owner died (a worker
killed between two steps, or in the middle of one), nothing would move the row again.
``open_steps`` lists the step that moves each open row on; the job layer queues those no
waiting or running job already holds (``core.maintenance``), and every step is safe to run
twice. A claim on a create is resumed only once its lease lapsed: until then its run is
alive, however slow Replicate is.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, exists, not_, or_, select

from core.compare.run import Next
from core.compare.tables import comparison_images, comparisons
from core.jobs.app import TaskName
from core.leases import is_free

IMAGE_STEP = {
    "pending": TaskName.PREDICT_IMAGE,
    "creating": TaskName.PREDICT_IMAGE,
    "lost": TaskName.PREDICT_IMAGE,
    "starting": TaskName.FOLLOW_IMAGE,
    "processing": TaskName.FOLLOW_IMAGE,
    "succeeded": TaskName.SCORE_IMAGE,
}


def open_steps(conn: Connection) -> list[Next]:
    """The step that moves each open comparison and image on (see the module docstring)."""
    steps = [
        Next(TaskName.START_COMPARISON, int(comparison_id))
        for comparison_id in conn.execute(
            select(comparisons.c.id).where(
                (comparisons.c.status == "queued")
                | ((comparisons.c.status == "running") & comparisons.c.reference.is_(None))
            )
        ).scalars()
    ]
    images = comparison_images
    running = select(comparisons.c.id).where(comparisons.c.status == "running")
    rows = conn.execute(
        select(images.c.id, images.c.status).where(
            or_(
                # A pending image is created only while its comparison runs.
                and_(images.c.status == "pending", images.c.comparison_id.in_(running)),
                # A claim whose run died: searched for, whatever its comparison became.
                and_(images.c.status.in_(("creating", "lost")), is_free(images)),
                images.c.status.in_(("starting", "processing")),
                and_(images.c.status == "succeeded", images.c.scores.is_(None)),
            )
        )
    ).all()
    steps += [Next(IMAGE_STEP[row.status], int(row.id)) for row in rows]
    return steps


def done_but_running(conn: Connection) -> list[int]:
    """Running comparisons whose images all ended and are scored: the transaction that
    ended the last one should have finished them (its worker died first)."""
    images = comparison_images
    unfinished = exists().where(
        images.c.comparison_id == comparisons.c.id,
        or_(
            images.c.status.not_in(("succeeded", "failed", "canceled", "aborted")),
            and_(images.c.status == "succeeded", images.c.scores.is_(None)),
        ),
    )
    return [
        int(comparison_id)
        for comparison_id in conn.execute(
            select(comparisons.c.id).where(
                comparisons.c.status == "running",
                comparisons.c.reference.is_not(None),
                not_(unfinished),
            )
        ).scalars()
    ]
