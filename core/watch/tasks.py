"""The watch's periodic job (``watch.pass``): a tick every minute (every
WATCH_INTERVAL_SECONDS when that is shorter) that runs a pass once the last one is
WATCH_INTERVAL_SECONDS old. Registered with every other domain's by ``core.tasks``, which
attaches its schedule when a worker starts, in DEMO too.

The tick's queueing lock keeps one waiting, its lock one running: passes never overlap,
however many workers share the queue.

``watch.alert`` sends one worse or broken retrain's alert (``core.watch.alerts``), queued
by its review and again by itself while the webhook cannot take it yet.
"""

from __future__ import annotations

import logging
from datetime import datetime

from procrastinate import Blueprint, JobContext

from core.errors import ReplicateError
from core.jobs.app import Priority, Queue, TaskName
from core.jobs.context import DATABASE_RETRY, services_of
from core.watch import alerts
from core.watch.decisions import DEFAULT_INTERVAL_SECONDS
from core.watch.review import ReviewSettings, advance_review
from core.watch.run import queue_review, run_watch_if_due
from core.watch.settings import WatchSettings, watch_settings

log = logging.getLogger(__name__)

blueprint = Blueprint()

WATCH_KEY = "watch"
WATCH_LOCK = "watch"
PERIODIC_ID = "watch"


def watch_settings_of(context: JobContext) -> WatchSettings:
    """The watch settings the worker was started with (defaults for a bare app)."""
    settings: WatchSettings = context.additional_context.get(
        WATCH_KEY, watch_settings(DEFAULT_INTERVAL_SECONDS)
    )
    return settings


@blueprint.task(
    name=TaskName.WATCH.value,
    queue=Queue.MAINTENANCE.value,
    priority=Priority.WATCH,
    pass_context=True,
    queueing_lock=WATCH_LOCK,
    lock=WATCH_LOCK,
    retry=DATABASE_RETRY,
)
def watch(context: JobContext, timestamp: int) -> None:
    """A tick: a watch pass when the last one is WATCH_INTERVAL_SECONDS old. A listing
    that fails is logged and tried again at the next tick (nothing was written)."""
    services = services_of(context)
    settings = watch_settings_of(context)
    try:
        report = run_watch_if_due(
            ops_engine=services.ops_engine,
            app_engine=services.app_engine,
            gateway=services.gateway,
            interval=settings.interval,
            tick=settings.tick,
        )
    except ReplicateError as exc:
        log.warning("the watch could not read Replicate: %s", exc)
        return
    if report is None:
        return
    log.info(
        "watch: %s new trainings, %s unfinished read again, %s reviews queued (%s), %s s",
        report.new_trainings,
        report.refreshed,
        len(report.queued),
        ", ".join(review.training_id for review in report.queued) or "none",
        report.seconds,
    )


@blueprint.task(
    name=TaskName.REVIEW_RETRAIN.value,
    queue=Queue.MAINTENANCE.value,
    priority=Priority.WATCH,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def review_retrain(context: JobContext, training_id: str) -> None:
    """One step of a retrain's review (``core.watch.review``); the next is queued when
    it has one (its comparison still runs, or Replicate could not be read)."""
    services = services_of(context)
    settings = watch_settings_of(context)
    after = advance_review(
        services,
        ReviewSettings(
            daily_budget_usd=settings.daily_budget_usd,
            price_per_image_usd=settings.price_per_image_usd,
            webhook_set=settings.webhook_url is not None,
        ),
        training_id,
    )
    if after is not None:
        with services.ops_engine.begin() as conn:
            queue_review(conn, training_id, after_seconds=after)


@blueprint.task(
    name=TaskName.SEND_ALERT.value,
    queue=Queue.MAINTENANCE.value,
    priority=Priority.WATCH,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def alert(context: JobContext, training_id: str, queued_at: str) -> None:
    """One attempt at a worse or broken retrain's alert (``core.watch.alerts``); when the
    webhook could not take it yet, the next attempt is queued after the wait."""
    services = services_of(context)
    since = datetime.fromisoformat(queued_at)
    wait = alerts.send_alert(
        ops_engine=services.ops_engine,
        app_engine=services.app_engine,
        settings=watch_settings_of(context),
        training_id=training_id,
        queued_at=since,
    )
    if wait is not None:
        with services.ops_engine.begin() as conn:
            alerts.defer_alert(conn, training_id, queued_at=since, after_seconds=wait)
