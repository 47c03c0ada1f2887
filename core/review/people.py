"""Whom a review is about, from the app's ``users`` table: each reviewed user's email (the
review leads with it), and the user the Review page's filter names (an exact user id or
email). Both are ``core.users``' readings (``emails_of``, ``users_named``), the one
reading of users by email or id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from core.errors import DataRejected
from core.users import UserRow, emails_of, users_named

__all__ = ["Person", "chosen_user", "emails_of", "find_user"]


@dataclass(frozen=True)
class Person:
    """A user the review shows: the id votes are kept under, and the email when the app's
    ``users`` table has one (None for a user it no longer holds)."""

    user_id: str
    email: str | None


def chosen_user(rows: Sequence[UserRow], text: str) -> Person | None:
    """Among the search's rows, the user ``text`` names exactly: their user id, or else
    their email (any case, spaces around it ignored). None when none does; a
    ``DataRejected`` naming the ids when one email belongs to several users."""
    wanted = text.strip()
    for row in rows:
        if row.user_id == wanted:
            return Person(row.user_id, row.email)
    by_email = sorted(
        (row for row in rows if row.email and row.email.strip().lower() == wanted.lower()),
        key=lambda row: row.user_id,
    )
    if len(by_email) > 1:
        ids = ", ".join(row.user_id for row in by_email)
        raise DataRejected(
            f"{len(by_email)} users have the email {wanted!r} ({ids}): give the user id."
        )
    return Person(by_email[0].user_id, by_email[0].email) if by_email else None


def find_user(conn: Connection, text: str) -> Person:
    """The user a filter names: exactly a user id or an email. A text the app's users do
    not match is taken as a user id as typed, since votes outlive a deleted user's row."""
    wanted = text.strip()
    return chosen_user(users_named(conn, wanted), wanted) or Person(wanted, None)
