"""The maintenance job (``maintenance.tick``, every quarter of RECOVERY_SECONDS): the one
task that reaches several domains, so it lives beside them, not in ``core.jobs`` (which
every domain imports) nor in one of them. Registered by ``core.tasks``, which also
attaches its schedule (``maintenance_cron``) when a worker starts.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from procrastinate import Blueprint, JobContext
from procrastinate.exceptions import UniqueViolation
from procrastinate.jobs import Status

from core.compare import recovery as compare_recovery
from core.compare import run as compare_run
from core.compare.run import COMPARISON_TASKS, CompareSettings
from core.compare.tasks import compare_settings_of, defer_next
from core.jobs.app import Priority, Queue, TaskName
from core.jobs.context import JobServices, recovery_of, services_of
from core.jobs.status import held_by_jobs, held_keys_by_jobs
from core.retrain import follow as retrain_follow
from core.retrain.tasks import RETRAIN_TASKS, defer_retrain
from core.scan.request import reap_stale_scans
from core.scan.tasks import stale_after_of
from core.watch import alerts
from core.watch import run as watch_run

log = logging.getLogger(__name__)

blueprint = Blueprint()

# Finished jobs are kept this long (the sidebar counts failures of the last hour; the
# scans' own tables keep their history for good).
KEEP_FINISHED_JOBS_HOURS = 7 * 24


@blueprint.task(
    name=TaskName.MAINTAIN.value,
    queue=Queue.MAINTENANCE.value,
    pass_context=True,
    queueing_lock="maintenance",
)
async def maintain(context: JobContext, timestamp: int) -> None:
    """Every quarter of RECOVERY_SECONDS: run again the jobs of workers that died, queue
    the step that moves on every retrain, comparison and image no live run owns (a claim
    on a paid create only once its lease lapsed: its step searches Replicate first), give
    up on scans whose heartbeat stopped, forget old finished jobs."""
    manager = context.app.job_manager
    recovery = recovery_of(context)
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=recovery.total_seconds()):
        if job.id is None or job.id == context.job.id:
            continue
        try:
            await manager.retry_job(job)
            log.warning("job %s (%s) of a dead worker is queued again", job.id, job.task_name)
        except UniqueViolation:  # the same work is already queued: let that one do it
            await manager.finish_job(job, status=Status.FAILED, delete_job=False)
    await manager.delete_old_jobs(
        nb_hours=KEEP_FINISHED_JOBS_HOURS,
        include_failed=True,
        include_cancelled=True,
        include_aborted=True,
    )
    services = services_of(context)
    resumed = await asyncio.to_thread(
        resume_open_work, services, compare_settings_of(context), recovery=recovery
    )
    for what in resumed:
        log.warning("%s had no live owner; its next step is queued again", what)
    stale_after = stale_after_of(context)
    reaped = await asyncio.to_thread(_reap, services, stale_after)
    for scan_id in reaped:
        log.warning("scan %s had no heartbeat for %s and was marked failed", scan_id, stale_after)


def resume_open_work(
    services: JobServices, settings: CompareSettings, *, recovery: timedelta
) -> list[str]:
    """Queue the next step of every open retrain, comparison and image that no waiting or
    running job holds; finish comparisons whose last image ended without finishing them.
    What was resumed, for the log."""
    resumed: list[str] = []
    with services.ops_engine.begin() as conn:
        # Alerts: a claim older than ``recovery`` is given up as unknown (never sent
        # again), a queued alert with no job gets one.
        resumed += alerts.resume_alerts(conn, recovery=recovery)
        held = held_by_jobs(conn, [task.value for task in RETRAIN_TASKS.values()], "retrain_id")
        for step, retrain_id in retrain_follow.open_steps(conn):
            if retrain_id not in held:
                defer_retrain(conn, RETRAIN_TASKS[step], retrain_id)
                resumed.append(f"retrain {retrain_id} ({step})")
        comparison_tasks = [task.value for task in COMPARISON_TASKS]
        image_tasks = [
            task.value
            for task in (TaskName.PREDICT_IMAGE, TaskName.FOLLOW_IMAGE, TaskName.SCORE_IMAGE)
        ]
        held_comparisons = held_by_jobs(conn, comparison_tasks, "comparison_id")
        held_images = held_by_jobs(conn, image_tasks, "image_id")
        orphans = [
            step
            for step in compare_recovery.open_steps(conn)
            if step.argument
            not in (held_comparisons if step.argument_name == "comparison_id" else held_images)
        ]
        held_reviews = held_keys_by_jobs(conn, [TaskName.REVIEW_RETRAIN.value], "training_id")
        for training_id in watch_run.open_reviews(conn):
            if training_id not in held_reviews:
                watch_run.queue_review(conn, training_id)
                resumed.append(f"retrain review {training_id}")
    defer_next(services, orphans, priority=Priority.PERSON_WAITING)
    resumed += [f"{step.argument_name} {step.argument} ({step.task.value})" for step in orphans]
    with services.ops_engine.connect() as conn:
        done = compare_recovery.done_but_running(conn)
    for comparison_id in done:
        compare_run.finish_if_done(services, settings, comparison_id)
        resumed.append(f"comparison {comparison_id} (finish)")
    return resumed


def _reap(services: JobServices, stale_after: timedelta) -> list[int]:
    with services.ops_engine.begin() as conn:
        return [summary.id for summary in reap_stale_scans(conn, stale_after=stale_after)]


def maintenance_cron(recovery_seconds: float) -> str:
    """The maintenance job's schedule: every quarter of RECOVERY_SECONDS (cron with a
    sixth field for seconds), at most once a minute apart."""
    every = max(1, min(60, round(recovery_seconds / 4)))
    if every >= 60:
        return "* * * * *"
    return f"* * * * * */{every}"
