"""A comparison through the job queue: real worker processes create, follow and score its
predictions; the page and the command line only queue it and read its rows."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from core.compare.photos import queue_reads
from core.compare.plan import plan_comparison, read_compare_facts
from core.compare.request import request_comparison
from core.compare.tables import comparison_images, comparisons, review_pairs
from core.jobs.app import Priority
from core.ledger.sync import sync_ledger
from core.roles import Actor, Role
from tests.conftest import quick_gateway
from tests.jobs.conftest import World
from tests.workers import Workers, wait_for

pytestmark = pytest.mark.timeout(300)
PRODUCT = Actor("pat@staff.test", Role.PRODUCT)


def _creates(world: World) -> int:
    stats = httpx.get(f"{world.sandbox_url}/_sandbox/stats").json()["counts"]
    return int(stats.get("predictions.create", 0))


def _status(world: World, comparison_id: int) -> Any:
    with world.engine.connect() as conn:
        status = conn.execute(
            select(comparisons.c.status).where(comparisons.c.id == comparison_id)
        ).scalar_one()
    return status if status in ("finished", "cancelled") else None


def test_workers_run_a_comparison_once_each_and_pair_it_for_review(
    world: World, workers: Workers
) -> None:
    gateway = quick_gateway(world.sandbox_url)
    try:
        sync_ledger(ops_engine=world.engine, app_engine=world.engine, gateway=gateway)
        with world.engine.connect() as conn:
            facts = read_compare_facts(conn, conn, world.users.stale_user)
        plan = plan_comparison(gateway, facts, columns="v1,v2", seed_count=2)
    finally:
        gateway.close()
    before = _creates(world)
    with world.engine.begin() as conn:
        comparison_id = request_comparison(
            conn,
            PRODUCT,
            plan,
            confirm_token=uuid.uuid4().hex,
            price_per_image_usd=0.03,
            daily_budget_usd=5.0,
            background=True,
        )
    workers.start(concurrency=3)
    workers.start(concurrency=2)
    status = wait_for(
        lambda: _status(world, comparison_id), timeout=240, what="the comparison to end"
    )
    assert status == "finished", workers.logs()
    with world.engine.connect() as conn:
        images = conn.execute(
            select(comparison_images).where(comparison_images.c.comparison_id == comparison_id)
        ).all()
        header = conn.execute(select(comparisons).where(comparisons.c.id == comparison_id)).one()
        pairs = conn.execute(
            select(func.count())
            .select_from(review_pairs)
            .where(review_pairs.c.comparison_id == comparison_id)
        ).scalar_one()
    assert len(images) == 6  # 2 columns x 2 seeds, and A again
    assert all(image.status == "succeeded" and image.scores is not None for image in images)
    assert all(image.preview for image in images)
    assert _creates(world) - before == 6  # two workers, each image paid for once
    assert header.verdict and header.actual_usd is not None
    assert pairs == 2  # one per seed: v1 against v2


def test_a_comparison_a_person_asked_for_runs_before_photo_reads_queued_earlier(
    world: World, workers: Workers
) -> None:
    """On a fresh DEMO start the first scan queues a photo read per training ZIP; a
    comparison confirmed then must not wait behind them (one worker thread: the order in
    which jobs start is the order the queue hands them out)."""
    gateway = quick_gateway(world.sandbox_url)
    try:
        sync_ledger(ops_engine=world.engine, app_engine=world.engine, gateway=gateway)
        with world.engine.connect() as conn:
            facts = read_compare_facts(conn, conn, world.users.stale_user)
        plan = plan_comparison(gateway, facts, columns="v1", seed_count=1, repeat=False)
    finally:
        gateway.close()
    tag = uuid.uuid4().hex[:8]
    with world.engine.begin() as conn:
        queued = queue_reads(conn, [f"{world.sandbox_url}/missing/{tag}-{n}.zip" for n in range(4)])
        comparison_id = request_comparison(
            conn,
            PRODUCT,
            plan,
            confirm_token=uuid.uuid4().hex,
            price_per_image_usd=0.03,
            daily_budget_usd=5.0,
            background=True,
        )
    assert len(queued) == 4
    workers.start(concurrency=1)
    status = wait_for(
        lambda: _status(world, comparison_id), timeout=240, what="the comparison to end"
    )
    assert status == "finished", workers.logs()
    with world.engine.connect() as conn:
        started = conn.execute(
            text(
                "SELECT j.task_name, j.priority, j.args FROM ops.procrastinate_events e "
                "JOIN ops.procrastinate_jobs j ON j.id = e.job_id "
                "WHERE e.type = 'started' ORDER BY e.at, e.id"
            )
        ).all()
    ours = [
        row
        for row in started
        if row.args.get("comparison_id") == comparison_id
        or str(row.args.get("url", "")).endswith(tuple(f"{tag}-{n}.zip" for n in range(4)))
        or (row.task_name.startswith("compare.") and "image_id" in row.args)
    ]
    assert ours[0].task_name == "compare.start", [row.task_name for row in ours]
    # The comparison's own steps keep the priority of a person waiting.
    assert {row.priority for row in ours if row.task_name.startswith("compare.")} == {
        Priority.PERSON_WAITING
    }
    assert {row.priority for row in ours if row.task_name == "photos.read"} == {Priority.BACKGROUND}
