"""Input the database cannot take (a NUL character in a link or a filter) gives a message
with the next step on every page that reads it, never a traceback."""

from __future__ import annotations

from collections.abc import Callable

from streamlit.testing.v1 import AppTest

from tests.pages.conftest import open_page
from tests.user_world import UserWorld


def _refused(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert any("NUL character" in error.value for error in at.error), [
        error.value for error in at.error
    ]


def test_a_nul_in_the_user_link_is_refused(
    app_as: Callable[..., AppTest], world: UserWorld
) -> None:
    _refused(open_page(app_as("support"), "user", user="51a1e000\x00"))


def test_a_nul_in_the_audit_user_filter_is_refused(
    app_as: Callable[..., AppTest], world: UserWorld
) -> None:
    _refused(open_page(app_as("admin"), "audit", target="\x00"))
