"""A submitted retrain followed to its end on the sandbox: the new version's bare hash and
weights on success (checked to be the model's latest), the reason on failure or abort,
and the app's row byte-identical either way."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from core.errors import Conflict, PermissionDenied
from core.gateway.values import is_version_hash
from core.repairs.apply import undo_repair
from core.retrain.follow import expected_seconds, follow, progress_of, stalled
from core.retrain.promote import current_row, keep, promote
from core.retrain.submit import submit
from core.retrain.tables import retrains
from core.roles import Actor, Role
from tests.conftest import quick_gateway
from tests.jobs.conftest import World
from tests.retrain.test_submit import ADMINS, _app_row, _confirm, _draft

pytestmark = pytest.mark.timeout(240)


def _run(world: World, outcome: str | None) -> tuple[str, Any]:
    user_id = world.users.stale_user
    before = _app_row(world, user_id)
    retrain_id, plan = _draft(world, user_id)
    _confirm(world, ADMINS[0], retrain_id, plan)
    if outcome is not None:
        httpx.post(
            f"{world.sandbox_url}/_sandbox/trainings/next", json={"outcome": outcome}
        ).raise_for_status()
    gateway = quick_gateway(world.sandbox_url)
    try:
        submit(world.engine, gateway, retrain_id)
        polls = 0
        while follow(world.engine, gateway, retrain_id) is not None:
            polls += 1
            assert polls < 50, "the instant sandbox's training never ended"
        assert follow(world.engine, gateway, retrain_id) is None  # ended: nothing to do
    finally:
        gateway.close()
    assert _app_row(world, user_id) == before  # byte-identical, whatever happened
    with world.engine.connect() as conn:
        row = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one()
    return str(row.status), row


def test_a_succeeded_retrain_records_the_new_bare_version_and_awaits_a_decision(
    world: World,
) -> None:
    status, row = _run(world, None)
    assert status == "succeeded"
    assert is_version_hash(row.new_version)
    assert row.new_version != row.previous_version
    assert row.new_weights and row.error is None  # and it is the model's latest
    assert row.active  # the user's retrain until promoted or kept
    assert row.steps and row.step == row.steps
    with world.engine.connect() as conn:  # the ledger knows the world's own trainings
        expected = expected_seconds(conn, row.trainer_version)
    assert expected is not None and expected >= 0


@pytest.mark.parametrize(("outcome", "status"), [("fail", "failed"), ("abort", "aborted")])
def test_a_failed_or_aborted_retrain_says_why_and_frees_the_user(
    world: World, outcome: str, status: str
) -> None:
    ended, row = _run(world, outcome)
    assert ended == status
    assert not row.active and row.new_version is None
    assert row.error


def test_progress_is_the_last_step_the_trainer_printed() -> None:
    logs = "loading\nflux_train_replicate: step 140/1400, loss: 0.4\nstep 280/1400, loss: 0.3\n"
    assert progress_of(logs) == progress_of("step 280/1400")
    found = progress_of(logs)
    assert found is not None and (found.step, found.steps) == (280, 1400)
    assert progress_of(None) is None and progress_of("starting") is None


def _succeeded(world: World) -> tuple[int, dict[str, object]]:
    before = _app_row(world, world.users.stale_user)
    status, row = _run(world, None)
    assert status == "succeeded"
    return int(row.id), before


def test_promote_writes_the_new_version_in_one_audited_step_and_undo_puts_it_back(
    world: World,
) -> None:
    user_id = world.users.stale_user
    retrain_id, before = _succeeded(world)
    with world.engine.begin() as conn:
        retrain = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one()
        audit_id = promote(
            conn, ADMINS[0], retrain_id, expected_row=current_row(conn, user_id), reason="ok"
        )
    promoted = _app_row(world, user_id)
    assert promoted["replicate_version_id"] == retrain.new_version  # the bare hash
    assert promoted["lora_weights_url"] == retrain.new_weights
    assert promoted["training_id"] == retrain.training_id
    assert promoted["training_status"] == "completed" and promoted["failure_reason"] is None
    assert promoted["trigger_word"] == before["trigger_word"]
    with world.engine.connect() as conn:
        assert conn.execute(
            select(retrains.c.decision, retrains.c.active).where(retrains.c.id == retrain_id)
        ).one() == ("promoted", False)
    with world.engine.begin() as conn:
        undo_repair(conn, actor=ADMINS[1], audit_id=audit_id, reason="the gate was wrong")
    restored = _app_row(world, user_id)
    unchanged = {key for key in before if key != "updated_at"}
    assert {key: restored[key] for key in unchanged} == {key: before[key] for key in unchanged}


def test_keep_leaves_the_row_alone_and_a_second_decision_is_refused(world: World) -> None:
    user_id = world.users.stale_user
    retrain_id, before = _succeeded(world)
    with world.engine.begin() as conn:
        keep(conn, ADMINS[0], retrain_id, reason="the new version loses the likeness")
    assert _app_row(world, user_id) == before
    with world.engine.begin() as conn, pytest.raises(Conflict, match="already kept"):
        promote(conn, ADMINS[1], retrain_id, expected_row=current_row(conn, user_id), reason="x")


def test_promotion_refuses_a_row_changed_since_it_was_read_and_non_admins(world: World) -> None:
    user_id = world.users.stale_user
    retrain_id, before = _succeeded(world)
    with world.engine.begin() as conn:
        stale = current_row(conn, user_id)
        conn.execute(
            # The app started a training of its own meanwhile.
            text("UPDATE user_models SET training_status = 'training' WHERE user_id = :user"),
            {"user": user_id},
        )
    with world.engine.begin() as conn, pytest.raises(Conflict, match="changed"):
        promote(conn, ADMINS[0], retrain_id, expected_row=stale, reason="ok")
    for role in (Role.SUPPORT, Role.PRODUCT):
        with world.engine.begin() as conn, pytest.raises(PermissionDenied):
            promote(
                conn,
                Actor(f"{role.value}@staff.test", role),
                retrain_id,
                expected_row=current_row(conn, user_id),
                reason="ok",
            )
    assert _app_row(world, user_id)["replicate_version_id"] == before["replicate_version_id"]


def test_a_retrain_whose_job_chain_stopped_is_found_for_the_maintenance_job(
    world: World,
) -> None:
    retrain_id, plan = _draft(world, world.users.stale_user)
    _confirm(world, ADMINS[0], retrain_id, plan)
    with world.engine.begin() as conn:
        assert (("submit", retrain_id) in stalled(conn)) is False  # just confirmed: not quiet
        conn.execute(
            text("UPDATE ops.retrains SET heartbeat_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": retrain_id},
        )
        assert ("submit", retrain_id) in stalled(conn)
        conn.execute(
            text("UPDATE ops.retrains SET status = 'processing' WHERE id = :id"),
            {"id": retrain_id},
        )
        assert ("follow", retrain_id) in stalled(conn)
        conn.execute(
            text("UPDATE ops.retrains SET status = 'failed', active = false WHERE id = :id"),
            {"id": retrain_id},
        )
        assert all(found != retrain_id for _, found in stalled(conn))  # ended: nothing to do
