"""The audit log (real ops.audit_log, rolled back per test) and role checks."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from core import audit
from core.errors import PermissionDenied
from core.roles import PERMISSIONS, Actor, Permission, Role, allowed, permissions_for, require
from core.schema import audit_log, staff

ADMIN = Actor("Ada@Example.test", Role.ADMIN)
SUPPORT = Actor("sam@example.test", Role.SUPPORT)
PRODUCT = Actor("pat@example.test", Role.PRODUCT)


def test_record_then_list_round_trips_a_repair(conn: Connection) -> None:
    before_row = {
        "replicate_version_id": "sandrasocial/user-5040000c-selfie-lora:" + "a" * 64,
        "lora_scale": Decimal("0.9"),
        "completed_at": datetime(2025, 1, 2, 3, 4, 5),
        "is_test": False,
    }
    record_id = audit.record(
        conn,
        actor_email=ADMIN.email,
        actor_role=ADMIN.role,
        action="repair.version",
        target_user_id="5040000c-5ce6-4114-8319-6ec1a632f749",
        before=before_row,
        after={**before_row, "replicate_version_id": "a" * 64},
        reason="  stored owner/name:hash  ",
        details={"finding": "VERSION_FORMAT", "seeds": (1, 2)},
    )
    (found,) = audit.list_records(conn)
    assert found.id == record_id
    assert found.actor_email == "ada@example.test"
    assert found.actor_role == "admin"
    assert found.action == "repair.version"
    assert found.target_user_id == "5040000c-5ce6-4114-8319-6ec1a632f749"
    assert found.before is not None and found.after is not None
    assert found.before["lora_scale"] == "0.9"
    assert found.before["completed_at"] == "2025-01-02T03:04:05"
    assert found.before["is_test"] is False
    assert found.after["replicate_version_id"] == "a" * 64
    assert found.reason == "stored owner/name:hash"
    assert found.details == {"finding": "VERSION_FORMAT", "seeds": [1, 2]}
    assert found.at.tzinfo is not None
    assert abs((datetime.now(UTC) - found.at).total_seconds()) < 60
    with pytest.raises(AttributeError):
        found.action = "changed"  # type: ignore[misc]


def test_list_filters_orders_and_pages(conn: Connection) -> None:
    ids = [
        audit.record(conn, actor_email=SUPPORT.email, actor_role="support", action="compare.run",
                     target_user_id="u1"),
        audit.record(conn, actor_email=ADMIN.email, actor_role="admin", action="repair.version",
                     target_user_id="u1"),
        audit.record(conn, actor_email=ADMIN.email, actor_role="admin", action="retrain.submit",
                     target_user_id="u2"),
    ]  # fmt: skip
    assert [r.id for r in audit.list_records(conn)] == ids[::-1]
    assert [r.id for r in audit.list_records(conn, actor="ADA@example.test ")] == ids[:0:-1]
    assert [r.id for r in audit.list_records(conn, action="compare.run")] == [ids[0]]
    assert [r.id for r in audit.list_records(conn, user_id="u1")] == [ids[1], ids[0]]
    assert [r.id for r in audit.list_records(conn, actor=ADMIN.email, user_id="u1")] == [ids[1]]
    assert [r.id for r in audit.list_records(conn, limit=1, offset=1)] == [ids[1]]
    assert audit.count_records(conn) == 3
    assert audit.count_records(conn, actor=ADMIN.email) == 2
    assert audit.list_records(conn, user_id="nobody") == []
    assert audit.distinct_actions(conn) == ["compare.run", "repair.version", "retrain.submit"]


def test_record_joins_the_callers_transaction(conn: Connection) -> None:
    kept = audit.record(conn, actor_email="a@x.test", actor_role="admin", action="kept")
    savepoint = conn.begin_nested()
    audit.record(conn, actor_email="a@x.test", actor_role="admin", action="rolled.back")
    savepoint.rollback()
    assert [r.id for r in audit.list_records(conn)] == [kept]


def test_record_refuses_bad_input(conn: Connection) -> None:
    with pytest.raises(ValueError, match="not a valid Role"):
        audit.record(conn, actor_email="a@x.test", actor_role="owner", action="x")
    with pytest.raises(ValueError, match="email and an action"):
        audit.record(conn, actor_email=" ", actor_role="admin", action="x")
    with pytest.raises(TypeError, match="Cannot store bytes"):
        audit.record(conn, actor_email="a@x.test", actor_role="admin", action="x",
                     details={"zip": b"PK"})  # fmt: skip
    with pytest.raises(ValueError, match="limit"):
        audit.list_records(conn, limit=0)
    assert conn.execute(select(audit_log)).all() == []


def test_staff_roles_are_checked_by_the_database(conn: Connection) -> None:
    conn.execute(insert(staff).values(email="ada@example.test", role="admin"))
    with pytest.raises(IntegrityError), conn.begin_nested():
        conn.execute(insert(staff).values(email="eve@example.test", role="owner"))
    row = conn.execute(select(staff)).one()
    assert row.role == "admin" and row.added_at.tzinfo is not None


def test_permission_table_follows_the_product_roles() -> None:
    assert permissions_for(Role.SUPPORT) == {Permission.READ, Permission.COMPARE}
    assert permissions_for(Role.PRODUCT) == {
        Permission.READ,
        Permission.COMPARE,
        Permission.REVIEW_VOTE,
    }
    assert permissions_for(Role.ADMIN) == set(Permission)
    assert {rule.permission for rule in PERMISSIONS} == set(Permission)
    assert all(rule.help and rule.what for rule in PERMISSIONS)
    assert allowed(PRODUCT, Permission.REVIEW_VOTE)
    assert not allowed(SUPPORT, Permission.REVIEW_VOTE)


@pytest.mark.parametrize(
    ("actor", "permission", "phrase"),
    [
        (SUPPORT, Permission.REPAIR, "may not repair a user's model row: that needs the admin"),
        (PRODUCT, Permission.RETRAIN, "may not start a guided retrain: that needs the admin"),
        (SUPPORT, Permission.REVIEW_VOTE, "may not vote in blind reviews: that needs the product"),
    ],
)
def test_require_denies_with_a_clear_message(
    actor: Actor, permission: Permission, phrase: str
) -> None:
    with pytest.raises(PermissionDenied) as caught:
        require(actor, permission)
    message = str(caught.value)
    assert actor.email in message
    assert f"({actor.role.value})" in message
    assert phrase in message


def test_require_allows_and_handles_roles() -> None:
    require(ADMIN, Permission.REPAIR, Permission.RETRAIN)
    require(SUPPORT, Permission.READ, Permission.COMPARE)
    require(PRODUCT, Role.PRODUCT, Role.ADMIN)
    with pytest.raises(PermissionDenied, match="needs the product or admin role"):
        require(SUPPORT, Role.PRODUCT, Role.ADMIN)
    with pytest.raises(PermissionDenied, match="repair"):
        require(PRODUCT, Role.PRODUCT, Permission.REPAIR)
    with pytest.raises(TypeError):
        require(ADMIN)


def test_actor_is_normalised_and_validated() -> None:
    assert ADMIN.email == "ada@example.test"
    assert Actor("x@y.test", "product").role is Role.PRODUCT  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an email"):
        Actor("nobody", Role.SUPPORT)
    with pytest.raises(ValueError):
        Actor("x@y.test", "owner")  # type: ignore[arg-type]
