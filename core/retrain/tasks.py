"""A retrain's tasks: check a draft's photos, the one training create, following it to
its promotion gate. Thin shells over ``core.retrain``; registered with every other
domain's by ``core.tasks``. ``defer_retrain`` queues one of them (the page, the command
line, the steps themselves, the maintenance job).
"""

from __future__ import annotations

import logging
from typing import Any

from procrastinate import Blueprint, JobContext

from core.errors import ReplicateError
from core.jobs.app import Priority, Queue, TaskName, defer
from core.jobs.context import DATABASE_RETRY, recovery_of, services_of
from core.retrain import draft as retrain_draft
from core.retrain import follow as retrain_follow
from core.retrain import gate as retrain_gate
from core.retrain import submit as retrain_submit
from core.retrain.gate import GateSettings
from core.retrain.measure import PhotoMeasurer

log = logging.getLogger(__name__)

blueprint = Blueprint()

RETRAIN_KEY = "retrain"
PHOTO_MEASURER_KEY = "photo_measurer"
# The task that moves on each step ``core.retrain.follow.open_steps`` names.
RETRAIN_TASKS = {
    "check": TaskName.CHECK_RETRAIN,
    "submit": TaskName.SUBMIT_RETRAIN,
    "follow": TaskName.FOLLOW_RETRAIN,
}


def retrain_settings_of(context: JobContext) -> GateSettings:
    """The promotion gate's settings the worker was started with."""
    settings: GateSettings = context.additional_context[RETRAIN_KEY]
    return settings


def measurer_of(context: JobContext) -> PhotoMeasurer:
    """The worker's processes that measure a draft's photos (one per core)."""
    measurer: PhotoMeasurer = context.additional_context[PHOTO_MEASURER_KEY]
    return measurer


def defer_retrain(
    conn: Any, task: TaskName, retrain_id: int, *, after_seconds: float | None = None
) -> None:
    """Queue one step of a retrain (one waiting job per retrain and step). A person is
    waiting on every one of them: the page shows the checks and the progress."""
    defer(
        conn,
        task,
        queue=Queue.RETRAIN,
        queueing_lock=f"{task.value}:{retrain_id}",
        schedule_in_seconds=after_seconds,
        priority=Priority.PERSON_WAITING,
        retrain_id=retrain_id,
    )


@blueprint.task(
    name=TaskName.CHECK_RETRAIN.value,
    queue=Queue.RETRAIN.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def check_retrain(context: JobContext, retrain_id: int) -> None:
    """A draft's photos: the previous training's loaded once, each measured once (dlib),
    then the kept ones judged together."""
    services = services_of(context)
    problem = retrain_draft.load_previous(
        services.ops_engine, services.gateway, retrain_id, services.face_reader
    )
    retrain_draft.measure_draft(services.ops_engine, measurer_of(context), retrain_id)
    with services.ops_engine.begin() as conn:
        retrain_draft.rejudge(conn, retrain_id)
        if problem:
            retrain_draft.note_problem(conn, retrain_id, problem)


@blueprint.task(
    name=TaskName.SUBMIT_RETRAIN.value,
    queue=Queue.RETRAIN.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def submit_retrain(context: JobContext, retrain_id: int) -> None:
    """Upload the ZIP and create the one training; then follow it."""
    services = services_of(context)
    try:
        status = retrain_submit.submit(
            services.ops_engine, services.gateway, retrain_id, lease=recovery_of(context)
        )
    except ReplicateError as exc:
        # Only the search for a lost create raises: look again later, never resend.
        log.warning("retrain %s: searching for its training failed: %s", retrain_id, exc)
        with services.ops_engine.begin() as conn:
            defer_retrain(conn, TaskName.SUBMIT_RETRAIN, retrain_id, after_seconds=30.0)
        return
    if status in ("starting", "processing"):
        with services.ops_engine.begin() as conn:
            defer_retrain(
                conn, TaskName.FOLLOW_RETRAIN, retrain_id, after_seconds=retrain_follow.POLL_SECONDS
            )


@blueprint.task(
    name=TaskName.FOLLOW_RETRAIN.value,
    queue=Queue.RETRAIN.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def follow_retrain(context: JobContext, retrain_id: int) -> None:
    """Poll the training until it ends (whether or not anyone watches); on success start
    the promotion gate's comparison and wait for it (auto-promoting when allowed)."""
    services = services_of(context)
    after = retrain_follow.follow(services.ops_engine, services.gateway, retrain_id)
    if after is None:
        after = retrain_gate.advance_gate(
            app_engine=services.app_engine,
            ops_engine=services.ops_engine,
            gateway=services.gateway,
            retrain_id=retrain_id,
            settings=retrain_settings_of(context),
        )
    if after is not None:
        with services.ops_engine.begin() as conn:
            defer_retrain(conn, TaskName.FOLLOW_RETRAIN, retrain_id, after_seconds=after)
