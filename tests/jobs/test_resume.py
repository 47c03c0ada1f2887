"""The maintenance job resumes work nobody owns: rows in an open state with no job that
would move them on (a job that failed for good, a worker killed between two steps, a
deploy that dropped the queue). A real worker with a short RECOVERY_SECONDS finds each
and moves it on to its end."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select, text

from core.compare.plan import plan_comparison, read_compare_facts
from core.compare.request import request_comparison
from core.compare.tables import comparisons
from core.ledger.sync import sync_ledger
from core.roles import Actor, Role
from tests.conftest import quick_gateway
from tests.crashes import RECOVERY_SECONDS
from tests.jobs.conftest import World
from tests.workers import Workers, wait_for

pytestmark = pytest.mark.timeout(300)
PRODUCT = Actor("pat@staff.test", Role.PRODUCT)


def _comparison(world: World, comparison_id: int) -> Any:
    with world.engine.connect() as conn:
        return conn.execute(select(comparisons).where(comparisons.c.id == comparison_id)).one()


def test_a_comparison_without_its_jobs_is_started_and_finished_by_maintenance(
    world: World, workers: Workers
) -> None:
    gateway = quick_gateway(world.sandbox_url)
    try:
        sync_ledger(ops_engine=world.engine, app_engine=world.engine, gateway=gateway)
        with world.engine.connect() as conn:
            facts = read_compare_facts(conn, conn, world.users.stale_user)
        plan = plan_comparison(gateway, facts, columns="v1,v2", seed_count=1, repeat=False)
    finally:
        gateway.close()
    with world.engine.begin() as conn:  # recorded, but its start job never queued
        comparison_id = request_comparison(
            conn,
            PRODUCT,
            plan,
            confirm_token=uuid.uuid4().hex,
            price_per_image_usd=0.03,
            daily_budget_usd=5.0,
            background=False,
        )
    workers.start(concurrency=2, RECOVERY_SECONDS=RECOVERY_SECONDS)
    finished = wait_for(
        lambda: (row := _comparison(world, comparison_id)).status == "finished" and row,
        timeout=120,
        what="maintenance to start the comparison nobody queued, and its steps to end it",
    )
    assert finished.verdict
    # A finished comparison set back to running (its last image's job died before it
    # could finish it): finished there and then, once.
    with world.engine.begin() as conn:
        conn.execute(
            text("UPDATE ops.comparisons SET status = 'running', stats = NULL WHERE id = :id"),
            {"id": comparison_id},
        )
    again = wait_for(
        lambda: (row := _comparison(world, comparison_id)).status == "finished" and row,
        timeout=60,
        what="maintenance to finish a comparison left running with every image done",
    )
    assert again.stats is not None
    assert "comparison" in workers.full_logs() and "had no live owner" in workers.full_logs()
