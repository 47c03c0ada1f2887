"""The tasks a worker runs: thin shells over core services.

Each task takes its services (engines, gateway, face readers) from the worker's context
(``core.worker``), never from module state. A database hiccup makes a job fail and
come back later (``DATABASE_RETRY``); when the last attempt fails, the scan it belongs
to is marked failed with the reason, so nobody waits for a heartbeat timeout to learn it.
Periodic schedules (the nightly scan, maintenance) are attached by the worker at start,
from the settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from procrastinate import JobContext, RetryStrategy
from procrastinate.exceptions import UniqueViolation
from procrastinate.jobs import Status
from sqlalchemy.exc import InterfaceError, OperationalError

from core.compare import recovery as compare_recovery
from core.compare import run as compare_run
from core.compare.photos import read_missing
from core.compare.run import COMPARISON_TASKS, CompareSettings, Next
from core.errors import Conflict, ReplicateError
from core.jobs.app import Priority, Queue, TaskName, app, defer
from core.jobs.context import JobServices
from core.jobs.status import held_by_jobs
from core.retrain import draft as retrain_draft
from core.retrain import follow as retrain_follow
from core.retrain import gate as retrain_gate
from core.retrain import submit as retrain_submit
from core.retrain.gate import GateSettings
from core.retrain.measure import PhotoMeasurer
from core.roles import Actor, Role
from core.scan.batch import check_batch
from core.scan.follow import follow_scan
from core.scan.plan import plan_scan
from core.scan.request import ScanOptions, abandon_scan, reap_stale_scans, request_scan
from core.scan.run import describe_failure
from core.scan.zips import read_zip

log = logging.getLogger(__name__)

DATABASE_RETRY = RetryStrategy(
    max_attempts=4, wait=5, retry_exceptions={OperationalError, InterfaceError}
)
# The scheduled scan's audit identity: no person asked for it.
SCHEDULE_ACTOR = Actor("schedule@sselfie-console", Role.ADMIN)
# A job whose worker has been silent for RECOVERY_SECONDS is taken for dead and run again
# (every step is safe to run twice); this is the default when a worker gives none.
DEFAULT_RECOVERY = timedelta(seconds=60)
# Finished jobs are kept this long (the sidebar counts failures of the last hour; the
# scans' own tables keep their history for good).
KEEP_FINISHED_JOBS_HOURS = 7 * 24
SERVICES_KEY = "services"
STALE_AFTER_KEY = "stale_after"
COMPARE_KEY = "compare"
RETRAIN_KEY = "retrain"
PHOTO_MEASURER_KEY = "photo_measurer"
RECOVERY_KEY = "recovery"
APP_CAN_PROMOTE_KEY = "app_can_promote"


def recovery_of(context: JobContext) -> timedelta:
    """RECOVERY_SECONDS as the worker was started with: how long a silent worker, a
    lapsed lease or an unowned step waits before it is resumed."""
    recovery: timedelta = context.additional_context.get(RECOVERY_KEY, DEFAULT_RECOVERY)
    return recovery


def services_of(context: JobContext) -> JobServices:
    """The worker's shared services (set by ``core.worker``)."""
    services: JobServices = context.additional_context[SERVICES_KEY]
    return services


@contextmanager
def _ends_scan_on_last_failure(context: JobContext, scan_id: int) -> Iterator[None]:
    """If this job fails for the last time, fail its scan with the reason (audited)."""
    try:
        yield
    except Exception as exc:
        job = context.job
        if context.task is None or context.task.get_retry_exception(exc, job) is None:
            log.exception("job %s of scan %s failed for good", job.id, scan_id)
            try:
                with services_of(context).ops_engine.begin() as conn:
                    abandon_scan(
                        conn, scan_id, f"a {job.task_name} job failed: {describe_failure(exc)}"
                    )
            except Exception:  # the database may be what broke; the job's error wins
                log.exception("could not mark scan %s failed", scan_id)
        raise


@app.task(
    name=TaskName.PLAN_SCAN.value, queue=Queue.SCANS.value, pass_context=True, retry=DATABASE_RETRY
)
def plan(context: JobContext, scan_id: int) -> None:
    """Sync the ledger and split the scan into batch and ZIP jobs."""
    with _ends_scan_on_last_failure(context, scan_id):
        plan_scan(services_of(context), scan_id)


@app.task(
    name=TaskName.CHECK_BATCH.value,
    queue=Queue.SCANS.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def check(context: JobContext, scan_id: int, batch_no: int) -> None:
    """Check and store one batch of a scan's users."""
    with _ends_scan_on_last_failure(context, scan_id):
        check_batch(services_of(context), scan_id, batch_no)


@app.task(
    name=TaskName.FOLLOW_SCAN.value,
    queue=Queue.SCANS.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def follow(context: JobContext, scan_id: int) -> None:
    """Release a scan's batches whose photos are read (defers itself while some wait)."""
    with _ends_scan_on_last_failure(context, scan_id):
        follow_scan(services_of(context), scan_id)


@app.task(
    name=TaskName.READ_ZIP.value,
    queue=Queue.DATASETS.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def read_photos(context: JobContext, url: str, recheck: bool = False) -> None:
    """Measure one training ZIP's photos (once, whoever asked) and tell the scans."""
    error = read_zip(services_of(context), url, recheck=recheck)
    if error is not None:
        log.warning("the photos at %s could not be read: %s", url, error)


def compare_settings_of(context: JobContext) -> CompareSettings:
    settings: CompareSettings = context.additional_context[COMPARE_KEY]
    return settings


def job_priority(context: JobContext) -> int:
    """The running job's priority (its follow-ups keep it)."""
    return int(context.job.priority)


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


@app.task(
    name=TaskName.START_COMPARISON.value,
    queue=Queue.COMPARE.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def start_comparison(context: JobContext, comparison_id: int) -> None:
    """Queue a comparison's predictions and read the user's photos as the reference."""
    services = services_of(context)
    defer_next(services, compare_run.start(services, comparison_id), priority=job_priority(context))


@app.task(
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


@app.task(
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


@app.task(
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


@app.task(
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


@app.task(
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


@app.task(name=TaskName.NIGHTLY_SCAN.value, queue=Queue.MAINTENANCE.value, pass_context=True)
def nightly(context: JobContext, timestamp: int) -> None:
    """The scheduled fleet scan (``SCAN_SCHEDULE``); skipped while one is queued or running."""
    services = services_of(context)
    try:
        with services.ops_engine.begin() as conn:
            scan = request_scan(
                conn,
                SCHEDULE_ACTOR,
                ScanOptions.of(),
                background=True,
                stale_after=context.additional_context[STALE_AFTER_KEY],
                via="schedule",
            )
    except Conflict as exc:
        log.info("scheduled scan skipped: %s", exc)
        return
    log.info("scheduled scan #%s queued", scan.id)


@app.task(
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
    for what in await asyncio.to_thread(resume_open_work, services, compare_settings_of(context)):
        log.warning("%s had no live owner; its next step is queued again", what)
    stale_after = context.additional_context[STALE_AFTER_KEY]
    reaped = await asyncio.to_thread(_reap, services, stale_after)
    for scan_id in reaped:
        log.warning("scan %s had no heartbeat for %s and was marked failed", scan_id, stale_after)


RETRAIN_TASKS = {
    "check": TaskName.CHECK_RETRAIN,
    "submit": TaskName.SUBMIT_RETRAIN,
    "follow": TaskName.FOLLOW_RETRAIN,
}


def resume_open_work(services: JobServices, settings: CompareSettings) -> list[str]:
    """Queue the next step of every open retrain, comparison and image that no waiting or
    running job holds; finish comparisons whose last image ended without finishing them.
    What was resumed, for the log."""
    resumed: list[str] = []
    with services.ops_engine.begin() as conn:
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
    defer_next(services, orphans, priority=Priority.PERSON_WAITING)
    resumed += [f"{step.argument_name} {step.argument} ({step.task.value})" for step in orphans]
    with services.ops_engine.connect() as conn:
        done = compare_recovery.done_but_running(conn)
    for comparison_id in done:
        compare_run.finish_if_done(services, settings, comparison_id)
        resumed.append(f"comparison {comparison_id} (finish)")
    return resumed


def _reap(services: JobServices, stale_after: Any) -> list[int]:
    with services.ops_engine.begin() as conn:
        return [summary.id for summary in reap_stale_scans(conn, stale_after=stale_after)]


def maintenance_cron(recovery_seconds: float) -> str:
    """The maintenance job's schedule: every quarter of RECOVERY_SECONDS (cron with a
    sixth field for seconds), at most once a minute apart."""
    every = max(1, min(60, round(recovery_seconds / 4)))
    if every >= 60:
        return "* * * * *"
    return f"* * * * * */{every}"


def attach_schedules(scan_cron: str | None, *, recovery_seconds: float = 60.0) -> list[str]:
    """Attach the periodic tasks to the app (once per process); what was attached."""
    attached = []
    schedules: list[tuple[Any, str, str]] = [
        (maintain, maintenance_cron(recovery_seconds), "maintenance")
    ]
    if scan_cron:
        schedules.append((nightly, scan_cron, "nightly-scan"))
    for task, cron, periodic_id in schedules:
        if (task.name, periodic_id) in app.periodic_registry.periodic_tasks:
            continue
        app.periodic(cron=cron, periodic_id=periodic_id)(task)
        attached.append(f"{task.name} ({cron})")
    return attached


# -- retrains ------------------------------------------------------------------------------


def retrain_settings_of(context: JobContext) -> GateSettings:
    settings: GateSettings = context.additional_context[RETRAIN_KEY]
    return settings


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


@app.task(
    name=TaskName.CHECK_RETRAIN.value,
    queue=Queue.RETRAIN.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def check_retrain(context: JobContext, retrain_id: int) -> None:
    """A draft's photos: the previous training's loaded once, each measured once (dlib),
    then the kept ones judged together."""
    services = services_of(context)
    problem = retrain_draft.load_previous(services.ops_engine, services.gateway, retrain_id)
    measurer: PhotoMeasurer = context.additional_context[PHOTO_MEASURER_KEY]
    retrain_draft.measure_draft(services.ops_engine, measurer, retrain_id)
    with services.ops_engine.begin() as conn:
        retrain_draft.rejudge(conn, retrain_id)
        if problem:
            retrain_draft.note_problem(conn, retrain_id, problem)


@app.task(
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


@app.task(
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
