"""Who is using this session: secrets, ``st.user``, the acting staff member, the sidebar.

The acting ``Actor`` is kept in ``st.session_state`` for later write actions, which check
the role again in core (``core.roles.require``): hiding a control is not access control.

A LIVE login ends after ``SESSION_MAX_AGE_SECONDS`` or when the IdP's ID token expires
(``access.session_end``): the console then shows the login page saying so, and "Log in
again" replaces the old login with a new one. It does not call ``st.logout()`` by itself:
that sends the browser at once to the IdP's end-session page, where the IdP has one
(ending the person's session there, not only the console's), and then to a fresh session,
so the page could never say why. The login page offers "Log out" for that.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from core.config import Mode
from core.roles import Actor, Role
from core.staff import StaffMember
from core.text import inert
from dashboard import access
from dashboard.messages import said

ACTOR_KEY = "actor"
ACTING_AS_KEY = "acting_as"
_MODE_BADGES = {
    Mode.DEMO: ("DEMO — sandbox data", "orange", ":material/science:"),
    Mode.LIVE: ("LIVE — production data", "red", ":material/bolt:"),
}


def secrets_section(name: str) -> Mapping[str, Any] | None:
    """A top-level table of the secrets, or None (also when there is no secrets file)."""
    try:
        section = st.secrets.get(name)
    except StreamlitSecretNotFoundError:
        return None
    return section if isinstance(section, Mapping) else None


def show_mode_badge(mode: Mode) -> None:
    label, color, icon = _MODE_BADGES[mode]
    st.sidebar.badge(label, color=color, icon=icon)  # type: ignore[arg-type]


def logged_in_email() -> str | None:
    """The IdP-verified email of this session, or None when logged out."""
    if not st.user.is_logged_in:
        return None
    return access.verified_email(st.user.to_dict())


def show_login(auth_section: Mapping[str, Any], *, ended: str | None = None) -> None:
    """The only thing a logged-out visitor sees in LIVE; ``ended``: why their login ended."""
    provider = access.login_provider(auth_section)
    st.title("SSELFIE console")
    if ended is not None:
        st.warning(ended, icon=":material/timer_off:")
    st.info("Staff only. Log in with your company account to continue.")
    label = "Log in" if ended is None else "Log in again"
    if st.button(label, type="primary", key="login", icon=":material/login:"):
        if provider is None:
            st.login()
        else:
            st.login(provider)
    if ended is not None:
        st.button("Log out", key="logout", on_click=st.logout, icon=":material/logout:")


def session_ended(max_age_seconds: float) -> str | None:
    """Why this session's login may no longer be used (for the login page), or None."""
    return access.session_end(st.user.to_dict(), max_age_seconds=max_age_seconds, now=time.time())


# How often an open page looks whether its login has ended. A page's own fragments rerun
# (their polling, a button inside one) without the entry, so without this a tab left open
# on, say, a retrain's progress would go on working past the end of its login.
SESSION_WATCH_SECONDS = 15.0


def watch_session_end(max_age_seconds: float) -> None:
    """Run the whole console again once this login has ended: it then shows the login page."""
    left = access.session_left(st.user.to_dict(), max_age_seconds=max_age_seconds, now=time.time())
    if left is None:
        return

    @st.fragment(run_every=min(max(left, 1.0), SESSION_WATCH_SECONDS))
    def watch() -> None:
        if session_ended(max_age_seconds) is not None:
            st.rerun(scope="app")

    with st.sidebar:
        watch()


def show_no_access(email: str) -> None:
    """The only thing a logged-in email without a role sees."""
    st.title("No access")
    shown = inert(email) if email else "your account (the identity provider sent no email)"
    st.error(
        f"{shown} is not on the console's staff list. Ask an admin to add you to "
        "[roles] in the secrets or to ops.staff, then log in again."
    )
    st.button("Log out", key="logout", on_click=st.logout, icon=":material/logout:")


def show_signed_in(actor: Actor) -> None:
    st.sidebar.caption(f"Signed in as **{inert(actor.email)}** ({actor.role.value})")
    st.sidebar.button("Log out", key="logout", on_click=st.logout, icon=":material/logout:")


# The picker's choice, kept outside the widget: Streamlit drops a widget's state when a
# page calls st.switch_page mid-run, which silently turned an acting admin into support.
ACTING_AS_CHOSEN_KEY = "acting_as_chosen"
# ...and in the URL (?as=email), so a reload, a bookmark or a copied link keeps it: session
# state is per tab and lost on reload, which turned an admin into support on F5.
ACTING_AS_PARAM = "as"


def _remember_choice() -> None:
    st.session_state[ACTING_AS_CHOSEN_KEY] = st.session_state.get(ACTING_AS_KEY)


def pick_demo_actor(members: Sequence[StaffMember]) -> Actor:
    """DEMO's "Acting as" picker in the sidebar; there is no login in DEMO."""
    options = [f"{member.email} ({member.role.value})" for member in members]
    roles = dict(zip(options, members, strict=True))
    by_email = {member.email: option for option, member in roles.items()}
    chosen = st.session_state.get(ACTING_AS_CHOSEN_KEY)
    asked = str(st.query_params.get(ACTING_AS_PARAM, "")).strip()
    refused = False
    if chosen not in roles:
        chosen = by_email.get(asked.lower())
        refused = bool(asked) and chosen is None
    if chosen in roles:
        st.session_state[ACTING_AS_KEY] = chosen
    choice = st.sidebar.selectbox(
        "Acting as",
        options,
        key=ACTING_AS_KEY,
        on_change=_remember_choice,
        help="DEMO has no login: pick a staff member to see the console with their role "
        "(kept in the address as ?as=, so a reload or a copied link keeps it).",
    )
    member = roles[choice] if choice in roles else members[0]
    if refused:
        st.warning(
            f"Nobody called '{said(asked)}' is on DEMO's staff list, so the link's ?as= "
            f"was not used: acting as {inert(member.email)} ({member.role.value}) instead. "
            "Pick someone else under 'Acting as' in the sidebar.",
            icon=":material/person_off:",
        )
    if st.query_params.get(ACTING_AS_PARAM) != member.email:
        st.query_params[ACTING_AS_PARAM] = member.email
    return Actor(member.email, member.role)


def remember_actor(actor: Actor) -> None:
    st.session_state[ACTOR_KEY] = actor


def forget_actor() -> None:
    """This session acts as nobody any more (its login ended). A tab that was showing the
    console loses its page links too: the browser keeps drawing the last navigation it was
    sent, so it gets one with no page in it (a session that never had one gets none, as a
    logged-out visitor: asked for a page by address, it would say "page not found")."""
    if st.session_state.pop(ACTOR_KEY, None) is not None:
        st.navigation([st.Page(_no_page, title="Log in", default=True)], position="hidden")


def _no_page() -> None:
    """Registered, never run: the login page is drawn by the entry itself."""


def current_actor() -> Actor:
    """The acting staff member, set by the entry before any page runs."""
    actor = st.session_state.get(ACTOR_KEY)
    if not isinstance(actor, Actor):
        raise RuntimeError("No actor in session_state: pages run only through dashboard/app.py.")
    return actor


def require_role_on_page(*roles: Role) -> Actor:
    """Stop a page whose role check fails (navigation already hides it; belt and braces)."""
    actor = current_actor()
    if actor.role not in roles:
        st.error(f"{inert(actor.email)} ({actor.role.value}) cannot open this page.")
        st.stop()
    return actor
