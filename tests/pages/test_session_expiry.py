"""LIVE: a login ends after SESSION_MAX_AGE_SECONDS or when its ID token expires.

``st.user`` holds the ID token's claims, ``iat`` (the login) and ``exp`` among them; the
fake users here carry them as a real login does. A session whose login has ended gets the
login page saying why, acts as nobody, and reaches no page."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.pages.conftest import EMAIL_OF, new_app, open_page, texts
from tests.user_world import UserWorld

HOUR = 3600
DEFAULT_MAX_AGE = 8 * HOUR


def _logged_in(role: str, *, logged_in_ago: float, expires_in: float) -> AppTest:
    """The console for ``role``, whose IdP issued the ID token ``logged_in_ago`` seconds ago
    and says it expires in ``expires_in`` seconds."""
    now = time.time()
    at = new_app(email=EMAIL_OF[role])
    at.user.update(iat=int(now - logged_in_ago), exp=int(now + expires_in))
    return at


def _sidebar(at: AppTest) -> str:
    return "\n".join(str(element.value) for element in at.sidebar.caption)


def _is_the_ended_login_page(at: AppTest, reason: str) -> None:
    assert not at.exception, at.exception
    assert reason in "\n".join(str(element.value) for element in at.warning)
    assert "Staff only" in texts(at)
    assert at.button(key="login").label == "Log in again"
    assert at.button(key="logout").label == "Log out"
    assert "actor" not in at.session_state
    assert "Signed in as" not in _sidebar(at)
    assert not at.dataframe


@pytest.mark.usefixtures("live_env")
def test_a_login_older_than_the_max_age_gets_the_login_page_saying_so() -> None:
    at = _logged_in("admin", logged_in_ago=DEFAULT_MAX_AGE + 60, expires_in=HOUR).run()
    _is_the_ended_login_page(at, "Your session has ended")
    assert "a login lasts 8 h here (SESSION_MAX_AGE_SECONDS)" in texts(at)
    # No page is registered for it: asking for one shows the same login page again.
    open_page(at, "settings")
    _is_the_ended_login_page(at, "Your session has ended")


@pytest.mark.usefixtures("live_env")
def test_an_expired_id_token_ends_the_session_within_the_max_age() -> None:
    at = _logged_in("support", logged_in_ago=HOUR + 5, expires_in=-5).run()
    _is_the_ended_login_page(at, "Your login expired at")


def test_the_max_age_is_the_setting(
    live_env: None, monkeypatch: pytest.MonkeyPatch, world: UserWorld
) -> None:
    ten_minutes_ago = {"logged_in_ago": 600, "expires_in": HOUR}
    at = _logged_in("support", **ten_minutes_ago).run()
    assert not at.exception and at.session_state["actor"].email == EMAIL_OF["support"]
    assert world.healthy in set(at.dataframe[0].value["user"])

    monkeypatch.setenv("SESSION_MAX_AGE_SECONDS", "300")
    at = _logged_in("support", **ten_minutes_ago).run()
    _is_the_ended_login_page(at, "Your session has ended")
    assert "a login lasts 5 min here" in texts(at)


@pytest.mark.usefixtures("live_env")
def test_an_open_session_whose_login_ends_stops_acting_at_its_next_run() -> None:
    at = _logged_in("admin", logged_in_ago=DEFAULT_MAX_AGE - 60, expires_in=HOUR).run()
    assert not at.exception and at.session_state["actor"].role.value == "admin"
    assert "Signed in as" in _sidebar(at)

    # The same session a little later: the tab stayed open past the end of the login.
    at.user["iat"] -= 120
    at.run()
    _is_the_ended_login_page(at, "Your session has ended")
    # The pages it had are gone from its navigation, and cannot be opened.
    for page in ("users", "settings"):
        with pytest.raises(ValueError):
            at.switch_page(f"../pages/{page}.py")


@pytest.mark.usefixtures("live_env")
def test_log_out_from_the_ended_login_page_leaves_a_plain_login() -> None:
    at = _logged_in("product", logged_in_ago=DEFAULT_MAX_AGE + 1, expires_in=HOUR).run()
    at.button(key="logout").click().run()
    assert not at.exception
    assert at.user == {"is_logged_in": False}
    assert at.button(key="login").label == "Log in"
    assert not at.warning and not at.dataframe
