"""The Retrain page through the real entry in LIVE mode (AppTest), on the pages' world:
admins only; the target read from the ledger; a draft started once; the User page links
to the wizard and lists the console's retrains."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, delete, func, insert, select
from streamlit.testing.v1 import AppTest

from core.compare.scores import ColumnStats, ComparisonStats
from core.compare.tables import comparison_images, comparisons
from core.retrain.tables import retrains
from core.sandbox.server import RunningSandbox
from tests.pages.conftest import (
    EMAIL_OF,
    forget_history_syncs,
    history_syncs_waiting,
    listed_ago,
    listing_requests,
    open_page,
    texts,
    unescaped,
)
from tests.user_world import UserWorld

pytestmark = pytest.mark.timeout(180)


def _drafts(engine: Engine, user_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(retrains)
                .where(retrains.c.user_id == user_id, retrains.c.status == "draft")
            ).scalar_one()
        )


@pytest.mark.parametrize("role", ["support", "product"])
def test_only_admins_have_the_retrain_page(app_as: Callable[..., AppTest], role: str) -> None:
    with pytest.raises(ValueError, match="Known pages"):
        open_page(app_as(role), "retrain")  # not registered: unreachable, even by URL


def test_an_admin_sees_where_the_retrain_goes_and_starts_one_draft(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(delete(retrains).where(retrains.c.user_id == world.stale))
    at = open_page(app_as("admin"), "retrain", user=world.stale)
    assert not at.exception, at.exception
    shown = texts(at)
    assert "(the user's own model)" in shown and "(pinned)" in shown
    start = next(button for button in at.button if button.label == "Start a retrain")
    start.click().run()
    assert not at.exception, at.exception
    assert _drafts(engine, world.stale) == 1
    at.run()  # the draft again: no second one
    assert _drafts(engine, world.stale) == 1
    assert "Add photos" in [button.label for button in at.button]
    # The gate's figures in words, each with the rule it is held to.
    (gate_table,) = [frame.value for frame in at.dataframe if "rule" in frame.value.columns]
    rules = gate_table.set_index("figure")["rule"]
    assert list(rules.index)[:3] == ["photos kept", "usable (not rejected)", "median short side"]
    assert rules["usable (not rejected)"].startswith("blocks under 10")
    assert rules["median short side"] == "blocks when down 25% or more"
    with engine.connect() as conn:
        draft = conn.execute(select(retrains).where(retrains.c.user_id == world.stale)).one()
    assert draft.requested_by == EMAIL_OF["admin"]
    assert draft.destination and draft.trigger_word


def test_a_user_without_a_succeeded_training_is_refused_plainly(
    app_as: Callable[..., AppTest], world: UserWorld
) -> None:
    at = open_page(app_as("admin"), "retrain", user=world.no_row)
    assert not at.exception, at.exception
    assert "no succeeded training on record" in texts(at)


def test_the_user_page_offers_the_wizard_to_admins_only(
    app_as: Callable[..., AppTest], world: UserWorld
) -> None:
    def retrain_links(role: str) -> list[str]:
        at = open_page(app_as(role), "user", user=world.stale)
        assert not at.exception, at.exception
        assert "Retrains run from this console" in texts(at)
        return [
            element.proto.label
            for element in at.get("page_link")
            if "retrain" in element.proto.page.lower()
        ]

    assert "Open the retrain wizard" in retrain_links("admin")
    assert retrain_links("support") == []


def test_a_stale_history_is_left_to_the_workers_and_holds_the_start(
    app_as: Callable[..., AppTest],
    world: UserWorld,
    engine: Engine,
    sandbox_server: RunningSandbox,
    fresh_runtime: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HISTORY_FRESH_SECONDS", "60")
    with engine.begin() as conn:
        conn.execute(delete(retrains).where(retrains.c.user_id == world.stale))
    listed_ago(engine, "1 hour")
    listings = listing_requests(sandbox_server)
    try:
        at = open_page(app_as("admin"), "retrain", user=world.stale)
        assert not at.exception, at.exception
        assert "(the user's own model)" in texts(at)  # the target, from what is stored
        start = next(button for button in at.button if button.label == "Start a retrain")
        assert start.disabled
        assert "A worker is reading it now" in texts(at)
        at.run()
        assert history_syncs_waiting(engine) == 1  # asked once, however often the page runs
        assert listing_requests(sandbox_server) == listings  # the page listed nothing itself
        assert _drafts(engine, world.stale) == 0
    finally:
        listed_ago(engine, "0 s")
        forget_history_syncs(engine)


def _gate_of_a_retrain(engine: Engine, world: UserWorld, change: float) -> None:
    """A retrain of the stale user from v1 to v3 whose gate's comparison has ended and was
    read (``change``: the new version's identity against the current one's, paired by
    seed), kept by an admin."""
    old, new = world.replicate.stale_versions[-1], world.replicate.stale_versions[0]
    columns = [
        {
            "letter": letter,
            "name": version[:12],
            "label": f"{letter}: {version[:12]} ({version[:12]}, app's input)",
            "version_id": version,
            "model_id": world.replicate.stale_model,
            "style": "app",
            "trigger_word": "user51a1e000",
            "trigger_sent": "user51a1e000",
            "input": {"prompt": "user51a1e000, woman, a headshot", "lora_scale": 1.0},
            "ignored": [],
        }
        for letter, version in (("A", old), ("B", new))
    ]
    figures = ComparisonStats(
        0.03,
        tuple(
            ColumnStats(letter, 4, 4, 0.4, 0.01, 120.0, vs_a, None)
            for letter, vs_a in (("A", None), ("B", change))
        ),
    )
    with engine.begin() as conn:
        conn.execute(delete(retrains).where(retrains.c.user_id == world.stale))
        comparison_id = conn.execute(
            insert(comparisons)
            .values(
                user_id=world.stale,
                requested_by=EMAIL_OF["admin"],
                requested_role="admin",
                confirm_token=f"gate-test-{change}",
                status="finished",
                prompt="a headshot",
                category="headshot",
                seeds=[1101],
                columns=columns,
                estimate_usd=0.09,
                stats=figures.to_json(),
                verdict=["the verdict lines"],
            )
            .returning(comparisons.c.id)
        ).scalar_one()
        for letter, version in (("A", old), ("B", new)):
            conn.execute(
                insert(comparison_images).values(
                    comparison_id=comparison_id,
                    letter=letter,
                    seed=1101,
                    version_id=version,
                    input={"seed": 1101},
                    status="succeeded",
                    prediction_id=f"gatetestprediction{letter.lower()}",
                    scores={"face_found": True, "identity": 0.4, "sharpness": 120.0},
                )
            )
        conn.execute(
            insert(retrains).values(
                user_id=world.stale,
                requested_by=EMAIL_OF["admin"],
                requested_role="admin",
                reason="images got worse",
                status="succeeded",
                trainer_model="ostris/flux-dev-lora-trainer",
                trainer_version="0" * 64,
                destination=world.replicate.stale_model,
                trigger_word="user51a1e000",
                previous_version=old,
                new_version=new,
                comparison_id=comparison_id,
                gate_read_at=func.now(),
                decision="kept",
                decided_by=EMAIL_OF["admin"],
                decided_at=func.now(),
                decision_reason="the gate says worse",
            )
        )


def test_the_gate_says_its_bottom_line_first_and_names_the_current_and_new_versions(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    _gate_of_a_retrain(engine, world, change=0.06)
    try:
        at = open_page(app_as("admin"), "retrain", user=world.stale)
        assert not at.exception, at.exception
        alerts = [unescaped(alert.value) for alert in at.error]
        bottom = next(alert for alert in alerts if alert.startswith("**"))
        email = re.escape(world.email(world.stale))
        assert re.fullmatch(
            rf"\*\*The new version \(v3 · trained [^)]+\) makes images less like {email} than "
            r"the current version \(v1 · trained [^)]+\), beyond noise\.\*\*",
            bottom,
        ), bottom
        # Then the gate's reading with its figures, below it.
        assert alerts.index(bottom) < next(
            index for index, alert in enumerate(alerts) if alert.startswith("The new version is")
        )
        # The gate's columns are the current and the new version by name, not bare hashes.
        (figures,) = [frame.value for frame in at.dataframe if "faces" in frame.value.columns]
        titles = list(figures["column"])
        assert titles[0].startswith("current (v1 · trained "), titles
        assert titles[1].startswith("new (v3 · trained "), titles
        # Each image's prediction id is in a table to copy, not under the image.
        (ids,) = [frame.value for frame in at.dataframe if "prediction" in frame.value.columns]
        assert set(ids["prediction"]) == {"gatetestpredictiona", "gatetestpredictionb"}
        assert set(ids["column"]) == set(titles)
        assert "gatetestprediction" not in " ".join(
            re.sub(r"\]\([^)]*\)", "]", unescaped(caption.value)) for caption in at.caption
        )
    finally:
        with engine.begin() as conn:
            conn.execute(delete(retrains).where(retrains.c.user_id == world.stale))
