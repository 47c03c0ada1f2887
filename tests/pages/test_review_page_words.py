"""The Blind review page speaks as staff do, through the real entry in LIVE mode (AppTest):
versions revealed by name ("v1 · trained 3 Oct", with the column and the id to copy),
users by their email first, a per-user row that opens on a click, and a filter that takes
an email as well as a user id.

Each test has its own comparison and user (the module's database is shared by its
tests); the stale user is the only one with three versions in the ledger, so only the
reveal uses it.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable

import pytest
from PIL import Image
from sqlalchemy import Engine, insert, select
from streamlit.testing.v1 import AppTest

from core.compare.pairs import build_pairs
from core.compare.tables import comparison_images, comparisons, review_pairs
from core.review.store import record_vote
from core.roles import Actor, Role
from tests.pages.conftest import EMAIL_OF, open_page, texts
from tests.user_world import UserWorld

pytestmark = pytest.mark.timeout(300)

TRAINED = r"trained \d{1,2} [A-Z][a-z]{2}( \d{4})?"


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 80), colour).save(out, format="JPEG")
    return out.getvalue()


def _comparison(engine: Engine, user_id: str, columns: list[tuple[str, str, str, str]]) -> int:
    """A finished comparison of ``columns`` (letter, name, style, version), one seed, as
    the workers leave it, with its blind-review pairs; returns its id."""
    with engine.begin() as conn:
        comparison_id = int(
            conn.execute(
                insert(comparisons)
                .values(
                    user_id=user_id,
                    requested_by="product@staff.test",
                    requested_role="product",
                    confirm_token=f"words-{uuid.uuid4().hex}",
                    status="finished",
                    prompt="a headshot",
                    category="headshot",
                    seeds=[7],
                    columns=[
                        {"letter": letter, "name": name, "style": style, "version_id": version}
                        for letter, name, style, version in columns
                    ],
                    estimate_usd=0.06,
                )
                .returning(comparisons.c.id)
            ).scalar_one()
        )
        for index, (letter, _, _, version) in enumerate(columns):
            conn.execute(
                insert(comparison_images).values(
                    comparison_id=comparison_id,
                    letter=letter,
                    seed=7,
                    version_id=version,
                    input={"seed": 7},
                    status="succeeded",
                    preview=_jpeg((60 * index, 30, 200 - 60 * index)),
                )
            )
        assert build_pairs(conn, comparison_id) >= 1
    return comparison_id


def _voted(engine: Engine, comparison_id: int) -> None:
    """Product's vote for the x image of each of the comparison's pairs."""
    voter = Actor(EMAIL_OF["product"], Role.PRODUCT)
    with engine.begin() as conn:
        for pair_id in conn.execute(
            select(review_pairs.c.id).where(review_pairs.c.comparison_id == comparison_id)
        ).scalars():
            record_vote(conn, voter, pair_id, "left", x_on_left=True)


def test_the_reveal_names_each_version_and_its_column_with_the_id_to_copy(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    v1, v2 = world.replicate.stale_versions[-1], world.replicate.stale_versions[-2]
    _comparison(engine, world.stale, [("A", "stored", "app", v1), ("B", "v2", "app", v2)])
    at = open_page(app_as("product"), "review", user=world.stale)
    assert not at.exception, at.exception
    pair = at.session_state["review_pair"]
    assert "v1 ·" not in texts(at) and "v2 ·" not in texts(at)  # hidden until the vote
    at.button(key=f"vote_left_{pair.pair_id}").click().run()
    assert not at.exception, at.exception
    shown = texts(at)
    sides = {
        "v1": f"v1 · {TRAINED} \\(column A: stored, the app's input\\)",
        "v2": f"v2 · {TRAINED} \\(column B: the app's input\\)",
    }
    left, right = ("v1", "v2") if _version_of(engine, pair.left_image) == v1 else ("v2", "v1")
    assert re.search(f"Left was {sides[left]}, right was {sides[right]}", shown), shown
    # The full ids beside the names, to copy.
    assert {v1, v2} <= {block.value for block in at.code}
    # The user's results name the versions too, the ids in their own column.
    assert re.search(f"v[12] · {TRAINED} wins 1 of 1 decisive votes", shown), shown
    versions = next(frame.value for frame in at.dataframe if "wins" in frame.value.columns)
    assert set(versions["version id"]) == {v1, v2}
    assert all(re.fullmatch(f"v[12] · {TRAINED}", name) for name in versions["version"])


def _version_of(engine: Engine, image_id: int) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(comparison_images.c.version_id).where(comparison_images.c.id == image_id)
            ).scalar_one()
        )


def test_a_per_user_row_leads_with_the_email(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    _voted(
        engine,
        _comparison(
            engine,
            world.missing_model,
            [("A", "stored", "app", "e" * 64), ("B", "site", "site", "f" * 64)],
        ),
    )
    at = open_page(app_as("product"), "review")
    assert not at.exception, at.exception
    table = next(frame.value for frame in at.dataframe if "result" in frame.value.columns)
    assert list(table.columns[:2]) == ["email", "user"]
    row = table[table["user"] == world.missing_model].iloc[0]
    assert row["email"] == world.email(world.missing_model)


def test_a_click_on_a_per_user_row_opens_that_user(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    _voted(
        engine,
        _comparison(
            engine,
            world.healthy,
            [("A", "stored", "app", "a" * 64), ("B", "site", "site", "b" * 64)],
        ),
    )
    at = app_as("product")
    at.query_params["as"] = EMAIL_OF["product"]  # DEMO's acting staff member rides along
    at = open_page(at, "review")
    assert not at.exception, at.exception
    table = next(frame.value for frame in at.dataframe if "result" in frame.value.columns)
    index = list(table["user"]).index(world.healthy)
    # A click on any cell of the row (what chromium sends), not only on its checkbox.
    at.session_state["review_users_table"] = {
        "selection": {"rows": [], "columns": [], "cells": [[index, "votes"]]}
    }
    at.run()
    assert not at.exception, at.exception
    assert at.query_params.get("user") == world.healthy
    assert at.query_params.get("as") == EMAIL_OF["product"]
    assert at.query_params.get("tab") == "Results"  # that user's results, not the votes
    assert at.text_input(key="review_user").value == world.healthy
    shown = texts(at)
    assert f"Only {world.email(world.healthy)} · {world.healthy}." in shown
    assert "aaaaaaaaaaaa wins 1 of 1 decisive votes" in shown
    assert "the earlier version against the later one" not in shown  # the overview has gone
    # From there, the user's own page (the acting staff member still riding along).
    at.button(key="review_open_user").click().run()
    assert not at.exception, at.exception
    assert f"User {world.healthy}" in texts(at)
    assert at.query_params.get("as") == EMAIL_OF["product"]


def test_the_user_filter_takes_an_email(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    _voted(
        engine,
        _comparison(
            engine,
            world.prefixed,
            [("A", "stored", "app", "c" * 64), ("B", "latest", "app", "d" * 64)],
        ),
    )
    at = open_page(app_as("product"), "review")
    at.text_input(key="review_user").input(f"  {world.email(world.prefixed).upper()} ").run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "No votes yet for this user" not in shown
    assert f"Only {world.email(world.prefixed)} · {world.prefixed}." in shown
    assert "cccccccccccc wins 1 of 1 decisive votes" in shown
    votes = next(frame.value for frame in at.dataframe if "wins" in frame.value.columns)
    assert set(votes["version id"]) == {"c" * 64, "d" * 64}
