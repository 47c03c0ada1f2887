"""A retrain from its draft to exactly one training on the sandbox: twenty admins and
workers at once, a lost create answer, a refused create, roles checked in core; and the
app's row never touched."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.audit import list_records
from core.errors import Conflict, PermissionDenied
from core.ledger.sync import ledger_for_user, sync_ledger
from core.retrain.plan import (
    RETRAIN_TRAINER,
    RETRAIN_TRAINER_VERSION,
    TrainingPlan,
    plan_training,
    retrain_target,
)
from core.retrain.submit import NewPhoto, add_photos, confirm, open_draft, submit
from core.retrain.tables import retrains
from core.roles import Actor, Role
from core.schema import app_metadata
from tests.conftest import quick_gateway
from tests.jobs.conftest import World
from tests.photos import face_photo

pytestmark = pytest.mark.timeout(240)

ADMINS = [Actor(f"admin{index}@staff.test", Role.ADMIN) for index in range(20)]
PHOTOS = 12
GATE_PASSED: dict[str, Any] = {"passed": True, "blocks": [], "warnings": []}
TRAININGS_PATH = r"^/v1/models/[^/]+/[^/]+/versions/[^/]+/trainings$"


def _creates(world: World) -> int:
    stats = httpx.get(f"{world.sandbox_url}/_sandbox/stats").json()["counts"]
    return int(stats.get("trainings.create", 0))


@contextmanager
def _fault(world: World, **rule: Any) -> Iterator[None]:
    httpx.post(f"{world.sandbox_url}/_sandbox/faults", json=rule).raise_for_status()
    try:
        yield
    finally:
        httpx.delete(f"{world.sandbox_url}/_sandbox/faults").raise_for_status()


def _app_row(world: World, user_id: str) -> dict[str, Any]:
    user_models = app_metadata.tables["user_models"]
    with world.engine.connect() as conn:
        return dict(
            conn.execute(select(user_models).where(user_models.c.user_id == user_id))
            .mappings()
            .one()
        )


def _draft(world: World, user_id: str) -> tuple[int, TrainingPlan]:
    gateway = quick_gateway(world.sandbox_url)
    try:
        sync_ledger(ops_engine=world.engine, app_engine=world.engine, gateway=gateway)
        row = _app_row(world, user_id)
        with world.engine.connect() as conn:
            trainings = ledger_for_user(conn, user_id)
        target = retrain_target(
            trainings,
            stored_version=row["replicate_version_id"],
            row_model=row["replicate_model_id"],
        )
        schema = gateway.trainer_input_schema(RETRAIN_TRAINER, RETRAIN_TRAINER_VERSION)
    finally:
        gateway.close()
    with world.engine.begin() as conn:
        retrain_id = open_draft(
            conn,
            ADMINS[0],
            user_id,
            target,
            trainer=RETRAIN_TRAINER,
            trainer_version=RETRAIN_TRAINER_VERSION,
        )
        add_photos(
            conn,
            ADMINS[0],
            retrain_id,
            [
                NewPhoto(f"selfie-{index}.jpg", "upload", face_photo(index, long_side=1280))
                for index in range(PHOTOS)
            ],
        )
    return retrain_id, plan_training(target, schema, image_count=PHOTOS)


def _confirm(world: World, actor: Actor, retrain_id: int, plan: TrainingPlan) -> int:
    with world.engine.begin() as conn:
        return confirm(
            conn,
            actor,
            retrain_id,
            plan,
            confirm_token=uuid.uuid4().hex,
            reason="images got worse after the last retrain",
            gate=GATE_PASSED,
        )


def _row(world: World, retrain_id: int) -> Any:
    with world.engine.connect() as conn:
        return conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one()


def test_twenty_admins_and_workers_at_once_start_exactly_one_training(world: World) -> None:
    user_id = world.users.stale_user
    app_row_before = _app_row(world, user_id)
    retrain_id, plan = _draft(world, user_id)
    before = _creates(world)
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(ADMINS))

    def one(actor: Actor) -> None:
        gateway = quick_gateway(world.sandbox_url)
        try:
            start.wait(timeout=30)
            try:
                _confirm(world, actor, retrain_id, plan)
                outcome = "confirmed"
            except Conflict:
                outcome = "refused"
            status = submit(world.engine, gateway, retrain_id)
            with lock:
                outcomes.append(f"{outcome}:{status}")
        finally:
            gateway.close()

    threads = [threading.Thread(target=one, args=(actor,)) for actor in ADMINS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert len(outcomes) == len(ADMINS), outcomes
    assert sum(1 for outcome in outcomes if outcome.startswith("confirmed")) == 1, outcomes
    assert _creates(world) - before == 1  # one paid training, whoever clicked and ran
    row = _row(world, retrain_id)
    assert row.training_id and row.active and row.status in ("starting", "processing")
    assert row.zip_url and row.zip_bytes > 0
    assert _app_row(world, user_id) == app_row_before  # the user keeps their version
    # A second retrain of the same user is refused while this one is in flight.
    second_id, second_plan = _draft(world, user_id)
    with pytest.raises(Conflict, match=f"Retrain #{retrain_id} of this user"):
        _confirm(world, ADMINS[1], second_id, second_plan)


def test_a_lost_create_answer_is_found_by_listing_and_not_sent_twice(world: World) -> None:
    retrain_id, plan = _draft(world, world.users.stale_user)
    _confirm(world, ADMINS[0], retrain_id, plan)
    before = _creates(world)
    gateway = quick_gateway(world.sandbox_url)
    try:
        with _fault(
            world, status=502, when="after", count=1, path=TRAININGS_PATH, methods=["POST"]
        ):
            status = submit(world.engine, gateway, retrain_id)
        again = submit(world.engine, gateway, retrain_id)  # a retried job changes nothing
    finally:
        gateway.close()
    assert status in ("starting", "processing") and again == status
    assert _creates(world) - before == 1
    row = _row(world, retrain_id)
    assert row.training_id and row.active
    with world.engine.connect() as conn:
        events = [
            record.details
            for record in list_records(conn, action="retrain:submit")
            if record.details and record.details.get("retrain_id") == retrain_id
        ]
    assert {"event": "submitted", "found_by_listing": True} in [
        {"event": event["event"], "found_by_listing": event.get("found_by_listing")}
        for event in events
    ]


def test_a_refused_create_ends_the_retrain_and_leaves_the_row_alone(world: World) -> None:
    user_id = world.users.stale_user
    app_row_before = _app_row(world, user_id)
    retrain_id, plan = _draft(world, user_id)
    _confirm(world, ADMINS[0], retrain_id, plan)
    gateway = quick_gateway(world.sandbox_url)
    try:
        with _fault(
            world, status=422, when="before", count=1, path=TRAININGS_PATH, methods=["POST"]
        ):
            status = submit(world.engine, gateway, retrain_id)
    finally:
        gateway.close()
    assert status == "failed"
    row = _row(world, retrain_id)
    assert not row.active and row.training_id is None
    assert row.error.startswith("Replicate refused the training")
    assert _app_row(world, user_id) == app_row_before
    # The user is free for the next attempt.
    second_id, second_plan = _draft(world, user_id)
    assert _confirm(world, ADMINS[0], second_id, second_plan) == second_id


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.PRODUCT])
def test_support_and_product_may_not_retrain(world: World, role: Role) -> None:
    retrain_id, plan = _draft(world, world.users.stale_user)
    with pytest.raises(PermissionDenied, match="may not"):
        _confirm(world, Actor(f"{role.value}@staff.test", role), retrain_id, plan)
    assert _row(world, retrain_id).status == "draft"


def test_the_plan_keeps_the_model_and_trigger_and_names_what_the_trainer_ignores(
    world: World,
) -> None:
    user_id = world.users.stale_user
    _, plan = _draft(world, user_id)
    row = _app_row(world, user_id)
    assert plan.destination == row["replicate_model_id"]
    assert plan.trigger_word == row["trigger_word"]
    assert plan.schema_known
    # fast-flux-trainer declares input_images, trigger_word, lora_type and training_steps:
    # the app's steps, rank and the rest are dropped by Replicate.
    assert {"steps", "lora_rank", "network_alpha", "num_repeats"} <= set(plan.ignored)
    assert "trigger_word" not in plan.ignored
    assert [row.name for row in plan.rows() if not row.ignored] == ["trigger_word"]
