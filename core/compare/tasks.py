"""A comparison's tasks: start it, create, follow and score each image's prediction,
cancel it, and read a training ZIP's photos for the User page and the reference. Thin
shells over ``core.compare.run``; registered with every other domain's by ``core.tasks``.

Each step returns its follow-ups (``Next``); ``defer_next`` queues them, one queued job
per image and step, at the priority of the step that made them.
"""

from __future__ import annotations

import logging
from typing import Any

from procrastinate import Blueprint, JobContext

from core.compare import run as compare_run
from core.compare.photos import read_missing
from core.compare.run import CompareSettings, Next
from core.jobs.app import Queue, TaskName, defer
from core.jobs.context import DATABASE_RETRY, JobServices, job_priority, services_of

log = logging.getLogger(__name__)

blueprint = Blueprint()

COMPARE_KEY = "compare"


def compare_settings_of(context: JobContext) -> CompareSettings:
    """The comparison settings the worker was started with."""
    settings: CompareSettings = context.additional_context[COMPARE_KEY]
    return settings


def defer_next(services: JobServices, steps: list[Next], *, priority: int) -> None:
    """Queue a comparison step's follow-ups (one queued job per image and step), at the
    priority of the step that made them (a person's comparison stays ahead of scans)."""
    if not steps:
        return
    with services.ops_engine.begin() as conn:
        for step in steps:
            arguments: dict[str, Any] = {step.argument_name: step.argument}
            defer(
                conn,
                step.task,
                queue=Queue.COMPARE,
                queueing_lock=f"{step.task.value}:{step.argument}",
                schedule_in_seconds=step.after_seconds,
                priority=priority,
                **arguments,
            )


@blueprint.task(
    name=TaskName.START_COMPARISON.value,
    queue=Queue.COMPARE.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def start_comparison(context: JobContext, comparison_id: int) -> None:
    """Queue a comparison's predictions and read the user's photos as the reference."""
    services = services_of(context)
    defer_next(services, compare_run.start(services, comparison_id), priority=job_priority(context))


@blueprint.task(
    name=TaskName.PREDICT_IMAGE.value,
    queue=Queue.COMPARE.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def predict_image(context: JobContext, image_id: int) -> None:
    """Claim one comparison image and create its prediction (once)."""
    services = services_of(context)
    defer_next(
        services,
        compare_run.predict(services, compare_settings_of(context), image_id),
        priority=job_priority(context),
    )


@blueprint.task(
    name=TaskName.FOLLOW_IMAGE.value,
    queue=Queue.COMPARE.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def follow_image(context: JobContext, image_id: int) -> None:
    """Poll one image's prediction; keep its preview when it succeeds."""
    services = services_of(context)
    defer_next(
        services,
        compare_run.follow(services, compare_settings_of(context), image_id),
        priority=job_priority(context),
    )


@blueprint.task(
    name=TaskName.SCORE_IMAGE.value,
    queue=Queue.COMPARE.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def score_image(context: JobContext, image_id: int) -> None:
    """Score one image with dlib against the user's photos."""
    services = services_of(context)
    defer_next(
        services,
        compare_run.score(services, compare_settings_of(context), image_id),
        priority=job_priority(context),
    )


@blueprint.task(
    name=TaskName.CANCEL_COMPARISON.value,
    queue=Queue.COMPARE.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def cancel_comparison(context: JobContext, comparison_id: int) -> None:
    """Cancel on Replicate what a cancelled comparison still runs."""
    services = services_of(context)
    defer_next(
        services, compare_run.cancel(services, comparison_id), priority=job_priority(context)
    )


@blueprint.task(
    name=TaskName.READ_TRAINING_PHOTOS.value,
    queue=Queue.DATASETS.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def read_training_photos(context: JobContext, url: str) -> None:
    """One training ZIP's photos: faces, thumbnails and verdicts (the User page, Compare)."""
    services = services_of(context)
    for problem in read_missing(
        services.ops_engine, services.gateway, services.face_reader(), [url]
    ):
        log.warning("%s", problem)
