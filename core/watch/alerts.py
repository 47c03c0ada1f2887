"""The alert of a retrain judged worse or broken: one message to ALERT_WEBHOOK_URL (a
Slack-compatible incoming webhook) with the user's email, what is wrong in one sentence
and a link to their User page, sent by a job (``watch.alert``), never twice.

Its states are ``ops.retrain_reviews.alert_status``; who moves each, and what the
maintenance job does when that one dies:

    none    -> queued   ``queue_alert``, in the review's transaction (worse or broken
                        only), with the job that sends it
    none    -> off      ``queue_alert`` when no ALERT_WEBHOOK_URL is set
    queued  -> sending  the job's claim, committed before the POST
    sending -> sent     the webhook answered 2xx
    sending -> queued   unreachable, 429 or 5xx: again after a wait (``retry_in``), as long
                        as ALERT_DEADLINE_SECONDS allows
    sending -> failed   past that deadline, or refused (another 4xx, a redirect)
    sending -> unknown  sent, and no answer came back
    sending -> unknown  maintenance: a claim older than RECOVERY_SECONDS (its sender died)
    queued  (no job)    maintenance queues its job again

Incoming webhooks take no idempotency key: a second POST is a second message. So a
message that may have arrived is never sent again: ``unknown`` is as final as ``sent``.
Every sent, failed and unknown is audited (``watch:alert``) in the transaction that
records it. The webhook's URL is its credential: it is never stored, logged or shown.
The message and the POST itself are ``core.watch.webhook``'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Connection, Engine, func, select, update

from core import audit
from core.jobs.app import Priority, Queue, TaskName, defer
from core.jobs.status import held_keys_by_jobs
from core.ledger.reviews import Verdict, retrain_reviews
from core.links import user_page_link
from core.users import emails_of
from core.watch.decisions import WATCH_ACTOR
from core.watch.settings import WatchSettings
from core.watch.webhook import (
    Delivery,
    Outcome,
    alert_payload,
    alert_text,
    deliver,
    webhook_request,
)

__all__ = [
    "alert_payload",
    "alert_text",
    "queue_alert",
    "resume_alerts",
    "retry_in",
    "send_alert",
    "user_page_link",
]

log = logging.getLogger(__name__)

ALERT_ACTION = "watch:alert"
ALERTING_VERDICTS = tuple(verdict.value for verdict in Verdict if verdict.alerts)
# Waits between attempts: a blip first, then longer; the last repeats until the deadline.
BACKOFF_SECONDS = (1.0, 5.0, 15.0, 45.0, 120.0)


def retry_in(
    attempt: int, *, elapsed_seconds: float, deadline_seconds: float, at_least: float = 0.0
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1`` (1, 5, 15, 45, then 120; at least
    ``at_least``, a 429's Retry-After), or None when it would start past the deadline
    (``elapsed_seconds`` since the alert was queued)."""
    wait = max(BACKOFF_SECONDS[min(max(attempt, 1), len(BACKOFF_SECONDS)) - 1], at_least)
    if elapsed_seconds + wait > deadline_seconds:
        return None
    return wait


# --- queueing (the review's transaction) ----------------------------------------------


def queue_alert(conn: Connection, training_id: str, *, webhook_set: bool) -> str:
    """In the caller's transaction (the one that writes the review's verdict): the alert
    of a worse or broken review queued with its job, or ``off`` when no webhook is set.
    Only from ``none``: called again, or for another verdict, nothing changes. The alert
    status the review has now."""
    table = retrain_reviews
    to = "queued" if webhook_set else "off"
    queued_at = conn.execute(
        update(table)
        .where(
            table.c.training_id == training_id,
            table.c.alert_status == "none",
            table.c.verdict.in_(ALERTING_VERDICTS),
        )
        .values(alert_status=to)
        .returning(func.now())
    ).scalar_one_or_none()
    if queued_at is None:
        status = conn.execute(
            select(table.c.alert_status).where(table.c.training_id == training_id)
        ).scalar_one_or_none()
        if status is None:
            raise ValueError(f"No retrain review of training {training_id!r} to alert about.")
        return str(status)
    if webhook_set:
        defer_alert(conn, training_id, queued_at=queued_at)
    return to


def defer_alert(
    conn: Connection, training_id: str, *, queued_at: datetime, after_seconds: float | None = None
) -> int | None:
    """Queue the job that sends ``training_id``'s alert (one waiting per alert).
    ``queued_at`` travels with it: the deadline counts from there."""
    return defer(
        conn,
        TaskName.SEND_ALERT,
        queue=Queue.MAINTENANCE,
        queueing_lock=f"alert:{training_id}",
        schedule_in_seconds=after_seconds,
        priority=Priority.WATCH,
        training_id=training_id,
        queued_at=queued_at.isoformat(),
    )


# --- sending (the job) ----------------------------------------------------------------


@dataclass(frozen=True)
class PendingAlert:
    training_id: str
    user_id: str
    verdict: str | None
    sentence: str | None
    status: str
    attempts: int


def read_alert(conn: Connection, training_id: str) -> PendingAlert | None:
    table = retrain_reviews
    row = conn.execute(
        select(
            table.c.training_id,
            table.c.user_id,
            table.c.verdict,
            table.c.sentence,
            table.c.alert_status,
            table.c.alert_attempts,
        ).where(table.c.training_id == training_id)
    ).one_or_none()
    if row is None:
        return None
    return PendingAlert(*row)


def send_alert(
    *,
    ops_engine: Engine,
    app_engine: Engine,
    settings: WatchSettings,
    training_id: str,
    queued_at: datetime,
) -> float | None:
    """One attempt at ``training_id``'s alert: everything the message needs read first,
    then the claim committed, then the POST with no connection held, then its outcome
    recorded (and audited). Seconds until the next attempt, or None (sent, given up,
    unknown, or not this job's to send)."""
    with ops_engine.connect() as conn:
        alert = read_alert(conn, training_id)
    if alert is None or alert.status != "queued":
        return None  # sent, given up, or being sent by another job
    webhook = settings.webhook_url
    if webhook is None:
        _give_up(ops_engine, alert, "ALERT_WEBHOOK_URL is not set on the worker")
        return None
    if alert.verdict not in ALERTING_VERDICTS:
        _give_up(ops_engine, alert, f"the review's verdict is now {alert.verdict}")
        return None
    with app_engine.connect() as app_conn:
        email = emails_of(app_conn, [alert.user_id]).get(alert.user_id)
    text = alert_text(
        email=email,
        user_id=alert.user_id,
        verdict=Verdict(alert.verdict),
        sentence=alert.sentence or "",
        link=user_page_link(settings.console_url, alert.user_id),
    )
    try:
        request = webhook_request(webhook, alert_payload(text))
    except httpx.InvalidURL:
        _give_up(ops_engine, alert, "ALERT_WEBHOOK_URL is not a URL httpx can send to")
        return None
    attempt = _claim(ops_engine, alert)
    if attempt is None:
        return None  # another job claimed it first
    delivery = deliver(request, url=webhook.get_secret_value())
    with ops_engine.begin() as conn:
        return record_delivery(
            conn,
            alert,
            attempt,
            delivery,
            queued_at=queued_at,
            deadline_seconds=settings.alert_deadline_seconds,
            message=text,
        )


def _claim(ops_engine: Engine, alert: PendingAlert) -> int | None:
    """queued -> sending, committed before anything is sent: the attempt's number, or
    None when another job moved the alert first (compare-and-set on status and count)."""
    table = retrain_reviews
    with ops_engine.begin() as conn:
        attempt: int | None = conn.execute(
            update(table)
            .where(
                table.c.training_id == alert.training_id,
                table.c.alert_status == "queued",
                table.c.alert_attempts == alert.attempts,
            )
            .values(
                alert_status="sending",
                alert_attempts=table.c.alert_attempts + 1,
                alert_claimed_at=func.now(),
            )
            .returning(table.c.alert_attempts)
        ).scalar_one_or_none()
    return attempt


def record_delivery(
    conn: Connection,
    alert: PendingAlert,
    attempt: int,
    delivery: Delivery,
    *,
    queued_at: datetime,
    deadline_seconds: float,
    message: str,
) -> float | None:
    """Record what attempt ``attempt`` came to, from ``sending`` by this claim (and
    audit it); the seconds until the next attempt when there is to be one."""
    table = retrain_reviews
    now: datetime = conn.execute(select(func.clock_timestamp())).scalar_one()
    mine = (table.c.training_id == alert.training_id) & (table.c.alert_attempts == attempt)
    if delivery.outcome is Outcome.SENT:
        # Also from unknown: a maintenance job that took this claim for dead was wrong,
        # and now it is known the message arrived.
        moved = conn.execute(
            update(table)
            .where(mine, table.c.alert_status.in_(("sending", "unknown")))
            .values(alert_status="sent", alert_sent_at=now, alert_error=None)
        ).rowcount
        if moved:
            _audit(conn, alert, "sent", attempts=attempt, message=message)
        return None
    elapsed = (now - queued_at).total_seconds()
    if delivery.outcome is Outcome.RETRY:
        wait = retry_in(
            attempt,
            elapsed_seconds=elapsed,
            deadline_seconds=deadline_seconds,
            at_least=delivery.retry_after,
        )
        if wait is not None:
            moved = conn.execute(
                update(table)
                .where(mine, table.c.alert_status == "sending")
                .values(
                    alert_status="queued",
                    alert_error=f"attempt {attempt}: {delivery.reason}; again in {wait:g} s",
                )
            ).rowcount
            return wait if moved else None
        status, error = (
            "failed",
            (
                f"not sent: {delivery.reason}; gave up after {attempt} attempts in "
                f"{elapsed:.0f} s (ALERT_DEADLINE_SECONDS {deadline_seconds:g})"
            ),
        )
    elif delivery.outcome is Outcome.UNKNOWN:
        status, error = "unknown", f"may have been sent: {delivery.reason}; not sent again"
    else:
        status, error = "failed", f"not sent: {delivery.reason}"
    moved = conn.execute(
        update(table)
        .where(mine, table.c.alert_status == "sending")
        .values(alert_status=status, alert_error=error)
    ).rowcount
    if moved:
        _audit(conn, alert, status, attempts=attempt, reason=error)
    return None


def _give_up(ops_engine: Engine, alert: PendingAlert, why: str) -> None:
    """queued -> failed without an attempt: nothing was sent."""
    table = retrain_reviews
    error = f"not sent: {why}"
    with ops_engine.begin() as conn:
        moved = conn.execute(
            update(table)
            .where(
                table.c.training_id == alert.training_id,
                table.c.alert_status == "queued",
                table.c.alert_attempts == alert.attempts,
            )
            .values(alert_status="failed", alert_error=error)
        ).rowcount
        if moved:
            _audit(conn, alert, "failed", attempts=alert.attempts, reason=error)


def _audit(
    conn: Connection,
    alert: PendingAlert,
    event: str,
    *,
    attempts: int,
    reason: str | None = None,
    message: str | None = None,
) -> None:
    """One ``watch:alert`` record: what became of the alert, and what was sent (never
    the webhook's address)."""
    audit.record(
        conn,
        actor_email=WATCH_ACTOR.email,
        actor_role=WATCH_ACTOR.role,
        action=ALERT_ACTION,
        target_user_id=alert.user_id,
        reason=reason,
        details={
            "event": event,
            "training_id": alert.training_id,
            "verdict": alert.verdict,
            "attempts": attempts,
            "message": message,
        },
    )


# --- recovery (the maintenance job) ---------------------------------------------------


def resume_alerts(conn: Connection, *, recovery: timedelta) -> list[str]:
    """In the maintenance job's transaction: an alert claimed longer ago than
    ``recovery`` whose sender never recorded an outcome becomes ``unknown`` (its sender
    died, maybe after the POST: it is never sent again; audited), and every queued alert
    no waiting or running job holds gets its job again, its deadline counted from its
    last attempt. The alerts queued again, for the log."""
    table = retrain_reviews
    lapsed = conn.execute(
        update(table)
        .where(table.c.alert_status == "sending", table.c.alert_claimed_at < func.now() - recovery)
        .values(
            alert_status="unknown",
            alert_error=(
                "may have been sent: its sender stopped after claiming it and recorded "
                "nothing within RECOVERY_SECONDS; not sent again"
            ),
        )
        .returning(
            table.c.training_id,
            table.c.user_id,
            table.c.verdict,
            table.c.sentence,
            table.c.alert_status,
            table.c.alert_attempts,
            table.c.alert_error,
        )
    ).all()
    for row in lapsed:
        alert = PendingAlert(*row[:6])
        _audit(conn, alert, "unknown", attempts=alert.attempts, reason=row.alert_error)
        log.warning("alert of training %s: its sender died after claiming it", alert.training_id)
    held = held_keys_by_jobs(conn, [TaskName.SEND_ALERT.value], "training_id")
    waiting = conn.execute(
        select(table.c.training_id, func.coalesce(table.c.alert_claimed_at, func.now())).where(
            table.c.alert_status == "queued"
        )
    ).all()
    resumed = []
    for training_id, since in waiting:
        if training_id not in held:
            defer_alert(conn, training_id, queued_at=since)
            resumed.append(f"alert of training {training_id}")
    return resumed
