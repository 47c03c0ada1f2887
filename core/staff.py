"""The console's staff list (``ops.staff``): who may use the console, with which role.

Read-only here; changing it is an audited admin action (``Permission.MANAGE_STAFF``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from core.roles import Role
from core.schema import staff


@dataclass(frozen=True)
class StaffMember:
    """One row of ``ops.staff``; ``added_at`` is None for members not stored there."""

    email: str
    role: Role
    added_at: datetime | None = None


def list_staff(conn: Connection) -> list[StaffMember]:
    """Every staff member, by role (admin first) then email."""
    rows = conn.execute(
        select(staff.c.email, staff.c.role, staff.c.added_at).order_by(staff.c.email)
    ).all()
    order = {Role.ADMIN: 0, Role.PRODUCT: 1, Role.SUPPORT: 2}
    members = [StaffMember(row.email.strip().lower(), Role(row.role), row.added_at) for row in rows]
    return sorted(members, key=lambda member: (order[member.role], member.email))
