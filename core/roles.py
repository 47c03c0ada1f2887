"""Staff roles, what each may do, and the check every write or paid action calls.

Pages hide what a role may not use, but hiding is not access control (a hidden page is
reachable by URL): core functions that write or spend call ``require`` themselves.

    permission     support  product  admin
    read              x        x       x
    compare           x        x       x     (within the person's daily budget)
    review_vote                x       x
    repair                             x
    retrain                            x
    manage_staff                       x
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.errors import PermissionDenied


class Role(StrEnum):
    """A staff member's role (also the values allowed in ``ops.staff.role``)."""

    SUPPORT = "support"
    PRODUCT = "product"
    ADMIN = "admin"


class Permission(StrEnum):
    """Something a role may do; ``PERMISSIONS`` says who and why."""

    READ = "read"
    COMPARE = "compare"
    REVIEW_VOTE = "review_vote"
    REPAIR = "repair"
    RETRAIN = "retrain"
    MANAGE_STAFF = "manage_staff"


@dataclass(frozen=True)
class PermissionRule:
    """One row of the permission table: who may, the phrase for denials, and help."""

    permission: Permission
    roles: frozenset[Role]
    what: str
    help: str


_EVERYONE = frozenset(Role)
PERMISSIONS: tuple[PermissionRule, ...] = (
    PermissionRule(
        Permission.READ,
        _EVERYONE,
        "view users, models, findings and the audit log",
        "See every page: users, model rows, trainings, drift findings, comparisons, audit log.",
    ),
    PermissionRule(
        Permission.COMPARE,
        _EVERYONE,
        "run side-by-side comparisons",
        "Run paid side-by-side generations, up to the person's daily budget.",
    ),
    PermissionRule(
        Permission.REVIEW_VOTE,
        frozenset({Role.PRODUCT, Role.ADMIN}),
        "vote in blind reviews",
        "Vote in blind pairwise reviews of model versions.",
    ),
    PermissionRule(
        Permission.REPAIR,
        frozenset({Role.ADMIN}),
        "repair a user's model row",
        "Write a user's model row (version, trigger word, weights, status); audited.",
    ),
    PermissionRule(
        Permission.RETRAIN,
        frozenset({Role.ADMIN}),
        "start a guided retrain",
        "Submit a paid retrain for a user through the wizard; audited.",
    ),
    PermissionRule(
        Permission.MANAGE_STAFF,
        frozenset({Role.ADMIN}),
        "change staff roles",
        "Add or remove staff and change their roles in ops.staff; audited.",
    ),
)
_RULES: dict[Permission, PermissionRule] = {rule.permission: rule for rule in PERMISSIONS}


@dataclass(frozen=True)
class Actor:
    """The staff member acting: audit identity (email, lower-cased) and role."""

    email: str
    role: Role

    def __post_init__(self) -> None:
        email = self.email.strip().lower()
        if "@" not in email:
            raise ValueError(f"Actor email {self.email!r} is not an email address.")
        object.__setattr__(self, "email", email)
        object.__setattr__(self, "role", Role(self.role))


def permissions_for(role: Role) -> frozenset[Permission]:
    """Everything ``role`` may do."""
    return frozenset(rule.permission for rule in PERMISSIONS if role in rule.roles)


def allowed(actor: Actor, permission: Permission) -> bool:
    """Whether ``actor`` may do ``permission`` (for showing or hiding controls)."""
    return actor.role in _RULES[permission].roles


def require(actor: Actor, *requirements: Role | Permission) -> None:
    """Raise PermissionDenied unless ``actor`` meets ``requirements``.

    Roles given are alternatives (the actor's role must be one of them); permissions given
    must all be held. ``require(actor, Permission.REPAIR)``, ``require(actor, Role.ADMIN)``.
    """
    if not requirements:
        raise TypeError("require() needs at least one Role or Permission.")
    roles = [item for item in requirements if isinstance(item, Role)]
    if roles and actor.role not in roles:
        wanted = " or ".join(role.value for role in roles)
        raise PermissionDenied(
            f"{actor.email} ({actor.role.value}) may not do this: it needs the {wanted} role. "
            "Ask an admin to do it or to change your role."
        )
    for permission in (item for item in requirements if isinstance(item, Permission)):
        rule = _RULES[permission]
        if actor.role not in rule.roles:
            holders = " or ".join(role.value for role in Role if role in rule.roles)
            raise PermissionDenied(
                f"{actor.email} ({actor.role.value}) may not {rule.what}: that needs the "
                f"{holders} role. Ask an admin to do it or to change your role."
            )
