"""The app's side of a retrain, played in the jobs world the way the app plays it
(app-facts.md): a training created with the app's input, the app's row written at its
start and end; and what the watch made of it. Shared by the review tests."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select, update

from core.drift.facts import TrainingRecord
from core.gateway.gateway import ReplicateGateway
from core.gateway.values import Training
from core.ledger.reviews import retrain_reviews
from core.ledger.sync import ledger_for_user, sync_ledger
from core.ledger.tables import ledger_state
from core.schema import user_models
from core.watch.run import SINCE_KEY
from tests.jobs.conftest import World
from tests.waits import wait_for
from tests.workers import Workers


def watch_began(world: World) -> bool:
    with world.engine.connect() as conn:
        found = conn.execute(select(ledger_state.c.value).where(ledger_state.c.key == SINCE_KEY))
        return found.scalar_one_or_none() is not None


def review_of(world: World, training_id: str) -> Any:
    with world.engine.connect() as conn:
        return conn.execute(
            select(retrain_reviews).where(retrain_reviews.c.training_id == training_id)
        ).one_or_none()


def review_done(world: World, training_id: str) -> Any:
    found = review_of(world, training_id)
    return found if found is not None and found.status == "done" else None


def start_watching(world: World, workers: Workers, gateway: ReplicateGateway, **env: str) -> None:
    """The ledger synced once (as a scan does), then a worker on every queue whose watch
    looks every 10 s; returns once its first pass began the watch."""
    sync_ledger(ops_engine=world.engine, app_engine=world.engine, gateway=gateway)
    workers.start(concurrency=4, queues=(), WATCH_INTERVAL_SECONDS="10", **env)
    wait_for(lambda: watch_began(world), timeout=90, what="the watch's first pass")


def last_training(world: World, user_id: str) -> TrainingRecord:
    with world.engine.connect() as conn:
        return ledger_for_user(conn, user_id)[-1]


def app_trains(
    world: World, gateway: ReplicateGateway, user_id: str, zip_url: str | None = None
) -> Training:
    """The app's retrain: the user's last input again (or new photos), into the same
    model; the row marks the training as the app does when it starts one."""
    earlier = last_training(world, user_id)
    assert earlier.destination is not None
    again = gateway.get_training(earlier.id)
    payload = dict(again.input)
    if zip_url is not None:
        payload["input_images"] = zip_url
    created = gateway.create_training(
        earlier.trainer_model, earlier.trainer_version, earlier.destination, payload
    )
    write_row(world, user_id, training_id=created.id, training_status="training")
    return created


def write_row(world: World, user_id: str, **values: Any) -> None:
    with world.engine.begin() as conn:
        conn.execute(update(user_models).where(user_models.c.user_id == user_id).values(**values))


def upload_zip(world: World, user_id: str, name: str, content: bytes) -> str:
    url = f"{world.sandbox_url}/_blob/training/{user_id}/{name}"
    httpx.put(url, content=content, headers={"content-type": "application/zip"}).raise_for_status()
    return url
