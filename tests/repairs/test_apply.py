"""apply_repair and undo_repair on a real PostgreSQL row (rolled back per test).

Every test starts from one broken user of ``world.CASES`` stored as the app left it.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, delete, text, update
from sqlalchemy.exc import ProgrammingError

from core import audit
from core.drift.findings import json_safe
from core.errors import Conflict, DataRejected, NotFound, PermissionDenied
from core.repairs import apply_repair, plan_repair, read_row, undo_repair
from core.roles import Actor
from core.schema import audit_log, user_models, users
from tests.drift.builders import TRIGGER, USER_ID
from tests.repairs.world import (
    ADMIN,
    CASES,
    OTHER_USER_ID,
    PRODUCT,
    SUPPORT,
    Case,
    store_other_user,
    store_user,
)
from tests.workers import wait_for

REASON = "Ticket 4711: images got worse after retraining"
TRIGGER_CASE = next(case for case in CASES if case.name == "trigger word overwritten")
STALE_CASE = next(case for case in CASES if case.name == "stale version")


def without_updated_at(row: dict[str, Any]) -> dict[str, Any]:
    return {column: value for column, value in row.items() if column != "updated_at"}


def audit_count(conn: Connection) -> int:
    return audit.count_records(conn, user_id=USER_ID)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_apply_writes_the_plan_and_audits_it_then_undo_restores(
    conn: Connection, case: Case
) -> None:
    original = store_user(conn, case.facts)
    plan = plan_repair(case.action, case.facts, original)

    repair_id = apply_repair(conn, actor=ADMIN, plan=plan, reason=f"  {REASON} ")

    repaired = read_row(conn, USER_ID)
    assert {column: repaired[column] for column in plan.columns} == dict(case.expected_after)
    untouched = set(original) - set(plan.columns) - {"updated_at"}
    assert {c: repaired[c] for c in untouched} == {c: original[c] for c in untouched}
    (record,) = audit.list_records(conn, user_id=USER_ID)
    assert record.id == repair_id
    assert (record.actor_email, record.actor_role) == (ADMIN.email, "admin")
    assert record.action == f"repair:{case.action.value}"
    assert record.reason == REASON
    assert record.before == json_safe(plan.before)
    assert record.after == json_safe(plan.after)
    assert record.details is not None
    assert record.details["explanation"] == plan.explanation
    assert record.details["evidence"] == dict(plan.evidence)

    undo_id = undo_repair(conn, actor=ADMIN, audit_id=repair_id, reason="Wrong user")

    assert without_updated_at(read_row(conn, USER_ID)) == without_updated_at(original)
    undo = audit.list_records(conn, user_id=USER_ID)[0]
    assert undo.id == undo_id
    assert undo.action == f"undo:{case.action.value}"
    assert undo.details == {"undoes": repair_id}
    assert (undo.before, undo.after) == (record.after, record.before)
    assert undo.reason == "Wrong user"

    with pytest.raises(Conflict, match=f"already undone by audit record #{undo_id}"):
        undo_repair(conn, actor=ADMIN, audit_id=repair_id, reason="again")
    assert audit_count(conn) == 2


@pytest.mark.parametrize("actor", [SUPPORT, PRODUCT], ids=lambda actor: actor.role.value)
def test_only_admins_repair_and_undo(conn: Connection, actor: Actor) -> None:
    original = store_user(conn, STALE_CASE.facts)
    plan = plan_repair(STALE_CASE.action, STALE_CASE.facts, original)
    with pytest.raises(PermissionDenied, match="repair a user's model row"):
        apply_repair(conn, actor=actor, plan=plan, reason=REASON)
    assert read_row(conn, USER_ID) == original
    assert audit_count(conn) == 0

    repair_id = apply_repair(conn, actor=ADMIN, plan=plan, reason=REASON)
    repaired = read_row(conn, USER_ID)
    with pytest.raises(PermissionDenied):
        undo_repair(conn, actor=actor, audit_id=repair_id, reason=REASON)
    assert read_row(conn, USER_ID) == repaired
    assert audit_count(conn) == 1


@pytest.mark.parametrize("reason", ["", "   \n"])
def test_a_reason_is_required(conn: Connection, reason: str) -> None:
    original = store_user(conn, STALE_CASE.facts)
    plan = plan_repair(STALE_CASE.action, STALE_CASE.facts, original)
    with pytest.raises(DataRejected, match="Give a reason"):
        apply_repair(conn, actor=ADMIN, plan=plan, reason=reason)
    repair_id = apply_repair(conn, actor=ADMIN, plan=plan, reason=REASON)
    with pytest.raises(DataRejected, match="Give a reason"):
        undo_repair(conn, actor=ADMIN, audit_id=repair_id, reason=reason)
    assert audit_count(conn) == 1


def test_a_row_changed_since_the_preview_is_not_overwritten(conn: Connection) -> None:
    original = store_user(conn, STALE_CASE.facts)
    plan = plan_repair(STALE_CASE.action, STALE_CASE.facts, original)
    # Meanwhile the app's poll of a new training writes another version.
    conn.execute(
        update(user_models)
        .where(user_models.c.user_id == USER_ID)
        .values(replicate_version_id="f" * 64)
    )
    changed = read_row(conn, USER_ID)
    with pytest.raises(
        Conflict,
        match=r"The row changed since the preview: "
        r"replicate_version_id is now 'f{64}'.*Preview",
    ):
        apply_repair(conn, actor=ADMIN, plan=plan, reason=REASON)
    assert read_row(conn, USER_ID) == changed
    assert audit_count(conn) == 0


def test_undo_refuses_when_the_row_changed_after_the_repair(conn: Connection) -> None:
    original = store_user(conn, STALE_CASE.facts)
    repair_id = apply_repair(
        conn,
        actor=ADMIN,
        reason=REASON,
        plan=plan_repair(STALE_CASE.action, STALE_CASE.facts, original),
    )
    conn.execute(
        update(user_models)
        .where(user_models.c.user_id == USER_ID)
        .values(lora_weights_url="https://replicate.delivery/pbxt/x/flux-lora.tar")
    )
    changed = read_row(conn, USER_ID)
    with pytest.raises(Conflict, match=f"since repair #{repair_id}: lora_weights_url is now"):
        undo_repair(conn, actor=ADMIN, audit_id=repair_id, reason=REASON)
    assert read_row(conn, USER_ID) == changed
    assert audit_count(conn) == 1


def test_a_trigger_word_held_by_another_user_is_a_conflict(conn: Connection) -> None:
    original = store_user(conn, TRIGGER_CASE.facts)
    store_other_user(conn, trigger_word=TRIGGER)
    plan = plan_repair(TRIGGER_CASE.action, TRIGGER_CASE.facts, original)
    with pytest.raises(Conflict, match=f"{TRIGGER!r} is held by user 45038279"):
        apply_repair(conn, actor=ADMIN, plan=plan, reason=REASON)
    assert read_row(conn, USER_ID) == original
    assert audit_count(conn) == 0


def test_a_unique_violation_past_the_check_writes_nothing(
    conn: Connection, db_engine: Engine
) -> None:
    """Another session takes the trigger word between the check and the UPDATE: produced
    for real with a second transaction that inserts the word and commits only once the
    repair's UPDATE waits on the unique index."""
    original = store_user(conn, TRIGGER_CASE.facts)
    plan = plan_repair(TRIGGER_CASE.action, TRIGGER_CASE.facts, original)
    backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    outcome: list[BaseException | int] = []
    with db_engine.connect() as other:
        taking = other.begin()
        store_other_user(other, trigger_word=TRIGGER)  # not committed: the check can't see it

        def repair() -> None:
            try:
                outcome.append(apply_repair(conn, actor=ADMIN, plan=plan, reason=REASON))
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=repair)
        worker.start()
        try:
            wait_for(
                lambda: _waits_on_a_lock(db_engine, backend) or not worker.is_alive(),
                timeout=30,
                what="the repair's UPDATE to wait on the other session's row",
            )
            taking.commit()
            worker.join(timeout=30)
        finally:
            if taking.is_active:
                taking.rollback()
    try:
        (raised,) = outcome
        assert isinstance(raised, Conflict) and "is held by another user" in str(raised)
        assert read_row(conn, USER_ID) == original
        assert audit_count(conn) == 0
    finally:
        with db_engine.begin() as cleanup:
            cleanup.execute(delete(user_models).where(user_models.c.user_id == OTHER_USER_ID))
            cleanup.execute(delete(users).where(users.c.id == OTHER_USER_ID))


def _waits_on_a_lock(engine: Engine, backend: int) -> bool:
    with engine.connect() as probe:
        return (
            probe.execute(
                text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": backend},
            ).scalar_one_or_none()
            is True
        )


def test_undo_onto_a_trigger_word_taken_since_is_a_conflict(conn: Connection) -> None:
    original = store_user(conn, TRIGGER_CASE.facts)
    repair_id = apply_repair(
        conn,
        actor=ADMIN,
        reason=REASON,
        plan=plan_repair(TRIGGER_CASE.action, TRIGGER_CASE.facts, original),
    )
    store_other_user(conn, trigger_word=original["trigger_word"])
    with pytest.raises(Conflict, match="'user5040000c_v2' is held by user 45038279"):
        undo_repair(conn, actor=ADMIN, audit_id=repair_id, reason=REASON)
    assert read_row(conn, USER_ID)["trigger_word"] == TRIGGER
    assert audit_count(conn) == 1


def test_the_row_and_its_audit_record_commit_together(conn: Connection) -> None:
    """The audit log refusing the record (a real trigger raising, inside this test's
    transaction) takes the repair back with it."""
    original = store_user(conn, STALE_CASE.facts)
    plan = plan_repair(STALE_CASE.action, STALE_CASE.facts, original)
    conn.execute(
        text(
            "CREATE FUNCTION pg_temp.audit_log_down() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$"
        )
    )
    conn.execute(
        text(
            "CREATE TRIGGER audit_log_down BEFORE INSERT ON ops.audit_log "
            "FOR EACH ROW EXECUTE FUNCTION pg_temp.audit_log_down()"
        )
    )
    with pytest.raises(ProgrammingError, match="audit log unavailable"):
        apply_repair(conn, actor=ADMIN, plan=plan, reason=REASON)
    assert read_row(conn, USER_ID) == original


def test_undo_only_undoes_repairs(conn: Connection) -> None:
    store_user(conn, STALE_CASE.facts)
    other = audit.record(
        conn,
        actor_email=ADMIN.email,
        actor_role=ADMIN.role,
        action="retrain:submit",
        target_user_id=USER_ID,
    )
    with pytest.raises(DataRejected, match="only repairs can be undone"):
        undo_repair(conn, actor=ADMIN, audit_id=other, reason=REASON)
    with pytest.raises(NotFound, match="no audit record #999999"):
        undo_repair(conn, actor=ADMIN, audit_id=999_999, reason=REASON)


def test_an_undo_cannot_itself_be_undone(conn: Connection) -> None:
    original = store_user(conn, STALE_CASE.facts)
    repair_id = apply_repair(
        conn,
        actor=ADMIN,
        reason=REASON,
        plan=plan_repair(STALE_CASE.action, STALE_CASE.facts, original),
    )
    undo_id = undo_repair(conn, actor=ADMIN, audit_id=repair_id, reason=REASON)
    with pytest.raises(DataRejected, match="'undo:repoint_latest', not a repair"):
        undo_repair(conn, actor=ADMIN, audit_id=undo_id, reason=REASON)


def test_read_row_of_a_user_who_never_trained(conn: Connection) -> None:
    with pytest.raises(NotFound, match="has no user_models row"):
        read_row(conn, "nobody")


def test_without_an_open_transaction_the_repair_commits(db_engine: Engine) -> None:
    # The console may hand over a fresh connection: the repair is then its own transaction.
    try:
        with db_engine.connect() as setup:
            original = store_user(setup, STALE_CASE.facts)
            setup.commit()
        plan = plan_repair(STALE_CASE.action, STALE_CASE.facts, original)
        with db_engine.connect() as console:
            repair_id = apply_repair(console, actor=ADMIN, plan=plan, reason=REASON)
            assert not console.in_transaction()
        with db_engine.connect() as reader:
            repaired = read_row(reader, USER_ID)
            assert (
                repaired["replicate_version_id"]
                == STALE_CASE.expected_after["replicate_version_id"]
            )
            assert [record.id for record in audit.list_records(reader, user_id=USER_ID)] == [
                repair_id
            ]
    finally:
        with db_engine.begin() as cleanup:
            cleanup.execute(delete(audit_log).where(audit_log.c.target_user_id == USER_ID))
            cleanup.execute(delete(users).where(users.c.id == USER_ID))
