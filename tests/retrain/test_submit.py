"""A retrain from its draft to exactly one training on the sandbox: twenty admins and
workers at once, a slow create racing nineteen more runs, a lost create answer, a refused
create, a send that differs from the confirmation, the core's own gate and plan, roles
checked in core; and the app's row never touched."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from datetime import datetime

import pytest
from sqlalchemy import func, null, select, text

from core.audit import list_records
from core.drift.facts import TrainingRecord
from core.errors import Conflict, DataRejected, PermissionDenied
from core.retrain.plan import plan_of_draft, retrain_target
from core.retrain.submit import confirm, submit
from core.retrain.tables import retrain_photos, retrains
from core.roles import Actor, Role
from tests.conftest import quick_gateway
from tests.jobs.conftest import World
from tests.retrain.drafts import (
    ADMINS,
    REASON,
    TRAININGS_PATH,
    MeasuredUpload,
    app_row,
    confirm_draft,
    creates,
    fault,
    open_checked_draft,
    retrain_row,
)
from tests.workers import ROOT, wait_for

pytestmark = pytest.mark.timeout(240)

Uploads = tuple[MeasuredUpload, ...]


def test_twenty_admins_and_workers_at_once_start_exactly_one_training(
    world: World, uploads: Uploads
) -> None:
    user_id = world.users.stale_user
    app_row_before = app_row(world, user_id)
    retrain_id = open_checked_draft(world, user_id, uploads)
    before = creates(world)
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(ADMINS))

    def one(actor: Actor) -> None:
        gateway = quick_gateway(world.sandbox_url)
        try:
            start.wait(timeout=30)
            try:
                confirm_draft(world, actor, retrain_id)
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
    assert creates(world) - before == 1  # one paid training, whoever clicked and ran
    row = retrain_row(world, retrain_id)
    assert row.training_id and row.active and row.status == "starting"
    assert row.zip_url and row.zip_bytes > 0
    assert row.lease_owner is None  # released with the attach
    assert app_row(world, user_id) == app_row_before  # the user keeps their version
    # A second retrain of the same user is refused while this one is in flight.
    second_id = open_checked_draft(world, user_id, uploads)
    with pytest.raises(Conflict, match=f"Retrain #{retrain_id} of this user"):
        confirm_draft(world, ADMINS[1], second_id)


def test_nineteen_runs_while_one_is_creating_leave_its_create_alone(
    world: World, uploads: Uploads
) -> None:
    """The race that once paid twice: one run is in the 8 s training create; 19 more runs
    of the same retrain start. They must not declare it lost while its lease is live."""
    user_id = world.users.stale_user
    retrain_id = open_checked_draft(world, user_id, uploads)
    confirm_draft(world, ADMINS[0], retrain_id)
    before = creates(world)
    statuses: list[str] = []
    first_status: list[str] = []

    def first() -> None:
        gateway = quick_gateway(world.sandbox_url, timeout=30.0)
        try:
            first_status.append(submit(world.engine, gateway, retrain_id))
        finally:
            gateway.close()

    with fault(world, latency_ms=8000, path=TRAININGS_PATH, methods=["POST"]):
        runner = threading.Thread(target=first)
        runner.start()
        wait_for(
            lambda: retrain_row(world, retrain_id).status == "creating",
            timeout=60,
            what="the first run to claim the create",
        )
        gateway = quick_gateway(world.sandbox_url)
        try:
            racers = [
                threading.Thread(
                    target=lambda: statuses.append(submit(world.engine, gateway, retrain_id))
                )
                for _ in range(19)
            ]
            for racer in racers:
                racer.start()
            for racer in racers:
                racer.join(timeout=60)
        finally:
            gateway.close()
        mid = retrain_row(world, retrain_id)
        assert mid.status == "creating" and mid.active, mid  # nobody declared it lost
        runner.join(timeout=60)
    assert statuses == ["creating"] * 19
    assert first_status == ["starting"]
    row = retrain_row(world, retrain_id)
    assert row.status == "starting" and row.active and row.training_id
    assert creates(world) - before == 1
    second_id = open_checked_draft(world, user_id, uploads)
    with pytest.raises(Conflict, match=f"Retrain #{retrain_id} of this user"):
        confirm_draft(world, ADMINS[1], second_id)


def test_twenty_confirms_from_two_processes_make_one(world: World, uploads: Uploads) -> None:
    retrain_id = open_checked_draft(world, world.users.stale_user, uploads)
    crowd = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.retrain.confirm_crowd",
                world.url,
                str(retrain_id),
                str(process),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for process in range(2)
    ]
    outcomes: list[str] = []
    for process in crowd:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outcomes += json.loads(out)
    assert len(outcomes) == 20
    assert outcomes.count("confirmed") == 1, outcomes
    assert outcomes.count("refused") == 19, outcomes
    row = retrain_row(world, retrain_id)
    assert row.status == "submitting" and row.active
    with world.engine.connect() as conn:
        confirmed = [
            record
            for record in list_records(conn, action="retrain:submit")
            if record.details and record.details.get("event") == "confirmed"
        ]
    assert len(confirmed) == 1


def test_a_lost_create_answer_is_found_by_listing_and_not_sent_twice(
    world: World, uploads: Uploads
) -> None:
    retrain_id = open_checked_draft(world, world.users.stale_user, uploads)
    confirm_draft(world, ADMINS[0], retrain_id)
    before = creates(world)
    gateway = quick_gateway(world.sandbox_url)
    try:
        with fault(world, status=502, when="after", count=1, path=TRAININGS_PATH, methods=["POST"]):
            status = submit(world.engine, gateway, retrain_id)
        again = submit(world.engine, gateway, retrain_id)  # a retried job changes nothing
    finally:
        gateway.close()
    assert status == "starting" and again == status
    assert creates(world) - before == 1
    row = retrain_row(world, retrain_id)
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


def test_a_refused_create_ends_the_retrain_and_leaves_the_row_alone(
    world: World, uploads: Uploads
) -> None:
    user_id = world.users.stale_user
    app_row_before = app_row(world, user_id)
    retrain_id = open_checked_draft(world, user_id, uploads)
    confirm_draft(world, ADMINS[0], retrain_id)
    gateway = quick_gateway(world.sandbox_url)
    try:
        with fault(
            world, status=422, when="before", count=1, path=TRAININGS_PATH, methods=["POST"]
        ):
            status = submit(world.engine, gateway, retrain_id)
    finally:
        gateway.close()
    assert status == "failed"
    row = retrain_row(world, retrain_id)
    assert not row.active and row.training_id is None
    assert row.error.startswith("Replicate refused the training")
    assert app_row(world, user_id) == app_row_before
    # The user is free for the next attempt.
    second_id = open_checked_draft(world, user_id, uploads)
    assert confirm_draft(world, ADMINS[0], second_id) == second_id


def test_the_worker_refuses_to_send_what_was_not_confirmed(world: World, uploads: Uploads) -> None:
    retrain_id = open_checked_draft(world, world.users.stale_user, uploads)
    confirm_draft(world, ADMINS[0], retrain_id)
    with world.engine.begin() as conn:  # what a bug or a hand-edited row would do
        conn.execute(
            text("UPDATE ops.retrains SET destination = 'someone/else' WHERE id = :id"),
            {"id": retrain_id},
        )
    before = creates(world)
    gateway = quick_gateway(world.sandbox_url)
    try:
        status = submit(world.engine, gateway, retrain_id)
    finally:
        gateway.close()
    assert status == "failed" and creates(world) == before
    row = retrain_row(world, retrain_id)
    assert "not what was confirmed" in row.error and "someone/else" in row.error
    assert not row.active


def test_the_core_computes_the_gate_and_refuses_unchecked_photos(
    world: World, uploads: Uploads
) -> None:
    """A page passes ids and a person's choices; the core judges the draft itself."""
    retrain_id = open_checked_draft(world, world.users.stale_user, uploads[:4])
    with pytest.raises(DataRejected, match="The dataset gate blocks this retrain"):
        confirm_draft(world, ADMINS[0], retrain_id)
    with world.engine.begin() as conn:
        confirm(
            conn,
            ADMINS[0],
            retrain_id,
            confirm_token=uuid.uuid4().hex,
            reason=REASON,
            override_reason="the user sent only four photos and wants it anyway",
        )
    row = retrain_row(world, retrain_id)
    assert row.status == "submitting" and row.gate["blocks"] and row.override_reason
    assert row.confirmed["photos"] == 4 and row.confirmed["destination"] == row.destination
    unchecked = open_checked_draft(world, world.users.user_ids[1], uploads)
    with world.engine.begin() as conn:
        conn.execute(
            retrain_photos.update()
            .where(retrain_photos.c.retrain_id == unchecked, retrain_photos.c.position == 0)
            .values(facts=null())  # SQL NULL, as a photo not measured yet
        )
    with pytest.raises(DataRejected, match="not checked yet"):
        confirm_draft(world, ADMINS[0], unchecked)
    assert retrain_row(world, unchecked).status == "draft"


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.PRODUCT])
def test_support_and_product_may_not_retrain(world: World, uploads: Uploads, role: Role) -> None:
    retrain_id = open_checked_draft(world, world.users.stale_user, uploads)
    with pytest.raises(PermissionDenied, match="may not"):
        confirm_draft(world, Actor(f"{role.value}@staff.test", role), retrain_id)
    assert retrain_row(world, retrain_id).status == "draft"


def test_the_plan_keeps_the_model_and_trigger_and_names_what_the_trainer_ignores(
    world: World, uploads: Uploads
) -> None:
    user_id = world.users.stale_user
    retrain_id = open_checked_draft(world, user_id, uploads)
    plan = plan_of_draft(retrain_row(world, retrain_id), len(uploads))
    row = app_row(world, user_id)
    assert plan.destination == row["replicate_model_id"]
    assert plan.trigger_word == row["trigger_word"]
    assert plan.schema_known
    # fast-flux-trainer declares input_images, trigger_word, lora_type and training_steps:
    # the app's steps, rank and the rest are dropped by Replicate.
    assert {"steps", "lora_rank", "network_alpha", "num_repeats"} <= set(plan.ignored)
    assert "trigger_word" not in plan.ignored
    assert [item.name for item in plan.rows() if not item.ignored] == ["trigger_word"]
    with world.engine.connect() as conn:
        drafts = conn.execute(
            select(func.count()).select_from(retrains).where(retrains.c.user_id == user_id)
        ).scalar_one()
    assert drafts == 1


def _record(training_id: str, output_version: str | None, at: int, trigger: str) -> TrainingRecord:
    return TrainingRecord(
        id=training_id,
        trainer_model="replicate/fast-flux-trainer",
        trainer_version="f" * 64,
        status="succeeded",
        input={"trigger_word": trigger, "input_images": f"https://blob.test/{training_id}.zip"},
        output_version=output_version,
        created_at=datetime(2026, 11, at),
    )


def test_a_bare_hash_output_version_never_sends_a_retrain_nowhere() -> None:
    """Replicate sends ``output.version`` as a bare hash too: the model is then the one
    the user's other trainings or the row name, never an empty string."""
    bare = "b" * 64
    named = _record("t1", f"sandrasocial/user-x-selfie-lora:{'a' * 64}", 1, "userx")
    latest = _record("t2", bare, 2, "userx")
    found = retrain_target([named, latest], stored_version=bare, row_model=None)
    assert found.destination == "sandrasocial/user-x-selfie-lora"
    assert found.previous_training_id == "t2"
    assert any("without the model" in note for note in found.notes)
    alone = retrain_target(
        [latest], stored_version=bare, row_model="  sandrasocial/user-x-selfie-lora "
    )
    assert alone.destination == "sandrasocial/user-x-selfie-lora"
    with pytest.raises(DataRejected, match="where the retrain would go is unknown"):
        retrain_target([latest], stored_version=bare, row_model=None)
    assert latest.destination is None and latest.version_hash == bare
