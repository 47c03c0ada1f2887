"""Alerts of worse or broken retrains: the message (escaped for Slack, the User page's
link, no secret), the retry schedule, how one POST ends, and the whole path in a real
worker against a loopback webhook: one message per retrain, retried while the webhook is
down or failing, given up past the deadline, and never sent twice, not even after its
sender died."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Connection, Engine, func, insert, select, text, update

from core import audit
from core.audit import AuditRecord
from core.audit_words import record_words
from core.jobs.app import Queue, TaskName, defer
from core.ledger.reviews import Verdict, retrain_reviews
from core.links import user_page_link
from core.watch.alerts import (
    ALERT_ACTION,
    alert_payload,
    alert_text,
    queue_alert,
    retry_in,
)
from core.watch.decisions import WATCH_ACTOR
from core.watch.webhook import (
    Outcome,
    answered,
    deliver,
    not_answered,
    slack_escaped,
    webhook_request,
)
from tests.jobs.conftest import World
from tests.waits import wait_for
from tests.watch.receiver import Answer, Receiver
from tests.workers import Workers

CONSOLE = "https://console.example.test"
SENTENCE = (
    "The new version is further from the user's photos than the old one beyond the noise "
    "(0.41 -> 0.58)."
)

# --- the message ---------------------------------------------------------------------


def test_the_message_names_the_user_says_what_is_wrong_and_links_to_their_page() -> None:
    link = user_page_link(CONSOLE + "/", "u-1")
    said = alert_text(
        email="ada@example.test", user_id="u-1", verdict=Verdict.WORSE, sentence=SENTENCE,
        link=link,
    )  # fmt: skip
    assert link == "https://console.example.test/user?user=u-1"
    assert said == (
        "*Worse retrain* for ada@example.test: The new version is further from the user's "
        "photos than the old one beyond the noise (0.41 -&gt; 0.58).\n"
        "<https://console.example.test/user?user=u-1|Open in the console>"
    )
    assert alert_payload(said) == {"text": said}
    nobody = alert_text(email=None, user_id="u-2", verdict=Verdict.BROKEN, sentence="", link=link)
    assert nobody.startswith("*Broken retrain* for user u-2: The review gave no sentence.")


def test_data_cannot_ping_a_channel_plant_a_link_or_leak_a_signed_url() -> None:
    hostile = "<!channel> see <https://evil.example|here> & https://b.example/z?X-Amz-Signature=abc"
    said = alert_text(
        email="<@U123>&co@example.test", user_id="u", verdict=Verdict.WORSE,
        sentence=hostile + "\n\n  second line", link=user_page_link(CONSOLE, "a b/c?d&e|f>g"),
    )  # fmt: skip
    message, link_line = said.split("\n")
    assert "<" not in message and ">" not in message  # no control sequence survives
    assert "&lt;!channel&gt;" in message and "&lt;@U123&gt;&amp;co@example.test" in message
    assert "abc" not in said and "X-Amz-Signature=[redacted]" in message
    assert "second line" in message  # one line
    # The id is quoted: nothing in it can end the link or add a parameter.
    assert link_line == (
        "<https://console.example.test/user?user=a%20b%2Fc%3Fd%26e%7Cf%3Eg|Open in the console>"
    )
    assert slack_escaped("a&b<c>d") == "a&amp;b&lt;c&gt;d"
    long = alert_text(
        email="e@x.test", user_id="u", verdict=Verdict.WORSE, sentence="word " * 400, link=CONSOLE
    )
    assert len(long) < 700 and "…" in long


# --- the retry schedule --------------------------------------------------------------


def test_attempts_wait_longer_each_time_and_stop_at_the_deadline() -> None:
    waits, elapsed, attempt = [], 0.0, 1
    while (wait := retry_in(attempt, elapsed_seconds=elapsed, deadline_seconds=900)) is not None:
        waits.append(wait)
        elapsed += wait
        attempt += 1
    assert waits[:6] == [1.0, 5.0, 15.0, 45.0, 120.0, 120.0]
    assert sum(waits) <= 900 < sum(waits) + 120
    assert retry_in(1, elapsed_seconds=0, deadline_seconds=0.5) is None
    assert retry_in(2, elapsed_seconds=0, deadline_seconds=900, at_least=30) == 30.0
    assert retry_in(1, elapsed_seconds=0, deadline_seconds=900, at_least=1000) is None


# --- how one POST ends ---------------------------------------------------------------


def test_answers_and_errors_are_sorted_by_whether_the_message_may_have_arrived() -> None:
    assert answered(200, "ok").outcome is Outcome.SENT
    assert answered(204).outcome is Outcome.SENT
    limited = answered(429, "rate_limited", "30")
    assert (limited.outcome, limited.retry_after) == (Outcome.RETRY, 30.0)
    assert answered(429, "", "Wed, 21 Oct 2015 07:28:00 GMT").retry_after == 0.0
    assert answered(429, "", "inf").retry_after == 0.0
    assert answered(503, "<html>busy</html>").outcome is Outcome.RETRY
    refused = answered(404, "no_service")
    assert refused.outcome is Outcome.FAILED and refused.reason.endswith("404 (no_service)")
    assert "<html>" not in answered(400, "<html>x</html>").reason
    assert answered(301).outcome is Outcome.FAILED
    url = "https://hooks.example/services/T1/B1/s3cr3tTOKEN"
    request = httpx.Request("POST", url)
    for error, outcome in (
        (httpx.ConnectError("[Errno 111] Connection refused", request=request), Outcome.RETRY),
        (httpx.ConnectTimeout("timed out", request=request), Outcome.RETRY),
        (httpx.WriteTimeout("timed out", request=request), Outcome.RETRY),
        (httpx.ReadTimeout("timed out", request=request), Outcome.UNKNOWN),
        (httpx.ReadError("reset", request=request), Outcome.UNKNOWN),
        (httpx.RemoteProtocolError("Server disconnected", request=request), Outcome.UNKNOWN),
        (httpx.LocalProtocolError("bad header", request=request), Outcome.FAILED),
    ):
        assert not_answered(error, url=url).outcome is outcome, error
    leaky = httpx.ConnectError(f"cannot reach {url} (/services/T1/B1/s3cr3tTOKEN)")
    assert "s3cr3tTOKEN" not in not_answered(leaky, url=url).reason


def _request(receiver: Receiver, *, read_timeout: float | None = None) -> httpx.Request:
    request = webhook_request(SecretStr(receiver.url), alert_payload("*Worse retrain* for x"))
    if read_timeout is not None:
        timeout = httpx.Timeout(5.0, read=read_timeout)
        request.extensions["timeout"] = timeout.as_dict()
    return request


@pytest.mark.timeout(30)
def test_one_post_to_a_real_webhook_ends_as_its_answer_says_and_logs_no_secret(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore as talkative as they get
    assert deliver(_request(receiver), url=receiver.url).outcome is Outcome.SENT
    (got,) = receiver.received()
    assert got.path == receiver.path and got.payload == {"text": "*Worse retrain* for x"}
    receiver.answer(500, 404)
    assert deliver(_request(receiver), url=receiver.url).outcome is Outcome.RETRY
    refused = deliver(_request(receiver), url=receiver.url)
    assert (refused.outcome, refused.reason) == (
        Outcome.FAILED,
        "the webhook refused the message: 404 (no_service)",
    )
    # Answered too late: the message arrived, so it may have been posted.
    receiver.answer(Answer(200, delay_seconds=1.5))
    late = deliver(_request(receiver, read_timeout=0.3), url=receiver.url)
    assert late.outcome is Outcome.UNKNOWN and "ReadTimeout" in late.reason
    assert len(receiver.received()) == 4
    receiver.down()
    down = deliver(_request(receiver), url=receiver.url)
    assert down.outcome is Outcome.RETRY and "ConnectError" in down.reason
    assert len(receiver.received()) == 4
    receiver.up()
    assert deliver(_request(receiver), url=receiver.url).outcome is Outcome.SENT
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "127.0.0.1" in logged  # httpcore's traces did run
    assert receiver.token not in logged


# --- queueing, in the review's transaction -------------------------------------------


def _review(world: World, *, verdict: str | None = "worse", **alert: object) -> str:
    """A done review of a training of the world's second user, committed."""
    training_id = f"alert{uuid.uuid4().hex[:20]}"
    with world.engine.begin() as conn:
        conn.execute(
            insert(retrain_reviews).values(
                training_id=training_id,
                user_id=world.users.user_ids[1],
                training_status="succeeded",
                status="done",
                verdict=verdict,
                sentence=SENTENCE,
                reviewed_at=func.now(),
                **alert,
            )
        )
    return training_id


def _alert(world: World, training_id: str) -> dict[str, object]:
    with world.engine.connect() as conn:
        row = conn.execute(
            select(retrain_reviews).where(retrain_reviews.c.training_id == training_id)
        ).one()
    return dict(row._mapping)


def _alert_jobs(conn: Connection) -> list[dict[str, object]]:
    rows = conn.execute(
        text("SELECT args, queueing_lock, status FROM ops.procrastinate_jobs WHERE task_name = :t"),
        {"t": TaskName.SEND_ALERT.value},
    )
    return [dict(row._mapping) for row in rows]


def _records(world: World) -> list[AuditRecord]:
    with world.engine.connect() as conn:
        return audit.list_records(conn, action=ALERT_ACTION)


def test_a_worse_review_queues_one_alert_with_its_job_and_nothing_else_does(
    world: World,
) -> None:
    worse = _review(world)
    with world.engine.begin() as conn:
        assert queue_alert(conn, worse, webhook_set=True) == "queued"
        assert queue_alert(conn, worse, webhook_set=True) == "queued"  # changes nothing
        (job,) = _alert_jobs(conn)
    assert job["queueing_lock"] == f"alert:{worse}" and job["status"] == "todo"
    assert isinstance(job["args"], dict) and job["args"]["training_id"] == worse

    rolled_back = _review(world, verdict="broken")
    with world.engine.connect() as conn, conn.begin() as transaction:
        assert queue_alert(conn, rolled_back, webhook_set=True) == "queued"
        transaction.rollback()  # the review's transaction failed: no alert, no job
    assert _alert(world, rolled_back)["alert_status"] == "none"

    off, better, unreviewed = (
        _review(world),
        _review(world, verdict="better"),
        _review(world, verdict=None),
    )
    with world.engine.begin() as conn:
        assert queue_alert(conn, off, webhook_set=False) == "off"
        assert queue_alert(conn, off, webhook_set=True) == "off"  # only from none
        assert queue_alert(conn, better, webhook_set=True) == "none"
        assert queue_alert(conn, unreviewed, webhook_set=True) == "none"
        assert len(_alert_jobs(conn)) == 1
        with pytest.raises(ValueError, match="No retrain review"):
            queue_alert(conn, "no-such-training", webhook_set=True)


# --- in a real worker ----------------------------------------------------------------


def _worker_alive(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM ops.procrastinate_workers")).scalar())


def _start(workers: Workers, world: World, receiver: Receiver, **env: Any) -> None:
    """A worker on the maintenance queue aimed at ``receiver``, ready before returning
    (an alert's deadline runs from its queueing, not from the worker's start)."""
    workers.start(
        queues=("maintenance",), CONSOLE_BASE_URL=CONSOLE, ALERT_WEBHOOK_URL=receiver.url, **env
    )
    wait_for(lambda: _worker_alive(world.engine), timeout=60, what="the worker to start")


def _queue(world: World, training_id: str) -> None:
    with world.engine.begin() as conn:
        assert queue_alert(conn, training_id, webhook_set=True) == "queued"


def _ended(world: World, training_id: str) -> dict[str, object]:
    def ended() -> dict[str, object] | None:
        alert = _alert(world, training_id)
        return None if alert["alert_status"] in ("queued", "sending") else alert

    found: dict[str, object] = wait_for(
        ended, timeout=60, what=f"the alert of {training_id} to end"
    )
    return found


def _no_secret_in(workers: Workers, receiver: Receiver) -> None:
    logs = workers.full_logs()
    assert "watch.alert" in logs  # the worker did log its jobs
    assert receiver.token not in logs and receiver.path not in logs


@pytest.mark.timeout(120)
def test_a_worse_retrain_sends_one_message_with_the_email_the_sentence_and_the_link(
    world: World, workers: Workers, receiver: Receiver
) -> None:
    user_id = world.users.user_ids[1]
    training_id = _review(world)
    _start(workers, world, receiver)
    _queue(world, training_id)
    alert = _ended(world, training_id)
    assert alert["alert_status"] == "sent", alert
    assert alert["alert_attempts"] == 1 and alert["alert_sent_at"] is not None
    assert alert["alert_error"] is None
    (message,) = receiver.received()
    assert message.path == receiver.path
    assert message.text == (
        "*Worse retrain* for jobs1@example.test: " + SENTENCE.replace(">", "&gt;") + "\n"
        f"<{CONSOLE}/user?user={user_id}|Open in the console>"
    )
    assert receiver.token not in message.text and "T0ALERTS" not in message.text
    (record,) = _records(world)
    assert (record.actor_email, record.actor_role) == (WATCH_ACTOR.email, "admin")
    assert record.target_user_id == user_id
    assert record.details == {
        "event": "sent",
        "training_id": training_id,
        "verdict": "worse",
        "attempts": 1,
        "message": message.text,
    }
    assert record_words(record.action, record.details).startswith("Alerted the team")
    _no_secret_in(workers, receiver)


@pytest.mark.timeout(120)
def test_two_jobs_for_one_alert_send_one_message(
    world: World, workers: Workers, receiver: Receiver
) -> None:
    training_ids = [_review(world) for _ in range(3)]
    with world.engine.begin() as conn:
        for training_id in training_ids:
            assert queue_alert(conn, training_id, webhook_set=True) == "queued"
            (args,) = [
                job["args"]
                for job in _alert_jobs(conn)
                if isinstance(job["args"], dict) and job["args"]["training_id"] == training_id
            ]
            # A second job of the same alert, past the queueing lock: both run at once.
            defer(
                conn, TaskName.SEND_ALERT, queue=Queue.MAINTENANCE, training_id=training_id,
                queued_at=args["queued_at"],
            )  # fmt: skip
    workers.start(queues=("maintenance",), concurrency=4, ALERT_WEBHOOK_URL=receiver.url)
    for training_id in training_ids:
        assert _ended(world, training_id)["alert_status"] == "sent"
    with world.engine.connect() as conn:
        done = conn.execute(
            text(
                "SELECT count(*) FROM ops.procrastinate_jobs"
                " WHERE task_name = :t AND status = 'succeeded'"
            ),
            {"t": TaskName.SEND_ALERT.value},
        ).scalar()
    assert done == 6  # every job ran
    assert len(receiver.received()) == 3  # one message each
    assert [record.details["event"] for record in _records(world) if record.details] == ["sent"] * 3


@pytest.mark.timeout(120)
def test_a_failing_webhook_is_tried_again_and_the_message_sent_once(
    world: World, workers: Workers, receiver: Receiver
) -> None:
    training_id = _review(world)
    receiver.answer(500, Answer(429, retry_after="1"))
    _start(workers, world, receiver, ALERT_DEADLINE_SECONDS="60")
    _queue(world, training_id)
    alert = _ended(world, training_id)
    assert alert["alert_status"] == "sent" and alert["alert_attempts"] == 3, alert
    assert [message.status for message in receiver.received()] == [500, 429, 200]
    assert len(receiver.delivered()) == 1
    assert len({message.body for message in receiver.received()}) == 1  # the same message
    (record,) = _records(world)
    assert record.details is not None and record.details["attempts"] == 3
    _no_secret_in(workers, receiver)


@pytest.mark.timeout(120)
def test_a_webhook_that_stays_down_is_retried_then_recorded_as_not_sent(
    world: World, workers: Workers, receiver: Receiver
) -> None:
    training_id = _review(world)
    receiver.down()
    _start(workers, world, receiver, ALERT_DEADLINE_SECONDS="4")
    _queue(world, training_id)
    alert = _ended(world, training_id)
    assert alert["alert_status"] == "failed", alert
    assert isinstance(alert["alert_attempts"], int) and alert["alert_attempts"] > 1
    error = str(alert["alert_error"])
    assert error.startswith("not sent: the webhook could not be reached (ConnectError")
    assert "gave up after" in error and "ALERT_DEADLINE_SECONDS 4" in error
    assert receiver.received() == []
    (record,) = _records(world)
    assert record.details is not None and record.details["event"] == "failed"
    assert record.reason == error and receiver.token not in str(record.details)
    _no_secret_in(workers, receiver)


@pytest.mark.timeout(120)
def test_a_sender_that_died_after_claiming_is_never_sent_again(
    world: World, workers: Workers, receiver: Receiver
) -> None:
    # Claimed an hour ago and never recorded: its sender died, maybe after the POST.
    claimed = _review(world, alert_status="sending", alert_attempts=1)
    # Queued, but its job is gone (the queue was cleared, a job failed for good).
    orphan = _review(world, alert_status="queued")
    with world.engine.begin() as conn:
        conn.execute(
            update(retrain_reviews)
            .where(retrain_reviews.c.training_id == claimed)
            .values(alert_claimed_at=func.now() - text("interval '1 hour'"))
        )
    _start(workers, world, receiver, RECOVERY_SECONDS="4")
    assert _ended(world, orphan)["alert_status"] == "sent"
    alert = _ended(world, claimed)
    assert alert["alert_status"] == "unknown" and alert["alert_attempts"] == 1, alert
    assert "may have been sent" in str(alert["alert_error"])
    assert len(receiver.received()) == 1  # the orphan's only
    by_event = {
        record.details["event"]: record.details["training_id"]
        for record in _records(world)
        if record.details
    }
    assert by_event == {"sent": orphan, "unknown": claimed}
    with world.engine.connect() as conn:
        assert all(job["args"]["training_id"] == orphan for job in _alert_jobs(conn))  # type: ignore[index]
