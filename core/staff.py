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


_ROLE_ORDER = {Role.ADMIN: 0, Role.PRODUCT: 1, Role.SUPPORT: 2}


def _by_role(members: list[StaffMember]) -> list[StaffMember]:
    """Admins first, then product, then support; by email within a role."""
    return sorted(members, key=lambda member: (_ROLE_ORDER[member.role], member.email))


def list_staff(conn: Connection) -> list[StaffMember]:
    """Every staff member, by role (admin first) then email."""
    rows = conn.execute(
        select(staff.c.email, staff.c.role, staff.c.added_at).order_by(staff.c.email)
    ).all()
    return _by_role(
        [StaffMember(row.email.strip().lower(), Role(row.role), row.added_at) for row in rows]
    )


# DEMO's built-in staff, one person per role, used while ops.staff is empty. DEMO's command
# lines act as its admin when no --actor is given.
DEMO_ADMIN = StaffMember("admin@demo.sselfie.test", Role.ADMIN)
DEMO_STAFF = (
    StaffMember("support@demo.sselfie.test", Role.SUPPORT),
    StaffMember("product@demo.sselfie.test", Role.PRODUCT),
    DEMO_ADMIN,
)


def staff_actor(conn: Connection, email: str, *, demo: bool) -> Actor:
    """The staff member ``email`` acts as (the command line's ``--actor``): their role in
    ops.staff, or in DEMO's built-in list while that table is empty. ``PermissionDenied``
    for anyone else, naming who is on the list with their roles (admins first). What
    the role then allows is for the action's own ``core.roles.require``."""
    wanted = email.strip().lower()
    stored = list_staff(conn)
    members = stored or (_by_role(list(DEMO_STAFF)) if demo else [])
    found = next((member for member in members if member.email == wanted), None)
    if found is None:
        source = "DEMO's built-in staff" if members and not stored else "ops.staff"
        known = ", ".join(f"{member.email} ({member.role.value})" for member in members[:6])
        raise PermissionDenied(
            f"{email!r} is not on the console's staff list ({source}: {known or 'nobody yet'});"
            " an admin adds people there."
        )
    return Actor(found.email, found.role)
