"""The watch in a real worker: its periodic tick runs a pass on its own, and a user's
training that ends afterwards gets one queued review."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.ledger.reviews import retrain_reviews
from core.ledger.sync import ledger_for_user, sync_ledger
from tests.conftest import quick_gateway
from tests.jobs.app_side import watch_began
from tests.jobs.conftest import World
from tests.waits import wait_for
from tests.workers import Workers

pytestmark = pytest.mark.timeout(240)


def _reviews(world: World) -> dict[str, tuple[str, str]]:
    with world.engine.connect() as conn:
        rows = conn.execute(select(retrain_reviews))
        return {row.training_id: (row.user_id, row.training_status) for row in rows}


def test_a_worker_s_watch_queues_one_review_when_a_user_s_training_ends(
    world: World, workers: Workers
) -> None:
    gateway = quick_gateway(world.sandbox_url)
    try:
        sync_ledger(ops_engine=world.engine, app_engine=world.engine, gateway=gateway)
        user_id = world.users.stale_user
        with world.engine.connect() as conn:
            earlier = ledger_for_user(conn, user_id)[-1]
        assert earlier.destination is not None
        workers.start(queues=("maintenance",), WATCH_INTERVAL_SECONDS="10")
        wait_for(lambda: watch_began(world), timeout=90, what="the watch's first pass")
        assert _reviews(world) == {}  # what ended before the watch began is history

        again = gateway.get_training(earlier.id)
        new = gateway.create_training(
            earlier.trainer_model, earlier.trainer_version, earlier.destination, again.input
        )
        wait_for(lambda: new.id in _reviews(world), timeout=90, what="a review of the training")
        assert _reviews(world) == {new.id: (user_id, "succeeded")}, workers.logs()
    finally:
        gateway.close()
