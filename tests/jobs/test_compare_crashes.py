"""The comparison crash matrix: a real worker SIGKILLed at every step boundary of a
comparison (reading the identity reference at its start, a create claimed but not sent, a
create in flight, following a prediction, reading its image, an image kept but not
scored), found by watching the database while the sandbox or the worker's own pace holds
the step open; then a fresh worker. Each time the comparison finishes, every prediction
Replicate made is held by exactly one image and none was made twice, no image or job is
left open, and the budget counts only what was sent."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from core.compare import recovery as compare_recovery
from core.compare.plan import plan_comparison, read_compare_facts
from core.compare.request import budget_of, request_comparison
from core.compare.tables import comparison_images, comparisons
from core.ledger.sync import sync_ledger
from core.roles import Actor, Role
from tests.conftest import quick_gateway
from tests.crashes import (
    RECOVERY_SECONDS,
    carried_out,
    faults,
    job_running,
    jobs_left,
    kill,
    watch,
)
from tests.jobs.conftest import World
from tests.workers import Workers, wait_for

pytestmark = pytest.mark.timeout(300)
PRODUCT = Actor("pat@staff.test", Role.PRODUCT)
PRICE = Decimal("0.03")

Reached = Callable[[World, int], bool]


def _images(world: World, comparison_id: int) -> list[Any]:
    with world.engine.connect() as conn:
        return list(
            conn.execute(
                select(comparison_images)
                .where(comparison_images.c.comparison_id == comparison_id)
                .order_by(comparison_images.c.id)
            ).all()
        )


def _comparison(world: World, comparison_id: int) -> Any:
    with world.engine.connect() as conn:
        return conn.execute(select(comparisons).where(comparisons.c.id == comparison_id)).one()


def _any_image(world: World, comparison_id: int, *statuses: str) -> bool:
    return any(image.status in statuses for image in _images(world, comparison_id))


def _starting_without_reference(world: World, comparison_id: int) -> bool:
    header = _comparison(world, comparison_id)
    return (
        header.status == "running"
        and header.reference is None
        and job_running(world.engine, "compare.start", "comparison_id", comparison_id)
    )


def _one_sent_others_held_back(world: World, comparison_id: int) -> bool:
    images = _images(world, comparison_id)
    sent = any(image.prediction_id is not None for image in images)
    return sent and any(image.status == "creating" for image in images)


def _following(world: World, comparison_id: int) -> bool:
    return any(
        image.status in ("starting", "processing")
        and job_running(world.engine, "compare.follow", "image_id", int(image.id))
        for image in _images(world, comparison_id)
    )


def _kept_not_scored(world: World, comparison_id: int) -> bool:
    return any(
        image.status == "succeeded" and image.scores is None
        for image in _images(world, comparison_id)
    )


@dataclass(frozen=True)
class Point:
    name: str
    reached: Reached
    rules: tuple[dict[str, Any], ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    # The state the kill must leave behind for the point to be tested (checked after it).
    left: Reached | None = None


POINTS = (
    Point(
        "reading the reference photos at the start",
        _starting_without_reference,
        rules=({"latency_ms": 20000, "path": r"^/_blob/", "methods": ["GET"]},),
    ),
    Point(
        "a create claimed, not sent (held back by the worker's pace)",
        _one_sent_others_held_back,
        env={"REPLICATE_PREDICTION_CREATES_PER_MINUTE": "1"},
    ),
    Point(
        "a create in flight",
        lambda world, cid: _any_image(world, cid, "creating"),
        rules=({"latency_ms": 1500, "path": r"^/v1/predictions$", "methods": ["POST"]},),
    ),
    Point(
        "a create carried out, its answer not back yet",
        lambda world, cid: (
            _any_image(world, cid, "creating")
            and carried_out(world.sandbox_url, "predictions.create")
        ),
        rules=(
            {
                "latency_ms": 20000,
                "when": "after",
                "path": r"^/v1/predictions$",
                "methods": ["POST"],
            },
        ),
    ),
    Point(
        "following a prediction",
        _following,
        rules=({"latency_ms": 20000, "path": r"^/v1/predictions/[^/]+$", "methods": ["GET"]},),
    ),
    Point(
        "reading a finished prediction's image",
        _following,
        rules=({"latency_ms": 20000, "path": r"^/delivery/", "methods": ["GET"]},),
    ),
    Point(
        "an image kept, not scored yet",
        _kept_not_scored,
        left=_kept_not_scored,
    ),
)


def _request(world: World) -> int:
    gateway = quick_gateway(world.sandbox_url)
    try:
        sync_ledger(ops_engine=world.engine, app_engine=world.engine, gateway=gateway)
        with world.engine.connect() as conn:
            facts = read_compare_facts(conn, conn, world.users.stale_user)
        plan = plan_comparison(gateway, facts, columns="v1,v2", seed_count=2)
    finally:
        gateway.close()
    with world.engine.begin() as conn:
        return request_comparison(
            conn,
            PRODUCT,
            plan,
            confirm_token=uuid.uuid4().hex,
            price_per_image_usd=float(PRICE),
            daily_budget_usd=5.0,
            background=True,
        )


def _finished(world: World, comparison_id: int) -> Any:
    header = _comparison(world, comparison_id)
    return header if header.status in ("finished", "cancelled") else None


def _crash(world: World, workers: Workers, comparison_id: int, point: Point) -> None:
    """Run a doomed worker to the point and kill it there; a point whose state can vanish
    before the kill lands (scoring takes a fraction of a second) is tried again on the
    next image."""
    for _ in range(5):
        env: dict[str, Any] = {"RECOVERY_SECONDS": RECOVERY_SECONDS, **point.env}
        doomed = workers.start(concurrency=2, **env)
        watch(lambda: point.reached(world, comparison_id), what=f"the comparison at {point.name}")
        kill(doomed)
        if point.left is None or point.left(world, comparison_id):
            return
        if _finished(world, comparison_id):
            break
    raise AssertionError(f"no kill landed at {point.name!r}")


@pytest.mark.parametrize("point", POINTS, ids=[point.name for point in POINTS])
def test_a_worker_killed_here_leaves_every_image_paid_once_and_nothing_open(
    world: World, workers: Workers, point: Point
) -> None:
    with world.engine.connect() as conn:
        since = conn.execute(text("SELECT now() - interval '1 minute'")).scalar_one()
    comparison_id = _request(world)
    with faults(world.sandbox_url, *point.rules):
        _crash(world, workers, comparison_id, point)
    workers.start(concurrency=2, RECOVERY_SECONDS=RECOVERY_SECONDS)
    header = wait_for(
        lambda: _finished(world, comparison_id),
        timeout=180,
        what=f"the comparison killed at {point.name!r} to end",
    )
    assert header.status == "finished", (header.status, workers.logs())
    images = _images(world, comparison_id)
    assert len(images) == 6  # 2 columns x 2 seeds, and A again
    assert all(image.status in ("succeeded", "failed") for image in images)
    assert all(image.scores for image in images if image.status == "succeeded")
    assert all(image.lease_owner is None for image in images)
    sent = [image for image in images if image.prediction_id is not None]
    unsent = [image for image in images if image.prediction_id is None]
    # An image never sent says so; it was not paid for, and its estimate is given back.
    assert all("nothing was paid" in (image.error or "") for image in unsent)
    gateway = quick_gateway(world.sandbox_url)
    try:
        made = [
            prediction
            for prediction in gateway.list_predictions(created_after=since)
            if prediction.version in {image.version_id for image in images}
        ]
    finally:
        gateway.close()
    assert {prediction.id for prediction in made} == {image.prediction_id for image in sent}
    assert Counter((p.version, p.input.get("seed")) for p in made) == Counter(
        (image.version_id, image.seed) for image in sent
    )
    assert header.released_usd == PRICE * len(unsent)
    with world.engine.connect() as conn:
        spent = budget_of(conn, PRODUCT.email, daily_usd=5.0).spent
        assert compare_recovery.open_steps(conn) == []
        assert compare_recovery.done_but_running(conn) == []
    assert spent == PRICE * len(sent)
    wait_for(
        lambda: not any(jobs_left(world.engine, "image_id", int(image.id)) for image in images),
        timeout=30,
        what="no job left for the comparison's images",
    )
