"""LIVE access through the real entry: login, roles, the pages each role gets, and the
settings and secrets mistakes that must stop the console with a message."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from tests.pages.conftest import (
    AUTH,
    LIVE_TOKEN,
    ROLES,
    STAFF_ONLY_EMAIL,
    new_app,
    open_page,
    texts,
    unescaped,
)
from tests.user_world import UserWorld

ALL_ROLES = ("support", "product", "admin")


def _sidebar_text(at: AppTest) -> str:
    return "\n".join(str(element.value) for element in at.sidebar.markdown) + "\n".join(
        str(element.value) for element in at.sidebar.caption
    )


def test_logged_out_visitor_sees_only_the_login(live_env: None) -> None:
    at = new_app(email=None).run()
    assert not at.exception
    assert at.button(key="login").label == "Log in"
    assert "Staff only" in texts(at)
    assert "LIVE" in _sidebar_text(at)
    assert not at.dataframe
    # No page is registered for a visitor: asking for one runs the entry (the login) again.
    open_page(at, "users")
    assert not at.exception and at.button(key="login") and not at.dataframe


def test_unknown_email_sees_no_access_and_can_log_out(live_env: None) -> None:
    at = new_app(email="stranger@elsewhere.test").run()
    assert not at.exception
    shown = texts(at)
    assert "No access" in shown and "stranger@elsewhere.test is not on the console's staff" in shown
    assert at.button(key="logout").label == "Log out"
    assert not at.dataframe and not at.text_input
    open_page(at, "user", user="45038279")
    assert not at.exception and "No access" in texts(at) and not at.dataframe


def test_unverified_email_gets_no_access(live_env: None) -> None:
    at = new_app(email="admin@staff.test")
    at.user["email_verified"] = False
    at.run()
    assert not at.exception and "No access" in texts(at) and not at.dataframe


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_role_lands_on_users_and_can_open_a_user(
    role: str,
    app_as: Callable[..., AppTest],
    world: UserWorld,
) -> None:
    at = app_as(role)
    assert not at.exception
    assert "Users" in texts(at)
    assert world.healthy in set(at.dataframe[0].value["user"])
    assert f"({role})" in _sidebar_text(at)
    assert isinstance(at.session_state["actor"].role.value, str)
    assert at.session_state["actor"].role.value == role
    open_page(at, "user", user=world.healthy)
    assert not at.exception
    assert f"User {world.healthy}" in texts(at)


@pytest.mark.parametrize("role", ["support", "product"])
def test_support_and_product_cannot_reach_settings(
    role: str,
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as(role)
    with pytest.raises(ValueError):
        at.switch_page("../pages/settings.py")


def test_admin_settings_show_values_but_never_secrets(
    app_as: Callable[..., AppTest],
    pages_database_url: str,
) -> None:
    at = open_page(app_as("admin"), "settings")
    assert not at.exception
    settings = at.dataframe[0].value.set_index("setting")["value"].to_dict()
    assert settings["DATABASE_URL"] == "set" and settings["REPLICATE_API_TOKEN"] == "set"
    assert settings["OPS_DATABASE_URL"] == "unset"
    assert settings["REPLICATE_BASE_URL"].startswith("http://127.0.0.1:")
    assert settings["REPLICATE_OWNER"] == "sandrasocial"
    assert settings["WATCH_INTERVAL_SECONDS"] == "300 s (LIVE's default)"  # unset: not "—"
    shown = texts(at) + at.dataframe[0].value.to_string()
    assert LIVE_TOKEN not in shown and pages_database_url not in shown
    staff = at.dataframe[1].value
    assert set(staff["email"]) == {
        "support@staff.test",
        "product@staff.test",
        "admin@staff.test",
        STAFF_ONLY_EMAIL,
    }
    assert set(staff["source"]) == {"[roles] in secrets", "ops.staff"}


def test_role_from_ops_staff_when_not_in_secrets(live_env: None) -> None:
    at = new_app(email=STAFF_ONLY_EMAIL.upper()).run()
    assert not at.exception
    assert at.session_state["actor"].role.value == "product"
    with pytest.raises(ValueError):
        at.switch_page("../pages/settings.py")


def test_secrets_roles_decide_and_can_be_changed(live_env: None) -> None:
    promoted = {"auth": dict(AUTH), "roles": {"admin": ["support@staff.test"]}}
    at = new_app(email="support@staff.test", secrets=promoted).run()
    assert at.session_state["actor"].role.value == "admin"
    open_page(at, "settings")
    assert not at.exception and "Settings" in texts(at)


def test_live_without_auth_refuses_to_start(live_env: None) -> None:
    at = new_app(email="admin@staff.test", secrets={"roles": dict(ROLES)}).run()
    assert not at.exception
    assert at.error and "no [auth] block" in unescaped(at.error[0].value)
    assert not at.dataframe and not at.button


def test_incomplete_auth_names_what_is_missing(live_env: None) -> None:
    auth = {key: value for key, value in AUTH.items() if key != "cookie_secret"}
    at = new_app(email="admin@staff.test", secrets={"auth": auth}).run()
    assert at.error and "cookie_secret" in unescaped(at.error[0].value)


def test_bad_roles_section_stops_with_the_fix(live_env: None) -> None:
    at = new_app(
        email="admin@staff.test",
        secrets={"auth": dict(AUTH), "roles": {"owner": ["admin@staff.test"]}},
    ).run()
    assert not at.exception
    assert at.error and "unknown role 'owner'" in unescaped(at.error[0].value)


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        ("DATABASE_URL", "REPLICATE_API_TOKEN"),
        ("REPLICATE_API_TOKEN", "DATABASE_URL"),
    ],
)
def test_half_configured_live_names_what_is_missing(
    present: str,
    missing: str,
    live_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(missing)
    at = new_app(email="admin@staff.test").run()
    assert not at.exception
    assert at.error and f"{missing} is missing" in unescaped(at.error[0].value)
    assert not at.dataframe


def test_placeholder_token_is_refused(live_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_xxx")
    at = new_app(email="admin@staff.test").run()
    assert at.error and "placeholder" in at.error[0].value


def test_unreachable_database_is_a_message_not_a_traceback(
    live_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://console:secret-pw@127.0.0.1:9/app")
    at = new_app(email="admin@staff.test").run()
    assert not at.exception
    assert at.error and "Could not connect to DATABASE_URL" in unescaped(at.error[0].value)
    assert "secret-pw" not in unescaped(at.error[0].value)
