"""A scan's tasks: plan it, check its batches, follow it, read a training ZIP's photos,
and the scheduled scan. Thin shells over ``core.scan``; registered with every other
domain's by ``core.tasks``.

When a scan's job fails for the last time, the scan is marked failed with the reason, so
nobody waits for a heartbeat timeout to learn it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from procrastinate import Blueprint, JobContext

from core.errors import Conflict
from core.jobs.app import Queue, TaskName
from core.jobs.context import DATABASE_RETRY, services_of
from core.redaction import redacted_url
from core.roles import Actor, Role
from core.scan.batch import check_batch
from core.scan.follow import follow_scan
from core.scan.plan import plan_scan
from core.scan.request import ScanOptions, abandon_scan, request_scan
from core.scan.run import describe_failure
from core.scan.zips import read_zip

log = logging.getLogger(__name__)

blueprint = Blueprint()

# The scheduled scan's audit identity: no person asked for it.
SCHEDULE_ACTOR = Actor("schedule@sselfie-console", Role.ADMIN)
STALE_AFTER_KEY = "stale_after"


def stale_after_of(context: JobContext) -> timedelta:
    """SCAN_HEARTBEAT_TIMEOUT_SECONDS as the worker was started with: a scan silent this
    long is given up."""
    stale_after: timedelta = context.additional_context[STALE_AFTER_KEY]
    return stale_after


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


@blueprint.task(
    name=TaskName.PLAN_SCAN.value, queue=Queue.SCANS.value, pass_context=True, retry=DATABASE_RETRY
)
def plan(context: JobContext, scan_id: int) -> None:
    """Sync the ledger and split the scan into batch and ZIP jobs."""
    with _ends_scan_on_last_failure(context, scan_id):
        plan_scan(services_of(context), scan_id)


@blueprint.task(
    name=TaskName.CHECK_BATCH.value,
    queue=Queue.SCANS.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def check(context: JobContext, scan_id: int, batch_no: int) -> None:
    """Check and store one batch of a scan's users."""
    with _ends_scan_on_last_failure(context, scan_id):
        check_batch(services_of(context), scan_id, batch_no)


@blueprint.task(
    name=TaskName.FOLLOW_SCAN.value,
    queue=Queue.SCANS.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def follow(context: JobContext, scan_id: int) -> None:
    """Release a scan's batches whose photos are read (defers itself while some wait)."""
    with _ends_scan_on_last_failure(context, scan_id):
        follow_scan(services_of(context), scan_id)


@blueprint.task(
    name=TaskName.READ_ZIP.value,
    queue=Queue.DATASETS.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def read_photos(context: JobContext, url: str, recheck: bool = False) -> None:
    """Measure one training ZIP's photos (once, whoever asked) and tell the scans."""
    error = read_zip(services_of(context), url, recheck=recheck)
    if error is not None:
        log.warning("the photos at %s could not be read: %s", redacted_url(url), error)


@blueprint.task(name=TaskName.NIGHTLY_SCAN.value, queue=Queue.MAINTENANCE.value, pass_context=True)
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
                stale_after=stale_after_of(context),
                via="schedule",
            )
    except Conflict as exc:
        log.info("scheduled scan skipped: %s", exc)
        return
    log.info("scheduled scan #%s queued", scan.id)
