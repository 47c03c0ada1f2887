"""One box to choose a user by email or by id, for every page that works on one user.

What is typed is looked up by ``core.users.users_named``: exactly the user's id or, in any
case, their email; a part of an email, a trigger word or a model id picks nobody here (the
Users page searches those, and the box says how many it would find).
Once one user is found the box says who it is ("email · id") and the address keeps their
id (``?user=<id>``), so a reload or a copied link opens the same user; nothing found, or
several users with that email, is said plainly and picks nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.text import inert
from core.users import search_users, users_named
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


def find_users(typed: str) -> tuple[tuple[PickedUser, ...], int]:
    """The users ``typed`` names exactly, and, when none, how many users the Users page's
    search would find (emails containing it, trigger words, models…), to say where to look."""
    with read_only(runtime().engine) as conn:
        named = users_named(conn, typed)
        total = 0 if named else search_users(conn, query=typed, page_size=1).total
    return tuple(PickedUser(row.user_id, row.email) for row in named), total


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
