"""The Users page through the real entry (LIVE settings, test database, sandbox)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.sandbox.server import RunningSandbox
from tests.pages.conftest import new_app, texts
from tests.user_world import FILLERS, UserWorld
from tests.workers import wait_for

SUPPORT = "support@staff.test"


def _table(at: AppTest) -> pd.DataFrame:
    assert not at.exception, at.exception
    return at.dataframe[0].value


def _search(at: AppTest, query: str) -> pd.DataFrame:
    at.text_input(key="q").input(query).run()
    return _table(at)


def test_lists_seeded_users_newest_first_with_stored_and_latest(
    app_as: Callable[..., AppTest],
    world: UserWorld,
) -> None:
    at = app_as("support")
    table = _table(at)
    # Shown: the email first, how bad the scan found them, what the app generates with,
    # the finding codes; the user id later (still there to search and copy), the link last.
    assert list(at.dataframe[0].proto.column_order) == [
        "email",
        "worst",
        "training status",
        "stored version",
        "latest version",
        "trigger word",
        "findings",
        "plan",
        "updated",
        "user",
        "model id",
        "open",
    ]
    assert set(table["worst"]) == {"not scanned yet"}  # no scan yet
    assert list(table["user"][:7]) == list(world.special)
    rows = table.set_index("user")
    stale_versions = world.replicate.stale_versions
    assert rows.loc[world.stale, "stored version"] == stale_versions[-1][:12] + " · not latest"
    assert rows.loc[world.stale, "latest version"] == stale_versions[0][:12]
    healthy = rows.loc[world.healthy]
    assert healthy["stored version"] == healthy["latest version"] + " · latest"
    # owner/name:hash shows the hash the app sends, marked so the prefix still shows.
    assert rows.loc[world.prefixed, "stored version"] == (
        "…:" + world.replicate.healthy_version[:12] + " · latest"
    )
    assert rows.loc[world.malformed, "stored version"] == "  not-a-vers"
    assert rows.loc[world.malformed, "latest version"] == "—"
    assert rows.loc[world.missing_model, "latest version"] == "missing"
    assert rows.loc[world.healthy, "open"] == f"user?user={world.healthy}"  # LIVE: no ?as=


def test_search_by_email_id_trigger_word_and_model_id(
    app_as: Callable[..., AppTest],
    world: UserWorld,
) -> None:
    at = app_as("support")
    assert list(_search(at, "5040000C@example")["user"]) == [world.healthy]
    assert list(_search(at, world.foreign)["user"]) == [world.foreign]
    assert list(_search(at, "user51a1e000")["user"]) == [world.stale]
    assert set(_search(at, "stale001-selfie")["user"]) == {world.stale, world.foreign}
    assert _search(at, "nobody-matches-this").empty
    assert "No user matches this search." in texts(at)


def test_search_comes_from_the_url(live_env: None, world: UserWorld) -> None:
    at = new_app(email=SUPPORT, query={"q": "user51a1e000"}).run()
    assert list(_table(at)["user"]) == [world.stale]


def test_pages_on_the_server(app_as: Callable[..., AppTest], world: UserWorld) -> None:
    total = len(world.special) + FILLERS
    at = app_as("support")
    first = _table(at)
    assert len(first) == 50 and f"rows 1–50 of {total}" in texts(at)
    at.pagination(key="page").select(2).run()
    second = _table(at)
    assert len(second) == total - 50 and f"rows 51–{total} of {total}" in texts(at)
    assert not set(first["user"]) & set(second["user"])
    # A new search starts again at page 1.
    assert len(_search(at, "filler")) == 50
    assert f"rows 1–50 of {FILLERS}" in texts(at)


def test_page_from_a_stale_link_lands_on_the_last_page(live_env: None, world: UserWorld) -> None:
    at = new_app(email=SUPPORT, query={"page": "9"}).run()
    total = len(world.special) + FILLERS
    assert f"of {total}" in texts(at) and not _table(at).empty


def test_selecting_a_row_opens_the_user(app_as: Callable[..., AppTest], world: UserWorld) -> None:
    at = app_as("product")
    index = list(_table(at)["user"]).index(world.stale)
    at.session_state["users_table"] = {"selection": {"rows": [index], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.query_params.get("user") == world.stale
    assert f"User {world.stale}" in texts(at)


def test_clicking_any_cell_of_a_row_opens_the_user(
    app_as: Callable[..., AppTest], world: UserWorld
) -> None:
    at = app_as("support")
    index = list(_table(at)["user"]).index(world.healthy)
    at.session_state["users_table"] = {
        "selection": {"rows": [], "columns": [], "cells": [[index, "email"]]}
    }
    at.run()
    assert not at.exception
    assert f"User {world.healthy}" in texts(at)


def test_a_nul_character_in_the_search_is_refused_with_a_message(
    live_env: None, world: UserWorld
) -> None:
    at = new_app(email=SUPPORT, query={"q": "ann\x00"}).run()
    assert not at.exception, at.exception
    assert any("NUL character" in error.value for error in at.error)


@pytest.mark.usefixtures("replicate_down")
def test_replicate_down_shows_question_marks_and_a_warning(
    app_as: Callable[..., AppTest],
    world: UserWorld,
) -> None:
    at = app_as("support")
    rows = _table(at).set_index("user")
    assert rows.loc[world.stale, "latest version"] == "?"
    # Not knowing the latest, the stored version is shown alone.
    assert rows.loc[world.stale, "stored version"] == world.replicate.stale_versions[-1][:12]
    assert at.warning and "unavailable" in at.warning[0].value


@pytest.mark.usefixtures("fresh_runtime")
def test_replicate_recovery_is_not_hidden_by_the_cache(
    app_as: Callable[..., AppTest],
    world: UserWorld,
    sandbox_server: RunningSandbox,
) -> None:
    base_url = sandbox_server.base_url
    httpx.post(
        f"{base_url}/_sandbox/faults", json={"status": 503, "retry_after": 120}
    ).raise_for_status()
    try:
        at = app_as("support")
        assert _table(at).set_index("user").loc[world.stale, "latest version"] == "?"
    finally:
        httpx.delete(f"{base_url}/_sandbox/faults").raise_for_status()

    # The breaker lets one probe through after its cool-off (calls made beside the probe
    # still fail at once, so that rerun may be partial); the reruns after it show it back.
    def recovered() -> bool:
        at.run()
        rows = _table(at).set_index("user")
        return not at.warning and bool(
            rows.loc[world.stale, "latest version"] == world.replicate.stale_versions[0][:12]
        )

    wait_for(recovered, timeout=30, what="the page to show Replicate back", every=1.0)
    assert "?" not in set(_table(at)["latest version"])


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503},  # plain 503s, no Retry-After: the retries would take 27 s
        {"timeout": True, "hang_seconds": 30},  # Replicate hangs
    ],
    ids=["plain-503", "hanging"],
)
@pytest.mark.usefixtures("fresh_runtime")
def test_replicate_down_fails_fast_with_the_database_rows_and_a_banner(
    live_env: None, world: UserWorld, sandbox_server: RunningSandbox, fault: dict[str, object]
) -> None:
    faults = f"{sandbox_server.base_url}/_sandbox/faults"
    before = _model_reads(sandbox_server)
    httpx.post(faults, json=fault).raise_for_status()
    try:
        at = new_app(email=SUPPORT).run()
        rows = _table(at).set_index("user")
        assert len(rows) == 50 and rows.loc[world.stale, "latest version"] == "?"
        (banner,) = [warning.value for warning in at.warning]
        assert "unavailable" in banner
        # The breaker stopped asking after the first failures: not 50 models' retries.
        assert _model_reads(sandbox_server) - before < 50
    finally:
        httpx.delete(faults).raise_for_status()


def _model_reads(sandbox: RunningSandbox) -> int:
    counts = httpx.get(f"{sandbox.base_url}/_sandbox/stats").json()["counts"]
    return sum(int(count) for route, count in counts.items() if "/v1/models/" in route)
