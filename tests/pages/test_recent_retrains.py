"""Fleet → Recent retrains and the User page's banner, through the real entry (LIVE
settings, this module's database, the sandbox): retrain reviews written into
ops.retrain_reviews as the review job writes them, for the users of the test world."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, delete, insert
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import PageLink

from core.ledger.reviews import retrain_reviews
from tests.pages.conftest import frames_with, open_page, texts, unescaped
from tests.user_world import UserWorld

pytestmark = pytest.mark.timeout(180)

RETRAINS = "Recent retrains"
WORSE = "The new version is further from the user's photos than the one before, beyond the noise."
BROKEN = "The failed retrain wiped the stored version: the app has nothing to generate with."
COMPARISON = 7
ACTING = "someone@staff.test"


@pytest.fixture
def reviews(engine: Engine, world: UserWorld) -> Iterator[dict[str, str]]:
    """One retrain of each outcome in the last week (and one ten days ago), committed
    for the pages to read, removed after the test: training id → user id."""
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {
            "training_id": "t-worse",
            "user_id": world.stale,
            "ended_at": now - timedelta(hours=1),
            "verdict": "worse",
            "sentence": WORSE,
            "photos_before": 20,
            "photos_after": 6,
            "comparison_id": COMPARISON,
            "alert_status": "sent",
            "alert_sent_at": now - timedelta(minutes=55),
        },
        {
            "training_id": "t-pending",
            "user_id": world.prefixed,
            "ended_at": now - timedelta(minutes=10),
            "status": "queued",
        },
        {
            "training_id": "t-better",
            "user_id": world.healthy,
            "ended_at": now - timedelta(days=2),
            "verdict": "better",
            "sentence": "Closer to the user's photos than the one before.",
            "photos_before": 10,
            "photos_after": 14,
        },
        {
            "training_id": "t-broken",
            "user_id": world.foreign,
            "training_status": "failed",
            "ended_at": now - timedelta(days=3),
            "verdict": "broken",
            "sentence": BROKEN,
            "alert_status": "failed",
            "alert_error": "the webhook answered 500 three times",
        },
        {
            "training_id": "t-old",
            "user_id": world.missing_model,
            "ended_at": now - timedelta(days=10),
            "verdict": "same",
            "sentence": "No difference beyond the noise.",
        },
    ]
    with engine.begin() as conn:
        for row in rows:
            values = {"training_status": "succeeded", "status": "done", **row}
            conn.execute(insert(retrain_reviews).values(**values))
    yield {row["training_id"]: row["user_id"] for row in rows}
    with engine.begin() as conn:
        conn.execute(delete(retrain_reviews))


def _retrains(app_as: Callable[..., AppTest], **query: str) -> AppTest:
    at = open_page(app_as("support"), "fleet", view=RETRAINS, **query)
    assert not at.exception, at.exception
    return at


def _numbers(array: Any) -> list[int]:
    """A Plotly JSON array: a list, or NumPy's bytes in base64 (``bdata``)."""
    if isinstance(array, dict):
        return [int(n) for n in np.frombuffer(base64.b64decode(array["bdata"]), array["dtype"])]
    return [int(n) for n in array]


def _table(at: AppTest) -> pd.DataFrame:
    (table,) = frames_with(at, "what the review found")
    return table


def test_fleet_opens_on_drift_and_keeps_recent_retrains_in_a_tab_of_its_own(
    app_as: Callable[..., AppTest], reviews: dict[str, str]
) -> None:
    at = open_page(app_as("support"), "fleet")
    assert not at.exception, at.exception
    assert [tab.label for tab in at.tabs] == ["Drift", RETRAINS]
    assert not frames_with(at, "what the review found")  # only the open tab runs
    assert "No fleet scan has run yet" in texts(at)


def test_recent_retrains_chart_the_outcomes_per_day_in_their_colours(
    app_as: Callable[..., AppTest], world: UserWorld, reviews: dict[str, str]
) -> None:
    at = _retrains(app_as)
    assert (
        "4 retrains ended in the last 7 days: 1 better, 0 no difference, 1 worse, 1 broken; "
        "1 still being reviewed." in texts(at)
    )
    (chart,) = at.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    traces = [(trace["name"], trace["marker"]["color"]) for trace in figure["data"]]
    assert traces == [
        ("Better", "#2e7d32"),
        ("No difference", "#78909c"),
        ("Worse", "#e53935"),
        ("Broken", "#8e0000"),
    ]
    counts = [_numbers(trace["y"]) for trace in figure["data"]]
    assert all(len(per_day) == 7 for per_day in counts)  # every day, zeros too
    # Better, No difference, Worse, Broken; the pending one is not counted.
    assert [sum(per_day) for per_day in counts] == [1, 0, 1, 1]


def test_recent_retrains_table_reads_as_a_support_agent_would(
    app_as: Callable[..., AppTest], world: UserWorld, reviews: dict[str, str]
) -> None:
    table = _table(_retrains(app_as))
    assert list(table["user id"]) == [world.prefixed, world.stale, world.healthy, world.foreign]
    assert list(table["user"]) == [world.email(user) for user in table["user id"]]
    rows = table.set_index("user id")
    worse, pending, broken = (
        rows.loc[world.stale],
        rows.loc[world.prefixed],
        rows.loc[world.foreign],
    )
    assert (worse["verdict"], worse["what the review found"]) == ("Worse", WORSE)
    assert worse["photos"] == "20 → 6" and worse["alert"].startswith("sent 20")
    assert worse["comparison"] == f"compare?comparison={COMPARISON}"
    assert pending["verdict"] == "reviewing…" and pending["alert"] == "—"
    assert pending["what the review found"].startswith("Waiting for its review")
    assert pd.isna(pending["comparison"])
    assert broken["training"] == "failed"
    assert broken["alert"] == "not sent: the webhook answered 500 three times"
    assert rows.loc[world.healthy, "verdict"] == "Better"


def test_the_days_choice_widens_the_window(
    app_as: Callable[..., AppTest], world: UserWorld, reviews: dict[str, str]
) -> None:
    at = _retrains(app_as)
    assert world.missing_model not in set(_table(at)["user id"])
    at.segmented_control(key="days").set_value(14).run()
    assert not at.exception, at.exception
    assert list(_table(at)["user id"])[-1] == world.missing_model
    assert "5 retrains ended in the last 14 days" in texts(at)
    # A link with ?days= opens on that window.
    assert list(_table(_retrains(app_as, days="14"))["user id"])[-1] == world.missing_model


def test_a_row_opens_the_user_keeping_who_is_acting(
    app_as: Callable[..., AppTest], world: UserWorld, reviews: dict[str, str]
) -> None:
    at = _retrains(app_as, **{"as": ACTING})
    table = _table(at)
    assert parse_qs(table.set_index("user id").loc[world.stale, "comparison"].split("?")[1]) == {
        "comparison": [str(COMPARISON)],
        "as": [ACTING],
    }
    index = list(table["user id"]).index(world.stale)
    at.session_state["recent_retrains"] = {
        "selection": {"rows": [index], "columns": [], "cells": []}
    }
    at.run()
    assert not at.exception, at.exception
    assert f"User {world.stale}" in texts(at)
    assert (at.query_params["user"], at.query_params["as"]) == (world.stale, ACTING)


def test_no_retrain_in_the_window_is_said_in_words(app_as: Callable[..., AppTest]) -> None:
    at = _retrains(app_as)
    assert "No retrain ended in the last 7 days" in texts(at)
    assert not at.get("plotly_chart") and not frames_with(at, "what the review found")


def _links(at: AppTest) -> dict[str, str]:
    return {
        unescaped(link.value): link.proto.query_string
        for link in at.get("page_link")
        if isinstance(link, PageLink)
    }


def test_the_user_page_leads_with_a_worse_last_retrain_in_red(
    app_as: Callable[..., AppTest], world: UserWorld, reviews: dict[str, str]
) -> None:
    at = open_page(app_as("support"), "user", user=world.stale)
    assert not at.exception, at.exception
    first = unescaped(at.error[0].value)
    assert first.startswith("**Last retrain: Worse** · training succeeded ")
    assert WORSE in first
    assert "photos 20 → 6" in texts(at) and "alert: sent" in texts(at)
    links = _links(at)
    comparison = next(label for label in links if label.startswith(f"Comparison #{COMPARISON}"))
    assert parse_qs(links[comparison]) == {"comparison": [str(COMPARISON)]}
    assert parse_qs(links["Fleet → Recent retrains"]) == {"view": [RETRAINS]}


@pytest.mark.parametrize(
    ("user", "kind", "words"),
    [
        ("healthy", "success", "**Last retrain: Better**"),
        ("prefixed", "info", "**Last retrain: reviewing…**"),
        ("foreign", "error", "**Last retrain: Broken** · training failed"),
    ],
)
def test_the_banner_is_coloured_by_what_the_verdict_means(
    app_as: Callable[..., AppTest],
    world: UserWorld,
    reviews: dict[str, str],
    user: str,
    kind: str,
    words: str,
) -> None:
    at = open_page(app_as("support"), "user", user=getattr(world, user))
    assert not at.exception, at.exception
    assert any(unescaped(alert.value).startswith(words) for alert in getattr(at, kind))


def test_no_banner_for_a_user_the_watch_never_reviewed(
    app_as: Callable[..., AppTest], world: UserWorld, reviews: dict[str, str]
) -> None:
    at = open_page(app_as("support"), "user", user=world.malformed)
    assert not at.exception, at.exception
    assert "Last retrain" not in texts(at)
    assert "Fleet → Recent retrains" not in _links(at)
