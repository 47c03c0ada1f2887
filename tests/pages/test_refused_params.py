"""What the console says when an address asks for something it does not show: an unknown
DEMO staff member (``?as=``), a finding or severity that does not exist (``?code=``,
``?severity=``), a page number past the end or not a number (``?page=``), a page the role
does not get (``/settings`` as support). Each is named (inert), with why and what is shown
instead; none is dropped without a word. Also: the Users table shows all its rows, and its
"open ↗" link keeps who is acting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from streamlit.elements.arrow import ArrowMixin
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from dashboard import drift_tables
from tests.pages.conftest import APP_TIMEOUT, new_app, open_page, texts
from tests.user_world import FILLERS, UserWorld

SUPPORT = "support@staff.test"

# DEMO's picker and the link as the entry runs them (no database: the built-in staff).
_DEMO_LINK_SCRIPT = """
import streamlit as st
from core.staff import DEMO_STAFF
from dashboard import identity, tables

actor = identity.pick_demo_actor(DEMO_STAFF)
st.session_state["acting"] = actor.email
st.session_state["link"] = tables.user_link("u-1")
"""


def _demo_picker(asked: str) -> AppTest:
    at = AppTest.from_string(_DEMO_LINK_SCRIPT, default_timeout=APP_TIMEOUT)
    at.query_params["as"] = asked
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_open_link_keeps_who_acts_in_demo() -> None:
    at = _demo_picker("admin@demo.sselfie.test")
    assert at.session_state["acting"] == "admin@demo.sselfie.test"
    # A new tab opened from it acts as the same admin, not as the list's first (support).
    assert at.session_state["link"] == "user?user=u-1&as=admin%40demo.sselfie.test"
    assert not at.warning


def test_an_unknown_acting_as_is_named_with_who_acts_instead() -> None:
    at = _demo_picker("**boss**@nowhere.test")
    assert at.session_state["acting"] == "support@demo.sselfie.test"
    (warning,) = at.warning
    assert "*" not in warning.value.replace("\\*", "")  # shown as typed, never as markup
    assert (
        "Nobody called '**boss**@nowhere.test' is on DEMO's staff list, so the link's ?as= "
        "was not used: acting as support@demo.sselfie.test (support) instead."
    ) in texts(at)
    assert at.query_params["as"] == "support@demo.sselfie.test"


def _warnings(at: AppTest) -> list[str]:
    assert not at.exception, at.exception
    return [str(warning.value) for warning in at.warning]


@pytest.mark.usefixtures("world")
def test_an_unknown_finding_code_is_named_and_every_finding_shown(live_env: None) -> None:
    at = new_app(email=SUPPORT, query={"code": "XYZ"}).run()
    assert "No finding called 'XYZ': showing every finding." in texts(at)
    assert at.multiselect(key="code").value == []
    assert len(at.dataframe[0].value) == 50  # every user, unfiltered


@pytest.mark.usefixtures("world")
def test_a_known_code_beside_an_unknown_one_still_filters(live_env: None) -> None:
    at = new_app(email=SUPPORT)
    at.query_params["code"] = ["STALE_VERSION", "STALE_VERSIONS"]
    at.run()
    assert "No finding called 'STALE_VERSIONS': filtering by STALE_VERSION only." in texts(at)
    assert at.multiselect(key="code").value == ["STALE_VERSION"]


@pytest.mark.usefixtures("world")
def test_an_unknown_severity_is_named_with_the_ones_there_are(live_env: None) -> None:
    at = new_app(email=SUPPORT, query={"severity": "urgent"}).run()
    assert (
        "No severity called 'urgent': showing every severity. "
        "There are critical, warning, info." in texts(at)
    )


@pytest.mark.parametrize(
    ("asked", "said"),
    [
        ("9", "There is no page '9': this list has pages 1 to 2, so page 1 is shown."),
        ("two", "There is no page 'two': this list has pages 1 to 2, so page 1 is shown."),
        ("0", "There is no page '0': this list has pages 1 to 2, so page 1 is shown."),
    ],
)
def test_a_page_that_does_not_exist_is_named(
    live_env: None, world: UserWorld, asked: str, said: str
) -> None:
    assert len(world.special) + FILLERS <= 100  # two pages of 50
    at = new_app(email=SUPPORT, query={"page": asked}).run()
    assert said in _warnings(at)
    assert "rows 1–50 of" in texts(at)
    # Said once: paging on, or a search that shrinks the list, is the person's own doing.
    at.text_input(key="q").input("user51a1e000").run()
    assert not _warnings(at)
    existing = new_app(email=SUPPORT, query={"page": "2"}).run()
    assert not _warnings(existing) and "rows 51–" in texts(existing)


def _open_address(at: AppTest, address: str) -> AppTest:
    """As a browser asking for ``/address`` by hand. ``AppTest.switch_page`` finds pages by
    their file only, and what answers a refused address has none: so the page is asked
    for by its hash, which Streamlit derives from the address (``st.Page``'s url_path)."""
    at._page_hash = calc_hash(address)
    return at.run()


@pytest.mark.parametrize(
    ("role", "address", "title", "allowed"),
    [
        ("support", "settings", "Settings", "admins"),
        ("support", "retrain", "Retrain", "admins"),
        ("support", "review", "Blind review", "product and admins"),
        ("product", "audit", "Audit log", "admins"),
    ],
)
@pytest.mark.usefixtures("world")
def test_a_page_the_role_does_not_get_says_so_and_shows_users(
    app_as: Callable[..., AppTest], role: str, address: str, title: str, allowed: str
) -> None:
    at = _open_address(app_as(role), address)
    assert not at.exception, at.exception
    assert (
        f"The {title} page (/{address}) is for {allowed} only, and you are {role}: "
        "showing the Users page instead."
    ) in _warnings(at)
    assert at.title[0].value == "Users" and not at.dataframe[0].value.empty
    with pytest.raises(ValueError):  # its script is still not registered for the role
        at.switch_page(f"../pages/{address}.py")
    # An admin's address opens the page itself.
    admin = _open_address(app_as("admin"), address)
    assert not _warnings(admin) and admin.title[0].value != "Users"


@pytest.fixture
def dataframe_heights(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """The ``height`` each table on the page was drawn with (AppTest does not show it)."""
    heights: list[object] = []
    drawn = ArrowMixin.dataframe

    def dataframe(self: Any, *args: Any, **kwargs: Any) -> Any:
        heights.append(kwargs.get("height", "auto"))
        return drawn(self, *args, **kwargs)

    monkeypatch.setattr(ArrowMixin, "dataframe", dataframe)
    yield heights


@pytest.mark.usefixtures("world")
def test_the_users_table_shows_every_row_of_the_page(
    app_as: Callable[..., AppTest], dataframe_heights: list[object]
) -> None:
    at = app_as("support")
    assert len(at.dataframe[0].value) == 50
    # "auto" shows ten rows in a box that scrolls inside the page.
    assert dataframe_heights == ["content"]


def test_the_findings_column_is_as_wide_as_its_widest_codes() -> None:
    def width(*rows: list[str]) -> int:
        column = drift_tables.findings_columns(list(rows))["findings"]
        return int(column["width"])

    one = width(["STALE_VERSION"])
    two = width(["DATASET_SHRANK", "DATASET_DEGRADED"], [])
    assert one >= 13 * 7 and two >= one + 16 * 7
    assert width([]) > 0  # an empty page still gets a header-wide column


@pytest.mark.usefixtures("world")
def test_the_audit_log_names_an_unknown_action_and_a_page_it_does_not_have(
    app_as: Callable[..., AppTest],
) -> None:
    at = open_page(app_as("admin"), "audit", action="repair:[x](https://evil.example)")
    warnings = _warnings(at)
    assert any(
        warning.startswith("No action called 'repair\\:\\[x\\]")
        and warning.endswith("': showing every action. None is recorded yet.")
        for warning in warnings
    ), warnings
    assert at.selectbox(key="action").value is None
    paged = open_page(app_as("admin"), "audit", audit_page="9")
    assert "There is no page '9': this list has only page 1, so page 1 is shown." in _warnings(
        paged
    )
