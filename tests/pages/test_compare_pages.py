"""The Compare and Blind review pages, through the real entry in LIVE mode (AppTest), on
the pages' world: a comparison planned from the user's versions, one comparison however
often Confirm is sent, the budget refused in core, votes recorded blind once per pair."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

import pytest
from PIL import Image
from sqlalchemy import Engine, func, insert, select, text
from streamlit.testing.v1 import AppTest

from core.compare.pairs import build_pairs
from core.compare.tables import comparison_images, comparisons, review_pairs, review_votes
from core.review.store import record_vote
from core.roles import Actor, Role
from tests.pages.conftest import EMAIL_OF, open_page, texts
from tests.user_world import UserWorld

pytestmark = pytest.mark.timeout(180)


def _count(engine: Engine, user_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(comparisons)
                .where(comparisons.c.user_id == user_id)
            ).scalar_one()
        )


def _to_confirmation(at: AppTest) -> AppTest:
    for button in at.button:
        if button.label == "Run comparison…":
            button.click().run()
            break
    else:
        raise AssertionError(f"no Run button; page said: {texts(at)[:2000]}")
    assert not at.exception, at.exception
    return at


def _confirm_key(at: AppTest) -> str:
    keys = [b.key for b in at.button if (b.key or "").startswith("confirm_")]
    assert len(keys) == 1, keys
    return str(keys[0])


def test_support_plans_a_comparison_of_the_stale_users_versions_and_one_confirmation_runs_once(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    at = open_page(app_as("support"), "compare", user=world.stale)
    assert not at.exception, at.exception
    shown = texts(at)
    assert "3 version(s) from the user's trainings" in shown
    (columns,) = [w for w in at.multiselect if w.label.startswith("Columns")]
    assert {"v1", "v2", "v3"} <= set(columns.options)
    assert columns.value == ["stored", "latest", "site"]
    diff = next(frame.value for frame in at.dataframe if "input" in frame.value.columns)
    assert {"prompt", "guidance_scale", "hf_lora"} <= set(diff["input"])
    assert "16 images × $0.030 = **$0.48**" in shown
    before = _count(engine, world.stale)

    _to_confirmation(at)
    token = at.session_state["compare_confirm"]
    at.button(key=_confirm_key(at)).click().run()
    assert not at.exception, at.exception
    comparison_id = at.query_params["comparison"][0]
    assert f"Comparison #{comparison_id}" in texts(at)
    assert _count(engine, world.stale) == before + 1

    # The same confirmation sent again (a second click, another tab's replay): no new run.
    at.query_params.pop("comparison")
    at.session_state["compare_confirm"] = token
    at.session_state["compare_submitting"] = True
    at.run()
    assert not at.exception, at.exception
    assert at.query_params["comparison"][0] == comparison_id
    assert _count(engine, world.stale) == before + 1
    with engine.connect() as conn:
        row = conn.execute(select(comparisons).where(comparisons.c.id == int(comparison_id))).one()
    assert row.requested_by == EMAIL_OF["support"] and row.status == "queued"


def test_over_budget_is_refused_with_the_reason_and_nothing_runs(
    app_as: Callable[..., AppTest],
    world: UserWorld,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COMPARE_DAILY_BUDGET_USD", "0.05")
    at = open_page(app_as("support"), "compare", user=world.healthy)
    before = _count(engine, world.healthy)
    _to_confirmation(at)
    at.button(key=_confirm_key(at)).click().run()
    assert not at.exception, at.exception
    assert "compare budget is left" in texts(at)
    assert _count(engine, world.healthy) == before
    assert "comparison" not in at.query_params


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 80), colour).save(out, format="JPEG")
    return out.getvalue()


def _finished_comparison(engine: Engine, user_id: str) -> int:
    """A finished comparison of two versions, one seed, as the workers leave it."""
    with engine.begin() as conn:
        comparison_id = conn.execute(
            insert(comparisons)
            .values(
                user_id=user_id,
                requested_by="product@staff.test",
                requested_role="product",
                confirm_token=f"review-{user_id}",
                status="finished",
                prompt="a headshot",
                category="headshot",
                seeds=[7],
                columns=[],
                estimate_usd=0.06,
            )
            .returning(comparisons.c.id)
        ).scalar_one()
        for letter, version, colour in (
            ("A", "a" * 64, (200, 30, 30)),
            ("B", "b" * 64, (30, 30, 200)),
        ):
            conn.execute(
                insert(comparison_images).values(
                    comparison_id=comparison_id,
                    letter=letter,
                    seed=7,
                    version_id=version,
                    input={"seed": 7},
                    status="succeeded",
                    preview=_jpeg(colour),
                )
            )
        assert build_pairs(conn, comparison_id) == 1
    return int(comparison_id)


def test_product_votes_blind_once_per_pair_and_sees_the_versions_after(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    comparison_id = _finished_comparison(engine, world.healthy)
    at = open_page(app_as("product"), "review", user=world.healthy)
    assert not at.exception, at.exception
    pair = at.session_state["review_pair"]
    assert "a" * 12 not in texts(at) and "b" * 12 not in texts(at)  # versions hidden
    at.button(key=f"vote_left_{pair.pair_id}").click().run()
    assert not at.exception, at.exception
    shown = texts(at)
    left_version = ("a" if pair.x_on_left else "b") * 12
    assert f"Left was {left_version}" in shown
    with engine.connect() as conn:
        votes = conn.execute(
            select(review_votes.c.choice, review_votes.c.x_on_left)
            .join(review_pairs, review_pairs.c.id == review_votes.c.pair_id)
            .where(review_pairs.c.comparison_id == comparison_id)
        ).all()
    assert [tuple(vote) for vote in votes] == [("x" if pair.x_on_left else "y", pair.x_on_left)]
    assert "Nothing left to vote on for this user" in shown


def test_review_results_list_every_reviewed_user_and_pool_versions_by_age(
    app_as: Callable[..., AppTest], engine: Engine
) -> None:
    user_id = f"overview-{uuid.uuid4().hex[:8]}"
    comparison_id = _finished_comparison(engine, user_id)
    voter = Actor(EMAIL_OF["product"], Role.PRODUCT)
    with engine.begin() as conn:
        pair_id = conn.execute(
            select(review_pairs.c.id).where(review_pairs.c.comparison_id == comparison_id)
        ).scalar_one()
        # The pair's x image is version "a": a vote for x is a vote for a.
        record_vote(conn, voter, pair_id, "left", x_on_left=True)
    at = open_page(app_as("product"), "review")
    assert not at.exception, at.exception
    table = next(frame.value for frame in at.dataframe if "result" in frame.value.columns)
    row = table[table["user"] == user_id].iloc[0]
    assert (row["versions"], row["votes"], row["decisive"]) == (2, 1, 1)
    assert row["result"].startswith(f"{'a' * 12} wins 1 of 1 decisive votes (100%")
    # The ledger knows no training for versions "a" and "b": their vote is left out of
    # the earlier-against-later pool, and the page says so.
    assert "vote(s) left out: a version the training history has no date for" in texts(at)


def test_support_compares_but_has_no_review_page(app_as: Callable[..., AppTest]) -> None:
    at = app_as("support")
    with pytest.raises(ValueError, match=r"Known pages: \[.*compare\.py'\]"):
        open_page(at, "review")  # not registered for support: unreachable, even by URL


def test_the_user_page_links_a_finding_to_the_comparison_that_proves_it_and_shows_pictures(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    at = open_page(app_as("support"), "user", user=world.stale)
    assert not at.exception, at.exception
    links = [element.proto for element in at.get("page_link")]
    compare = [link for link in links if "compare" in link.page]
    assert compare, [link.label for link in links]
    assert {link.label for link in compare} == {"Compare stored · latest on this user's images"}
    assert all(
        f"user={world.stale}" in link.query_string
        and "columns=stored%2Clatest" in link.query_string
        for link in compare
    ), [link.query_string for link in compare]
    # The training ZIPs are queued for a worker to make thumbnails (once each).
    with engine.connect() as conn:
        queued = conn.execute(
            text(
                "SELECT count(*) FROM ops.procrastinate_jobs "
                "WHERE task_name = 'photos.read' AND status = 'todo'"
            )
        ).scalar_one()
    assert queued >= 1
    assert "A worker is reading" in texts(at)
