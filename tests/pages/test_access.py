"""dashboard.access: who gets which role, from plain values."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.roles import Role
from core.staff import DEMO_STAFF, StaffMember
from dashboard.access import (
    auth_problem,
    demo_staff,
    login_provider,
    normalise_email,
    parse_role_map,
    role_for,
    verified_email,
)

AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "s",
    "client_id": "c",
    "client_secret": "x",
    "server_metadata_url": "https://idp/.well-known",
}


def test_normalise_email() -> None:
    assert normalise_email("  Ann@Example.COM ") == "ann@example.com"
    assert normalise_email("not-an-email") is None
    assert normalise_email(None) is None
    assert normalise_email(42) is None


def test_only_verified_emails_count() -> None:
    assert verified_email({"email": "Ann@X.test"}) == "ann@x.test"
    assert verified_email({"email": "ann@x.test", "email_verified": True}) == "ann@x.test"
    assert verified_email({"email": "ann@x.test", "email_verified": False}) == ""
    assert verified_email({"sub": "123"}) == ""


def test_role_map_from_secrets_is_case_insensitive() -> None:
    mapping = parse_role_map({"support": ["Sue@X.test"], "Admin": ["al@x.test"], "product": []})
    assert mapping == {"sue@x.test": Role.SUPPORT, "al@x.test": Role.ADMIN}
    assert parse_role_map(None) == {} and parse_role_map({}) == {}


def test_an_email_under_two_roles_gets_the_lesser_one() -> None:
    mapping = parse_role_map({"admin": ["pat@x.test"], "support": ["pat@x.test"]})
    assert mapping == {"pat@x.test": Role.SUPPORT}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"owner": ["a@x.test"]}, "unknown role 'owner'"),
        ({"admin": "a@x.test"}, "must be a list of emails"),
        ({"admin": ["a@x.test", "nobody"]}, "'nobody', which is not an email"),
    ],
)
def test_bad_role_map_stops_with_the_fix(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_role_map(section)


def test_secrets_win_over_ops_staff_and_unknown_emails_get_nothing() -> None:
    staff = [StaffMember("sue@x.test", Role.ADMIN), StaffMember("ops@x.test", Role.PRODUCT)]
    role_map = {"sue@x.test": Role.SUPPORT}
    assert role_for("SUE@x.test", role_map=role_map, staff=staff) is Role.SUPPORT
    assert role_for("ops@x.test", role_map=role_map, staff=staff) is Role.PRODUCT
    assert role_for("stranger@x.test", role_map=role_map, staff=staff) is None
    assert role_for("", role_map=role_map, staff=staff) is None
    assert role_for(None, role_map=role_map, staff=staff) is None


def test_demo_staff_falls_back_to_one_person_per_role() -> None:
    assert {member.role for member in demo_staff([])} == set(Role)
    assert demo_staff([]) == DEMO_STAFF
    stored = [StaffMember("a@x.test", Role.ADMIN)]
    assert demo_staff(stored) == tuple(stored)


def test_auth_block_checks() -> None:
    assert auth_problem(AUTH) is None
    assert "no [auth] block" in (auth_problem(None) or "")
    assert "no [auth] block" in (auth_problem({}) or "")
    missing = auth_problem({key: value for key, value in AUTH.items() if key != "client_id"})
    assert missing is not None and "client_id" in missing
    named = {
        "redirect_uri": "http://x/oauth2callback",
        "cookie_secret": "s",
        "google": {
            "client_id": "c",
            "client_secret": "x",
            "server_metadata_url": "https://accounts.google.com/.well-known",
        },
    }
    assert auth_problem(named) is None
    assert login_provider(named) == "google"
    assert login_provider(AUTH) is None
