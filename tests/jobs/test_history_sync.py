"""The training history's fleet sync is the workers' job: pages ask for it (one queued
job however many ask), a real worker lists the account's trainings, and the history is
then fresh for every page."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from core.facts import History, read_history, request_history_refresh
from core.ledger.sync import ledger_for_user
from tests.jobs.conftest import World
from tests.workers import Workers, wait_for

pytestmark = pytest.mark.timeout(180)
FRESH = timedelta(minutes=5)


def _listings(world: World) -> int:
    stats = httpx.get(f"{world.sandbox_url}/_sandbox/stats").json()
    return int(stats["counts"].get("GET /v1/trainings", 0))


def test_a_crowd_of_pages_asking_gets_one_sync_from_the_workers(
    world: World, workers: Workers
) -> None:
    with world.engine.connect() as conn:
        before = read_history(conn, fresh_within=FRESH)
        assert ledger_for_user(conn, world.users.stale_user) == ()
    assert before.listed_age is None and not before.fresh and not before.syncing
    asked = []
    for _ in range(5):  # five pages, each in its own transaction
        with world.engine.begin() as conn:
            asked.append(request_history_refresh(conn))
    assert asked == [True, False, False, False, False]
    with world.engine.connect() as conn:
        assert read_history(conn, fresh_within=FRESH).syncing
    listings = _listings(world)

    workers.start(concurrency=2)
    after = wait_for(
        lambda: (found := _history(world)).fresh and not found.syncing and found,
        timeout=90,
        what="a worker to sync the training history",
    )
    assert after.listed_age is not None
    assert _listings(world) - listings == 1  # one sync, one page of the account's list
    with world.engine.connect() as conn:
        assert len(ledger_for_user(conn, world.users.stale_user)) >= 2  # the history arrived


def _history(world: World) -> History:
    with world.engine.connect() as conn:
        return read_history(conn, fresh_within=FRESH)
