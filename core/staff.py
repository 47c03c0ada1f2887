"""The console's staff list (``ops.staff``): who may use the console, with which role.

Read-only here; changing it is an audited admin action (``Permission.MANAGE_STAFF``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from core.errors import PermissionDenied
from core.roles import Actor, Role
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


# DEMO's built-in staff, one person per role, used while ops.staff is empty.
DEMO_STAFF = (
    StaffMember("support@demo.sselfie.test", Role.SUPPORT),
    StaffMember("product@demo.sselfie.test", Role.PRODUCT),
    StaffMember("admin@demo.sselfie.test", Role.ADMIN),
)


def staff_actor(conn: Connection, email: str, *, demo: bool) -> Actor:
    """The staff member ``email`` acts as (the command line's ``--actor``): their role in
    ops.staff, or in DEMO's built-in list while that table is empty. ``PermissionDenied``
    for anyone else."""
    wanted = email.strip().lower()
    members = list_staff(conn) or (list(DEMO_STAFF) if demo else [])
    found = next((member for member in members if member.email == wanted), None)
    if found is None:
        known = ", ".join(member.email for member in members[:6]) or "nobody yet"
        raise PermissionDenied(
            f"{email!r} is not on the console's staff list (ops.staff: {known}); an admin "
            "adds people there."
        )
    return Actor(found.email, found.role)
