"""A submitted retrain followed to its end on the sandbox: the new version's bare hash and
weights on success (checked to be the model's latest), the reason on failure or abort,
and the app's row byte-identical either way; then the decision, which exists only once
the gate has ended, applies exactly the promotion shown, and a kept version becomes a
decision the diagnosis knows."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, text, update

from core.compare.tables import comparisons
from core.drift.facts import AppRow
from core.errors import Conflict, DataRejected, PermissionDenied
from core.gateway.values import is_version_hash
from core.live_diagnosis import diagnose_live, gather_live
from core.repairs.apply import undo_repair
from core.retrain.follow import expected_seconds, follow, open_steps, progress_of
from core.retrain.promote import current_row, keep, promote, promotion_preview, readiness
from core.retrain.submit import submit
from core.retrain.tables import retrains
from core.roles import Actor, Role
from tests.conftest import quick_gateway
from tests.jobs.conftest import World
from tests.retrain.drafts import (
    ADMINS,
    MeasuredUpload,
    app_row,
    confirm_draft,
    open_checked_draft,
    retrain_row,
)

pytestmark = pytest.mark.timeout(240)

Uploads = tuple[MeasuredUpload, ...]


def run_to_end(world: World, uploads: Uploads, outcome: str | None) -> tuple[str, Any]:
    """Draft, confirm, submit and follow a retrain of the stale user to its end."""
    user_id = world.users.stale_user
    before = app_row(world, user_id)
    retrain_id = open_checked_draft(world, user_id, uploads)
    confirm_draft(world, ADMINS[0], retrain_id)
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
    assert app_row(world, user_id) == before  # byte-identical, whatever happened
    row = retrain_row(world, retrain_id)
    return str(row.status), row


def gate_ended(world: World, retrain_id: int, status: str = "finished") -> None:
    """The retrain's gate comparison, ended as ``status`` and read (as the gate step does
    once its comparison ends)."""
    with world.engine.begin() as conn:
        comparison_id = conn.execute(
            insert(comparisons)
            .values(
                user_id=world.users.stale_user,
                requested_by="ada@staff.test",
                requested_role="admin",
                confirm_token=uuid.uuid4().hex,
                status=status,
                prompt="a headshot",
                category="headshot",
                seeds=[1101],
                columns=[],
                estimate_usd=0.0,
                stats={"columns": [], "noise_floor": 0.0} if status == "finished" else None,
            )
            .returning(comparisons.c.id)
        ).scalar_one()
        conn.execute(
            update(retrains)
            .where(retrains.c.id == retrain_id)
            .values(comparison_id=comparison_id, gate_read_at=text("now()"))
        )


def test_a_succeeded_retrain_records_the_new_bare_version_and_awaits_a_decision(
    world: World, uploads: Uploads
) -> None:
    status, row = run_to_end(world, uploads, None)
    assert status == "succeeded"
    assert is_version_hash(row.new_version)
    assert row.new_version != row.previous_version
    assert row.new_weights and row.error is None  # and it is the model's latest
    assert row.active  # the user's retrain until promoted or kept
    assert row.steps and row.step == row.steps
    with world.engine.connect() as conn:  # the ledger knows the world's own trainings
        expected = expected_seconds(conn, row.trainer_version)
        # Its gate is not read yet: the maintenance job would resume its follow step.
        assert ("follow", row.id) in open_steps(conn)
    assert expected is not None and expected >= 0


@pytest.mark.parametrize(("outcome", "status"), [("fail", "failed"), ("abort", "aborted")])
def test_a_failed_or_aborted_retrain_says_why_and_frees_the_user(
    world: World, uploads: Uploads, outcome: str, status: str
) -> None:
    ended, row = run_to_end(world, uploads, outcome)
    assert ended == status
    assert not row.active and row.new_version is None
    assert row.error
    with world.engine.connect() as conn:
        assert all(found != row.id for _, found in open_steps(conn))  # ended: nothing to do


def test_progress_is_the_last_step_the_trainer_printed() -> None:
    logs = "loading\nflux_train_replicate: step 140/1400, loss: 0.4\nstep 280/1400, loss: 0.3\n"
    assert progress_of(logs) == progress_of("step 280/1400")
    found = progress_of(logs)
    assert found is not None and (found.step, found.steps) == (280, 1400)
    assert progress_of(None) is None and progress_of("starting") is None


def _succeeded(world: World, uploads: Uploads) -> tuple[int, dict[str, object]]:
    before = app_row(world, world.users.stale_user)
    status, row = run_to_end(world, uploads, None)
    assert status == "succeeded"
    return int(row.id), before


def _preview(world: World, retrain_id: int) -> Any:
    with world.engine.connect() as conn:
        return promotion_preview(conn, conn, retrain_id)


def test_neither_promote_nor_keep_exists_before_the_gate_has_ended(
    world: World, uploads: Uploads
) -> None:
    retrain_id, before = _succeeded(world, uploads)
    row = retrain_row(world, retrain_id)
    assert not readiness(row, None).open
    shown = _preview(world, retrain_id)
    with world.engine.begin() as conn, pytest.raises(Conflict, match="once it has ended"):
        promote(conn, ADMINS[0], retrain_id, shown=shown, reason="looks fine")
    with world.engine.begin() as conn, pytest.raises(Conflict, match="once it has ended"):
        keep(conn, ADMINS[0], retrain_id, reason="x", app_row=current_row(conn, row.user_id))
    assert app_row(world, world.users.stale_user) == before
    # A gate that failed: a decision needs a reason of its own to go without it.
    gate_ended(world, retrain_id, status="cancelled")
    row = retrain_row(world, retrain_id)
    assert readiness(row, "cancelled").needs_reason_without_gate
    with world.engine.begin() as conn, pytest.raises(DataRejected, match="without it"):
        promote(conn, ADMINS[0], retrain_id, shown=shown, reason="looks fine")
    with world.engine.begin() as conn:
        promote(
            conn,
            ADMINS[0],
            retrain_id,
            shown=shown,
            reason="looks fine",
            without_gate_reason="Replicate was down all day; the user's photos show it works",
        )
    decided = retrain_row(world, retrain_id)
    assert decided.decision == "promoted" and "without the gate" in decided.decision_reason


def test_promote_writes_the_plan_shown_in_one_audited_step_and_undo_puts_it_back(
    world: World, uploads: Uploads
) -> None:
    user_id = world.users.stale_user
    retrain_id, before = _succeeded(world, uploads)
    gate_ended(world, retrain_id)
    retrain = retrain_row(world, retrain_id)
    shown = _preview(world, retrain_id)
    assert shown.before["replicate_version_id"] == before["replicate_version_id"]
    assert shown.after["replicate_version_id"] == retrain.new_version
    with world.engine.begin() as conn:
        audit_id = promote(conn, ADMINS[0], retrain_id, shown=shown, reason="ok")
    promoted = app_row(world, user_id)
    assert {column: promoted[column] for column in shown.after} == dict(shown.after)
    assert promoted["trigger_word"] == before["trigger_word"]
    decided = retrain_row(world, retrain_id)
    assert (decided.decision, decided.active) == ("promoted", False)
    with world.engine.begin() as conn:
        undo_repair(conn, actor=ADMINS[1], audit_id=audit_id, reason="the gate was wrong")
    restored = app_row(world, user_id)
    unchanged = {key for key in before if key != "updated_at"}
    assert {key: restored[key] for key in unchanged} == {key: before[key] for key in unchanged}


def test_keep_is_a_decision_the_diagnosis_knows_until_the_row_changes(
    world: World, uploads: Uploads
) -> None:
    user_id = world.users.stale_user
    retrain_id, before = _succeeded(world, uploads)
    gate_ended(world, retrain_id)
    with world.engine.begin() as conn:
        keep(
            conn,
            ADMINS[0],
            retrain_id,
            reason="the new version loses the likeness",
            app_row=current_row(conn, user_id),
        )
    assert app_row(world, user_id) == before
    with world.engine.begin() as conn, pytest.raises(Conflict, match="already kept"):
        promote(conn, ADMINS[1], retrain_id, shown=_preview(world, retrain_id), reason="x")

    def stale_finding() -> Any:
        row = app_row(world, user_id)
        fields = {name: row.get(name) for name in AppRow.__dataclass_fields__}
        app = AppRow(**fields)  # type: ignore[arg-type]
        gateway = quick_gateway(world.sandbox_url)
        try:
            live = gather_live(
                app, app_engine=world.engine, ops_engine=world.engine, gateway=gateway
            )
        finally:
            gateway.close()
        found = diagnose_live(app, live).findings
        return next(finding for finding in found if finding.code == "STALE_VERSION")

    kept = stale_finding()
    assert kept.severity.value == "info"
    assert "Kept by decision #" in kept.title and "loses the likeness" in kept.title
    with world.engine.begin() as conn:  # the row changes: the finding is judged afresh
        conn.execute(
            text(
                "UPDATE user_models SET lora_weights_url = lora_weights_url || '?again'"
                " WHERE user_id = :user"
            ),
            {"user": user_id},
        )
    assert stale_finding().severity.value == "critical"


def test_promotion_refuses_a_row_changed_since_it_was_shown_and_non_admins(
    world: World, uploads: Uploads
) -> None:
    user_id = world.users.stale_user
    retrain_id, before = _succeeded(world, uploads)
    gate_ended(world, retrain_id)
    shown = _preview(world, retrain_id)
    with world.engine.begin() as conn:
        conn.execute(
            # The app started a training of its own meanwhile.
            text("UPDATE user_models SET training_status = 'training' WHERE user_id = :user"),
            {"user": user_id},
        )
    with world.engine.begin() as conn, pytest.raises(Conflict, match="changed"):
        promote(conn, ADMINS[0], retrain_id, shown=shown, reason="ok")
    for role in (Role.SUPPORT, Role.PRODUCT):
        with world.engine.begin() as conn, pytest.raises(PermissionDenied):
            promote(
                conn,
                Actor(f"{role.value}@staff.test", role),
                retrain_id,
                shown=_preview(world, retrain_id),
                reason="ok",
            )
    assert app_row(world, user_id)["replicate_version_id"] == before["replicate_version_id"]
    assert retrain_row(world, retrain_id).decision is None


def test_open_steps_name_the_step_each_open_retrain_needs(world: World, uploads: Uploads) -> None:
    retrain_id = open_checked_draft(world, world.users.stale_user, uploads)
    with world.engine.connect() as conn:
        assert all(found != retrain_id for _, found in open_steps(conn))  # checked: a person's
    confirm_draft(world, ADMINS[0], retrain_id)
    with world.engine.begin() as conn:
        assert ("submit", retrain_id) in open_steps(conn)
        conn.execute(
            text(
                "UPDATE ops.retrains SET status = 'creating', lease_owner = 'w',"
                " lease_expires_at = now() + interval '1 hour' WHERE id = :id"
            ),
            {"id": retrain_id},
        )
        assert all(found != retrain_id for _, found in open_steps(conn))  # its lease is live
        conn.execute(
            text(
                "UPDATE ops.retrains SET lease_expires_at = now() - interval '1 s' WHERE id = :id"
            ),
            {"id": retrain_id},
        )
        assert ("submit", retrain_id) in open_steps(conn)  # lapsed: searched for
        conn.execute(
            text("UPDATE ops.retrains SET status = 'processing' WHERE id = :id"), {"id": retrain_id}
        )
        assert ("follow", retrain_id) in open_steps(conn)
        conn.execute(
            text("UPDATE ops.retrains SET status = 'failed', active = false WHERE id = :id"),
            {"id": retrain_id},
        )
        assert all(found != retrain_id for _, found in open_steps(conn))
