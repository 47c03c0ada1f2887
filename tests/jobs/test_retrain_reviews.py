"""Retrain reviews in real workers, on the sandbox: every training a user's model gets
after the watch began is judged once, with its row, its dataset and (for a new version)
an automatic comparison within the watch's budget; a worse or broken retrain alerts once.

The app's side is played here the way the app plays it (app-facts.md): the training is
created with the app's input, and the app's row written at its end, with or without the
app's bugs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from core.compare.tables import comparisons
from core.gateway.gateway import ReplicateGateway
from core.scan.store import latest_findings
from core.schema import audit_log
from tests.conftest import quick_gateway
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

pytestmark = pytest.mark.timeout(420)

REVIEW_SECONDS = 240


@pytest.fixture
def gateway(world: World) -> Iterator[ReplicateGateway]:
    found = quick_gateway(world.sandbox_url)
    yield found
    found.close()


def _audited(world: World, action: str) -> list[dict[str, Any]]:
    with world.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.details).where(audit_log.c.action == action).order_by(audit_log.c.id)
        )
        return [dict(row.details) for row in rows]


def test_a_bad_app_retrain_is_judged_worse_once_with_its_comparison_and_one_alert(
    world: World, workers: Workers, gateway: ReplicateGateway, receiver: Receiver
) -> None:
    user_id = world.users.user_ids[1]  # generates with its latest version: healthy rows
    start_watching(world, workers, gateway, ALERT_WEBHOOK_URL=receiver.url)
    # The app's bugs: two new photos only, squeezed to 160 px; the row left stale.
    squeezed = upload_zip(
        world, user_id, "retrain.zip", selfie_zip(2, person=0, first_index=90, long_side=160)
    )
    created = app_trains(world, gateway, user_id, squeezed)
    ended = until_ended(lambda: gateway.get_training(created.id), timeout=60, what="the retrain")
    assert ended.status == "succeeded"
    write_row(world, user_id, training_status="completed")  # the version is not stored

    review = wait_for(
        lambda: review_done(world, created.id), timeout=REVIEW_SECONDS, what="the review's verdict"
    )
    assert review.verdict == "worse", (review.sentence, workers.logs())
    assert review.comparison_id is not None and review.new_version == ended.version_hash
    assert review.photos_after == 2 and review.photos_before == 5
    assert "STALE_VERSION" in review.codes and "DATASET_SHRANK" in review.codes
    with world.engine.connect() as conn:
        finished = conn.execute(
            select(comparisons.c.status).where(comparisons.c.id == review.comparison_id)
        ).scalar_one()
        findings = latest_findings(conn, [user_id])[user_id]
    assert finished == "finished"
    regressed = [finding for finding in findings if finding.code == "RETRAIN_REGRESSED"]
    assert len(regressed) == 1 and regressed[0].evidence["comparison_id"] == review.comparison_id

    wait_for(lambda: review_of(world, created.id).alert_status == "sent", timeout=60, what="alert")
    assert len(receiver.delivered()) == 1
    text = receiver.delivered()[0].text
    assert "jobs1@example.test" in text and user_id in text
    assert [d["training_id"] for d in _audited(world, "watch:review")] == [created.id]


def test_a_good_retrain_is_no_difference_or_better_and_alerts_nothing(
    world: World, workers: Workers, gateway: ReplicateGateway, receiver: Receiver
) -> None:
    user_id = world.users.user_ids[2]
    start_watching(world, workers, gateway, ALERT_WEBHOOK_URL=receiver.url)
    created = app_trains(world, gateway, user_id)  # the same photos again
    ended = until_ended(lambda: gateway.get_training(created.id), timeout=60, what="the retrain")
    assert ended.status == "succeeded"
    write_row(  # the app stores the new version, as it should
        world,
        user_id,
        training_status="completed",
        replicate_version_id=ended.version_hash,
        lora_weights_url=ended.output_weights,
    )
    review = wait_for(
        lambda: review_done(world, created.id), timeout=REVIEW_SECONDS, what="the review's verdict"
    )
    assert review.verdict in ("same", "better"), (review.sentence, review.codes, workers.logs())
    assert review.comparison_id is not None and review.alert_status == "none"
    assert receiver.received() == []


def test_a_failed_retrain_that_wiped_the_version_is_broken_without_a_comparison(
    world: World, workers: Workers, gateway: ReplicateGateway, receiver: Receiver
) -> None:
    user_id = world.users.user_ids[3]
    start_watching(world, workers, gateway, ALERT_WEBHOOK_URL=receiver.url)
    httpx.post(
        f"{world.sandbox_url}/_sandbox/trainings/next", json={"outcome": "fail"}
    ).raise_for_status()
    created = app_trains(world, gateway, user_id)
    ended = until_ended(lambda: gateway.get_training(created.id), timeout=60, what="the retrain")
    assert ended.status == "failed"
    # The app's failure path resets the row: the version it generated with is gone.
    write_row(
        world,
        user_id,
        training_status="failed",
        replicate_version_id=None,
        lora_weights_url=None,
        failure_reason=ended.error,
    )
    review = wait_for(
        lambda: review_done(world, created.id), timeout=REVIEW_SECONDS, what="the review's verdict"
    )
    assert review.verdict == "broken" and "VERSION_LOST" in review.codes, review.sentence
    assert review.comparison_id is None
    wait_for(lambda: len(receiver.delivered()) == 1, timeout=60, what="the alert")


def test_over_the_watch_s_budget_the_review_says_so_and_creates_no_prediction(
    world: World, workers: Workers, gateway: ReplicateGateway
) -> None:
    user_id = world.users.user_ids[4]
    start_watching(world, workers, gateway, WATCH_DAILY_BUDGET_USD="0.05")  # < 10 images
    created = app_trains(world, gateway, user_id)
    ended = until_ended(lambda: gateway.get_training(created.id), timeout=60, what="the retrain")
    write_row(
        world,
        user_id,
        training_status="completed",
        replicate_version_id=ended.version_hash,
        lora_weights_url=ended.output_weights,
    )
    review = wait_for(
        lambda: review_done(world, created.id), timeout=REVIEW_SECONDS, what="the review's verdict"
    )
    assert review.comparison_id is None and review.verdict is None
    assert review.skipped.startswith("Not compared:") and "budget" in review.skipped
    assert review.sentence == review.skipped
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(comparisons)).scalar_one() == 0
