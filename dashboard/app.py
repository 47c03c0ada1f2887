"""SSELFIE console entry: settings, runtime, who is acting, and the pages for their role.

Run from the repository root: ``python -m streamlit run dashboard/app.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts only this folder on sys.path; the console imports `core` and `dashboard`.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from core.config import Mode, Settings, get_settings  # noqa: E402
from core.errors import DashboardError  # noqa: E402
from core.roles import Actor, Role  # noqa: E402
from dashboard import access, identity, loaders, messages, navigation, queue_status  # noqa: E402
from dashboard.resources import keep_worker_alive, load_runtime  # noqa: E402

st.set_page_config(page_title="SSELFIE console", page_icon=":material/face:", layout="wide")


def _live_actor(settings: Settings) -> Actor:
    """LIVE: login required, then a role from [roles] or ops.staff; else a dead end."""
    auth_section = identity.secrets_section("auth")
    problem = access.auth_problem(auth_section)
    if problem is not None:
        messages.error(problem)
        st.stop()
    assert auth_section is not None
    email = identity.logged_in_email()
    if email is None:
        identity.show_login(auth_section)
        st.stop()
    ended = identity.session_ended(settings.session_max_age_seconds)
    if ended is not None:
        identity.forget_actor()
        identity.show_login(auth_section, ended=ended)
        st.stop()
    role_map = access.parse_role_map(identity.secrets_section("roles"))
    load_runtime(settings)
    role = access.role_for(email, role_map=role_map, staff=loaders.staff_members())
    if role is None:
        identity.show_no_access(email)
        st.stop()
    actor = Actor(email, role)
    identity.show_signed_in(actor)
    identity.watch_session_end(settings.session_max_age_seconds)
    return actor


def _demo_on_loopback_only() -> None:
    """DEMO has no login: refuse to serve when Streamlit listens beyond this machine (the
    repository's .streamlit/config.toml binds to loopback only when run from its root)."""
    problem = access.demo_bind_problem(
        st.get_option("server.address"), app_path=str(Path(_ROOT) / "dashboard" / "app.py")
    )
    if problem is not None:
        st.error(problem, icon=":material/lan:")
        st.stop()


def main() -> None:
    try:
        settings = get_settings()
        identity.show_mode_badge(settings.mode)
        if settings.mode is Mode.LIVE:
            actor = _live_actor(settings)
        else:
            _demo_on_loopback_only()
            load_runtime(settings)
            keep_worker_alive(settings)
            actor = identity.pick_demo_actor(access.demo_staff(loaders.staff_members()))
    except DashboardError as exc:
        messages.error(exc)
        st.stop()
    identity.remember_actor(actor)
    if actor.role is Role.ADMIN:
        queue_status.sidebar()
    navigation_menu = st.navigation(navigation.pages_for(actor.role))
    navigation_menu.run()


# Streamlit runs this file as ``__main__``. A process that multiprocessing spawns while
# this file is the main module (an AppTest's process measuring photos) imports it as
# ``__mp_main__``: it must not start a console (a DEMO with the default data folder) there.
if __name__ == "__main__":
    main()
