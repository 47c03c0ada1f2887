"""core.staff: reading ops.staff."""

from __future__ import annotations

from sqlalchemy import Connection, delete

from core.roles import Role
from core.schema import staff
from core.staff import list_staff


def test_staff_by_role_then_email(conn: Connection) -> None:
    conn.execute(delete(staff))
    conn.execute(
        staff.insert(),
        [
            {"email": "zed@x.test", "role": "support"},
            {"email": " Amy@X.test", "role": "support"},
            {"email": "boss@x.test", "role": "admin"},
            {"email": "pm@x.test", "role": "product"},
        ],
    )
    members = list_staff(conn)
    assert [(member.email, member.role) for member in members] == [
        ("boss@x.test", Role.ADMIN),
        ("pm@x.test", Role.PRODUCT),
        ("amy@x.test", Role.SUPPORT),
        ("zed@x.test", Role.SUPPORT),
    ]
    assert all(member.added_at is not None for member in members)


def test_empty_staff(conn: Connection) -> None:
    conn.execute(delete(staff))
    assert list_staff(conn) == []
