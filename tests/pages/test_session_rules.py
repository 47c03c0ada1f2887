"""dashboard.access: when a LIVE login ends, from plain values."""

from __future__ import annotations

import pytest

from dashboard.access import session_end, session_left

NOW = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC
EIGHT_HOURS = 8 * 3600


def test_a_fresh_login_goes_on() -> None:
    claims = {"iat": int(NOW - 60), "exp": int(NOW + 3540)}
    assert session_end(claims, max_age_seconds=EIGHT_HOURS, now=NOW) is None
    assert session_left(claims, max_age_seconds=EIGHT_HOURS, now=NOW) == pytest.approx(3540)


def test_a_login_older_than_the_max_age_ends_saying_when_and_why() -> None:
    claims = {"iat": int(NOW - EIGHT_HOURS - 1), "exp": int(NOW + 3600)}
    message = session_end(claims, max_age_seconds=EIGHT_HOURS, now=NOW)
    assert message is not None
    assert "Your session has ended" in message
    assert "2025-06-15 07:06 UTC" in message  # when they logged in
    assert "8 h" in message and "SESSION_MAX_AGE_SECONDS" in message
    assert "Log in again" in message
    assert session_left(claims, max_age_seconds=EIGHT_HOURS, now=NOW) == pytest.approx(-1)


def test_the_max_age_itself_is_still_inside() -> None:
    claims = {"iat": int(NOW - EIGHT_HOURS)}
    assert session_end(claims, max_age_seconds=EIGHT_HOURS, now=NOW) is None
    assert session_end(claims, max_age_seconds=EIGHT_HOURS, now=NOW + 1) is not None


def test_an_expired_id_token_ends_the_session_within_the_max_age() -> None:
    claims = {"iat": int(NOW - 3600), "exp": int(NOW)}
    message = session_end(claims, max_age_seconds=EIGHT_HOURS, now=NOW)
    assert message is not None
    assert "Your login expired at 2025-06-15 15:06 UTC" in message
    assert session_end(claims, max_age_seconds=EIGHT_HOURS, now=NOW - 1) is None


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(3600, "1 h"), (90 * 60, "90 min"), (45, "45 s"), (28800, "8 h")],
)
def test_the_max_age_is_shown_in_plain_units(seconds: int, shown: str) -> None:
    message = session_end({"iat": NOW - seconds - 10}, max_age_seconds=seconds, now=NOW)
    assert message is not None and f"a login lasts {shown} here" in message


@pytest.mark.parametrize(
    "claims",
    [{}, {"iat": "yesterday", "exp": None}, {"iat": True, "exp": False}, {"email": "a@x.test"}],
)
def test_claims_that_are_not_times_are_not_checked(claims: dict[str, object]) -> None:
    # Every real OIDC login has numeric iat and exp (authlib refuses one without them);
    # only hand-made users lack them.
    assert session_end(claims, max_age_seconds=1, now=NOW) is None
    assert session_left(claims, max_age_seconds=1, now=NOW) is None
