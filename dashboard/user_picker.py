"""One box to choose a user by email or by id, for every page that works on one user.

What is typed is looked up with the Users page's own search (``core.users.search_users``)
and kept only where it is exactly the user's id or, in any case, their email: a part of
an email, a trigger word or a model id picks nobody here (the Users page searches those).
Once one user is found the box says who it is ("email · id") and the address keeps their
id (``?user=<id>``), so a reload or a copied link opens the same user; nothing found, or
several users with that email, is said plainly and picks nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

from core.text import inert
from core.users import MAX_PAGE_SIZE, UserRow, search_users
from dashboard.resources import read_only, runtime

QUERY_KEY = "user"


@dataclass(frozen=True)
class PickedUser:
    user_id: str
    email: str | None

    @property
    def label(self) -> str:
        """``email · id`` (the id alone when the user has no email)."""
        return f"{self.email} · {self.user_id}" if self.email else self.user_id


def exact_matches(rows: Sequence[UserRow], typed: str) -> tuple[PickedUser, ...]:
    """The users among ``rows`` whose id is ``typed`` or whose email is ``typed`` in any
    case (pure: the search's rows in, the exact ones out, each once)."""
    wanted = typed.strip()
    folded = wanted.casefold()
    found = {
        row.user_id: PickedUser(row.user_id, row.email)
        for row in rows
        if row.user_id == wanted or (row.email is not None and row.email.casefold() == folded)
    }
    return tuple(found.values())


def find_users(typed: str) -> tuple[tuple[PickedUser, ...], int]:
    """The users ``typed`` names exactly, and how many users the search matched in all
    (emails containing it, trigger words, models…), to say why nobody was picked."""
    with read_only(runtime().engine) as conn:
        found = search_users(conn, query=typed, page_size=MAX_PAGE_SIZE)
    return exact_matches(found.rows, typed), found.total


def pick_user(*, key: str, label: str = "User (email or id)") -> PickedUser | None:
    """The box and what it found: the user, or None (with the reason shown) while nothing
    or several match. Starts from ``?user=`` and writes the user's id back there."""
    asked = st.query_params.get(QUERY_KEY, "")
    # The address is the truth when it changes (a link, a reload); what is typed stays.
    if st.session_state.get(f"{key}_address") != asked:
        st.session_state[key] = asked
        st.session_state[f"{key}_address"] = asked
    typed = str(st.text_input(label, key=key, placeholder="name@example.com or the app's user id"))
    typed = typed.strip()
    if not typed:
        return None
    if "\x00" in typed:
        st.error("An email or a user id is plain text.")
        return None
    with st.spinner("Looking the user up…"):
        matches, total = find_users(typed)
    if not matches:
        more = (
            f" {total} users' email, trigger word or model contain it: the Users page "
            "searches those."
            if total
            else ""
        )
        st.warning(
            f"No user has the email or id {inert(typed)}.{more}", icon=":material/person_off:"
        )
        return None
    if len(matches) > 1:
        st.warning(
            f"{len(matches)} users have the email {inert(typed)}; type the id of the one you "
            "mean:\n\n" + "\n".join(f"- {inert(match.label)}" for match in matches),
            icon=":material/group:",
        )
        return None
    (picked,) = matches
    st.caption(inert(picked.label))
    if asked != picked.user_id:
        st.query_params[QUERY_KEY] = picked.user_id
        st.session_state[f"{key}_address"] = picked.user_id
    return picked
