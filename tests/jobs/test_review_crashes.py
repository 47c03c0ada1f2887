"""A retrain review survives a worker SIGKILLed at each of its steps, and a crowd of
duplicate runs: whatever happens, one comparison is asked for (its predictions created
once each), one verdict, one audit record, one user check, one alert.

The points: the review's first step reading the new dataset's photos (held open by a
latency fault on the blob store), and its comparison running (the review waiting on
it). The crowd: the review's step run by six threads of this process at once, beside a
worker running it too.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from core.compare.tables import comparison_images, comparisons
from core.imaging.faces import FaceReaders
from core.jobs.context import JobServices
from core.scan.tables import scans
from core.schema import audit_log
from core.watch.decisions import WATCH_ACTOR
from core.watch.review import ReviewSettings, advance_review
from tests.conftest import quick_gateway
from tests.crashes import RECOVERY_SECONDS, counts, faults, job_running, kill, watch
from tests.jobs.app_side import (
    app_trains,
    review_done,
    review_of,
    start_watching,
    upload_zip,
    write_row,
)
from tests.jobs.conftest import World
from tests.photos import selfie_zip
from tests.waits import until_ended, wait_for
from tests.watch.receiver import Receiver, receiver
from tests.workers import Workers

__all__ = ["receiver"]  # the fixture

pytestmark = pytest.mark.timeout(480)

REVIEW_TASK = "watch.review"


def _bad_retrain(world: World, user_id: str) -> str:
    """An app-style bad retrain of ``user_id`` (two squeezed photos, the row left stale),
    ended; its training id."""
    gateway = quick_gateway(world.sandbox_url)
    try:
        squeezed = upload_zip(
            world, user_id, "retrain.zip", selfie_zip(2, person=0, first_index=70, long_side=160)
        )
        created = app_trains(world, gateway, user_id, squeezed)
        ended = until_ended(lambda: gateway.get_training(created.id), timeout=60, what="retrain")
        assert ended.status == "succeeded"
    finally:
        gateway.close()
    write_row(world, user_id, training_status="completed")
    return created.id


def _one_of_everything(world: World, training_id: str, receiver: Receiver) -> None:
    review = wait_for(lambda: review_done(world, training_id), timeout=240, what="the verdict")
    assert review.verdict == "worse" and review.comparison_id is not None, review.sentence
    with world.engine.connect() as conn:
        asked = conn.execute(
            select(comparisons.c.id, comparisons.c.status).where(
                comparisons.c.requested_by == WATCH_ACTOR.email
            )
        ).all()
        sent = conn.execute(
            select(func.count()).where(
                comparison_images.c.comparison_id == review.comparison_id,
                comparison_images.c.prediction_id.is_not(None),
            )
        ).scalar_one()
        audited = conn.execute(
            select(func.count()).where(audit_log.c.action == "watch:review")
        ).scalar_one()
        checks = conn.execute(
            select(func.count()).where(scans.c.requested_by == WATCH_ACTOR.email)
        ).scalar_one()
    assert [row.id for row in asked] == [review.comparison_id]
    assert asked[0].status == "finished"
    assert counts(world.sandbox_url).get("predictions.create") == sent == 12
    assert audited == 1 and checks == 1
    wait_for(lambda: review_of(world, training_id).alert_status == "sent", timeout=60, what="alert")
    assert len(receiver.delivered()) == 1


def _reading_photos(world: World, training_id: str) -> bool:
    review = review_of(world, training_id)
    return (
        review is not None
        and review.status == "queued"
        and job_running(world.engine, REVIEW_TASK, "training_id", training_id)
    )


def _comparing(world: World, training_id: str) -> bool:
    review = review_of(world, training_id)
    return review is not None and review.status == "comparing"


def _kill_at(
    world: World, workers: Workers, receiver: Receiver, user_id: str, reached: Any, **rules: Any
) -> str:
    gateway = quick_gateway(world.sandbox_url)
    try:
        start_watching(world, workers, gateway, ALERT_WEBHOOK_URL=receiver.url)
    finally:
        gateway.close()
    doomed = workers.started[-1][0]  # the worker that watches, and reviews, until killed
    training_id = _bad_retrain(world, user_id)
    with faults(world.sandbox_url, *rules.get("faults", ())):
        watch(lambda: reached(world, training_id), what="the review at its step", timeout=180)
        kill(doomed)
    workers.start(
        concurrency=4,
        queues=(),
        WATCH_INTERVAL_SECONDS="10",
        RECOVERY_SECONDS=RECOVERY_SECONDS,
        ALERT_WEBHOOK_URL=receiver.url,
    )
    return training_id


def test_a_worker_killed_while_the_review_reads_the_photos_leaves_one_of_everything(
    world: World, workers: Workers, receiver: Receiver
) -> None:
    user_id = world.users.user_ids[1]
    training_id = _kill_at(
        world,
        workers,
        receiver,
        user_id,
        _reading_photos,
        faults=({"latency_ms": 15000, "path": r"^/_blob/", "methods": ["GET"]},),
    )
    _one_of_everything(world, training_id, receiver)


def test_a_worker_killed_while_the_review_s_comparison_runs_leaves_one_of_everything(
    world: World, workers: Workers, receiver: Receiver
) -> None:
    user_id = world.users.user_ids[2]
    training_id = _kill_at(world, workers, receiver, user_id, _comparing)
    _one_of_everything(world, training_id, receiver)


def test_a_crowd_of_runs_of_one_review_asks_for_one_comparison_and_judges_once(
    world: World, workers: Workers, receiver: Receiver
) -> None:
    user_id = world.users.user_ids[3]
    gateway = quick_gateway(world.sandbox_url)
    start_watching(world, workers, gateway, ALERT_WEBHOOK_URL=receiver.url)
    training_id = _bad_retrain(world, user_id)
    wait_for(lambda: review_of(world, training_id), timeout=60, what="the review queued")
    services = JobServices(world.engine, world.engine, gateway, FaceReaders())
    settings = ReviewSettings(daily_budget_usd=2.0, price_per_image_usd=0.03, webhook_set=True)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(200):  # each run takes one step; the crowd keeps stepping
                if advance_review(services, settings, training_id) is None:
                    return
                threading.Event().wait(1.0)
        except BaseException as exc:  # reported below
            errors.append(exc)

    crowd = [threading.Thread(target=run) for _ in range(6)]
    for thread in crowd:
        thread.start()
    for thread in crowd:
        thread.join(timeout=300)
    gateway.close()
    assert errors == []
    _one_of_everything(world, training_id, receiver)
