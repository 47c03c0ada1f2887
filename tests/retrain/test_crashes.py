"""The retrain crash matrix: a real worker SIGKILLed at every step boundary of a retrain
(building the ZIP, the create claimed but not sent, the create in flight, the create
answered, following the training, starting the promotion gate, the gate's predictions),
found by watching the database while the sandbox or the worker's own pace holds the step
open; then a fresh worker. Each time: the retrain reaches an end (or awaits its decision
with its gate read), Replicate holds at most one training of its ZIP and it is the one
recorded, the gate's predictions are each created once and held, and nothing is left
open or queued.

The points before the gate run it with no compare budget, so the gate is read at once
with that reason: its own paid steps are the matrix's last two points, and running twelve
predictions after every earlier point tested nothing more at the cost of a minute each."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select, text

from core.compare import recovery as compare_recovery
from core.compare.tables import comparison_images, comparisons
from core.jobs.app import TaskName
from core.retrain.follow import open_steps
from core.retrain.tables import RETRAIN_ENDED
from core.retrain.tasks import defer_retrain
from tests.conftest import quick_gateway
from tests.crashes import (
    RECOVERY_SECONDS,
    carried_out,
    counts,
    faults,
    job_running,
    jobs_left,
    kill,
    watch,
)
from tests.jobs.conftest import World
from tests.retrain.drafts import (
    ADMINS,
    TRAININGS_PATH,
    MeasuredUpload,
    confirm_draft,
    open_checked_draft,
    retrain_row,
)
from tests.workers import Workers, wait_for

pytestmark = pytest.mark.timeout(300)

Reached = Callable[[World, int], bool]


def _status(world: World, retrain_id: int, *statuses: str) -> bool:
    return bool(retrain_row(world, retrain_id).status in statuses)


def _gate_image_creating(world: World, retrain_id: int) -> bool:
    row = retrain_row(world, retrain_id)
    if row.comparison_id is None:
        return False
    with world.engine.connect() as conn:
        return bool(
            conn.execute(
                select(comparison_images.c.id).where(
                    comparison_images.c.comparison_id == row.comparison_id,
                    comparison_images.c.status == "creating",
                )
            ).first()
        )


@dataclass(frozen=True)
class Point:
    name: str
    reached: Reached
    rules: tuple[dict[str, Any], ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    ends: frozenset[str] = frozenset({"succeeded"})
    gate_runs: bool = False  # the gate's comparison runs (else: no budget, read at once)


# The gate finds no budget: it is read at once, saying so (core.retrain.gate).
NO_GATE: dict[str, Any] = {"COMPARE_DAILY_BUDGET_USD": "0"}
NO_BUDGET = "compare budget"


POINTS = (
    Point(
        "building and uploading the ZIP",
        lambda world, rid: (
            (row := retrain_row(world, rid)).status == "submitting"
            and row.lease_owner is not None
            and row.zip_url is None
        ),
        rules=({"latency_ms": 20000, "path": r"^/v1/files$", "methods": ["POST"]},),
    ),
    Point(
        "the create claimed, not sent (held back by the worker's pace)",
        lambda world, rid: _status(world, rid, "creating"),
        env={"REPLICATE_CALLS_PER_MINUTE": "1"},
        ends=frozenset({"lost"}),
    ),
    Point(
        # Whether Replicate carries out a create whose client died mid-request is its
        # own affair: found by the search, or searched for in vain; never both, never two.
        "the create in flight",
        lambda world, rid: _status(world, rid, "creating"),
        rules=({"latency_ms": 1500, "path": TRAININGS_PATH, "methods": ["POST"]},),
        ends=frozenset({"succeeded", "lost"}),
    ),
    Point(
        "the create carried out, its answer not back yet",
        lambda world, rid: (
            _status(world, rid, "creating") and carried_out(world.sandbox_url, "trainings.create")
        ),
        rules=(
            {"latency_ms": 20000, "when": "after", "path": TRAININGS_PATH, "methods": ["POST"]},
        ),
    ),
    Point(
        "the create answered, its follow step waiting",
        lambda world, rid: (
            (row := retrain_row(world, rid)).status == "starting" and row.training_id is not None
        ),
    ),
    Point(
        "following the training",
        lambda world, rid: (
            job_running(world.engine, "retrain.follow", "retrain_id", rid)
            and _status(world, rid, "starting", "processing")
        ),
        rules=({"latency_ms": 20000, "path": r"^/v1/trainings/[^/]+$", "methods": ["GET"]},),
    ),
    Point(
        "starting the promotion gate",
        lambda world, rid: (
            job_running(world.engine, "retrain.follow", "retrain_id", rid)
            and _status(world, rid, "succeeded")
            and retrain_row(world, rid).comparison_id is None
        ),
        rules=({"latency_ms": 20000, "path": r"^/v1/trainings$", "methods": ["GET"]},),
        gate_runs=True,
    ),
    Point(
        "the gate's predictions in flight",
        _gate_image_creating,
        rules=({"latency_ms": 1500, "path": r"^/v1/predictions$", "methods": ["POST"]},),
        gate_runs=True,
    ),
)


def _settled(world: World, retrain_id: int) -> Any:
    """The retrain once nothing more happens to it without a person: ended, or succeeded
    with its gate read; None before."""
    row = retrain_row(world, retrain_id)
    if row.status in RETRAIN_ENDED and row.status != "succeeded":
        return row
    if row.status == "succeeded" and row.gate_read_at is not None:
        return row
    return None


def _gate_predictions(world: World, comparison_id: int, since: Any) -> None:
    """Every prediction Replicate made for the gate is held by one of its images, and no
    input was created more often than images ask for it (column A and its repeat share
    one): nothing paid twice, nothing paid and dropped."""
    with world.engine.connect() as conn:
        header = conn.execute(select(comparisons).where(comparisons.c.id == comparison_id)).one()
        images = conn.execute(
            select(comparison_images).where(comparison_images.c.comparison_id == comparison_id)
        ).all()
    assert header.status == "finished", header
    # An image whose create never reached Replicate says so (nothing paid); every other
    # one succeeded and is scored.
    assert all(
        (image.status == "succeeded" and image.scores)
        or (image.prediction_id is None and "nothing was paid" in (image.error or ""))
        for image in images
    ), [(image.status, image.error) for image in images]
    versions = {image.version_id for image in images}
    gateway = quick_gateway(world.sandbox_url)
    try:
        made = [
            prediction
            for prediction in gateway.list_predictions(created_after=since)
            if prediction.version in versions
        ]
    finally:
        gateway.close()
    held = {image.prediction_id for image in images if image.prediction_id}
    assert {prediction.id for prediction in made} == held
    asked = Counter((image.version_id, image.seed) for image in images if image.prediction_id)
    created = Counter((p.version, p.input.get("seed")) for p in made)
    assert created == asked


@pytest.mark.parametrize("point", POINTS, ids=[point.name for point in POINTS])
def test_a_worker_killed_here_leaves_one_training_and_nothing_open(
    world: World, workers: Workers, uploads: tuple[MeasuredUpload, ...], point: Point
) -> None:
    user_id = world.users.stale_user
    retrain_id = open_checked_draft(world, user_id, uploads)
    confirm_draft(world, ADMINS[0], retrain_id)
    before = counts(world.sandbox_url)
    with world.engine.connect() as conn:
        since = conn.execute(text("SELECT now() - interval '1 minute'")).scalar_one()
    gate_env: dict[str, Any] = {} if point.gate_runs else NO_GATE
    with faults(world.sandbox_url, *point.rules):
        env: dict[str, Any] = {"RECOVERY_SECONDS": RECOVERY_SECONDS, **gate_env, **point.env}
        doomed = workers.start(concurrency=2, **env)
        with world.engine.begin() as conn:
            defer_retrain(conn, TaskName.SUBMIT_RETRAIN, retrain_id)
        watch(lambda: point.reached(world, retrain_id), what=f"the retrain at: {point.name}")
        kill(doomed)
    workers.start(concurrency=2, RECOVERY_SECONDS=RECOVERY_SECONDS, **gate_env)
    row = wait_for(
        lambda: _settled(world, retrain_id),
        timeout=180,
        what=f"the retrain killed at {point.name!r} to settle",
    )
    assert row.status in point.ends, (row.status, row.error, workers.logs())
    after = counts(world.sandbox_url)
    gateway = quick_gateway(world.sandbox_url)
    try:
        of_its_zip = [
            training.id
            for training in gateway.list_trainings(created_after=since)
            if row.zip_url and training.input.get("input_images") == row.zip_url
        ]
    finally:
        gateway.close()
    created = after.get("trainings.create", 0) - before.get("trainings.create", 0)
    if row.status == "lost":
        assert of_its_zip == [] and created == 0  # never sent, and it says so
        assert "nothing was paid" in row.error
        assert not row.active
    else:
        assert of_its_zip == [row.training_id] and created == 1  # one paid training
        assert row.active and row.new_version
        if point.gate_runs:
            assert row.comparison_id, row.error
            _gate_predictions(world, int(row.comparison_id), since)
        else:
            assert row.comparison_id is None and NO_BUDGET in (row.error or ""), row.error
    assert row.lease_owner is None
    wait_for(
        lambda: not jobs_left(world.engine, "retrain_id", retrain_id),
        timeout=30,
        what="no job left for the retrain",
    )
    with world.engine.connect() as conn:
        assert all(found != retrain_id for _, found in open_steps(conn))
        assert compare_recovery.open_steps(conn) == []  # the gate's images all ended


def test_a_confirmed_retrain_nobody_queued_is_submitted_and_followed_by_maintenance(
    world: World, workers: Workers, uploads: tuple[MeasuredUpload, ...]
) -> None:
    """A confirmation whose submit job was never queued (or failed for good): the
    maintenance job finds the retrain without a job and moves it on, once."""
    retrain_id = open_checked_draft(world, world.users.stale_user, uploads)
    confirm_draft(world, ADMINS[0], retrain_id)
    before = counts(world.sandbox_url)
    workers.start(concurrency=2, RECOVERY_SECONDS=RECOVERY_SECONDS, **NO_GATE)
    row = wait_for(
        lambda: _settled(world, retrain_id), timeout=180, what="the orphan retrain to settle"
    )
    assert row.status == "succeeded" and row.training_id
    assert row.comparison_id is None and NO_BUDGET in (row.error or ""), row.error
    assert counts(world.sandbox_url)["trainings.create"] - before.get("trainings.create", 0) == 1
    assert f"retrain {retrain_id} (submit) had no live owner" in workers.full_logs()
