"""The User page through the real entry (LIVE settings, test database, sandbox)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import Engine, delete, insert, select
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Image as ImageElement

from core.sandbox.catalog import FAST_FLUX_TRAINER_VERSION
from core.sandbox.server import RunningSandbox
from core.schema import ai_images, generated_images, user_models, users
from dashboard.diagnosis import forget_facts
from tests.pages.conftest import (
    forget_history_syncs,
    frames_with,
    history_syncs_waiting,
    listed_ago,
    listing_requests,
    open_page,
    texts,
    unescaped,
)
from tests.user_world import UserWorld


def _user_page(app_as: Callable[..., AppTest], user_id: str, role: str = "support") -> AppTest:
    at = open_page(app_as(role), "user", user=user_id)
    assert not at.exception, at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {unescaped(metric.label): unescaped(metric.value) for metric in at.metric}


# "v2 · trained 3 Oct" (the year only when it is not this one's): core.versions.version_name
NAMED = r"trained \d{1,2} [A-Z][a-z]{2}( \d{4})?"


def _copyable(at: AppTest) -> list[str]:
    return [str(code.value) for code in at.code]


def test_the_heading_is_the_users_email_with_the_id_below_to_copy(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    with engine.connect() as conn:
        email = conn.execute(select(users.c.email).where(users.c.id == world.stale)).scalar_one()
    at = _user_page(app_as, world.stale)
    assert [unescaped(title.value) for title in at.title] == [email]
    assert f"User {world.stale}" in [unescaped(c.value).split(" · ")[0] for c in at.caption]
    assert _copyable(at)[0] == world.stale


def test_stale_row_shows_stored_vs_latest(app_as: Callable[..., AppTest], world: UserWorld) -> None:
    at = _user_page(app_as, world.stale)
    versions = world.replicate.stale_versions
    metrics = _metrics(at)
    # Named as staff call them, each full hash beside to copy.
    # The number large, the day under it (a whole name does not fit a metric's width).
    assert metrics["stored version"] == "v1" and metrics["latest version"] == "v3", metrics
    days = [caption.value for caption in at.caption if re.fullmatch(NAMED, caption.value)]
    assert len(days) >= 2, days
    assert versions[-1] in _copyable(at) and versions[0] in _copyable(at)
    assert metrics["versions behind"] == "2"
    assert metrics["training status (row)"] == "completed"
    assert "Stored ≠ latest — 2 versions behind." in [unescaped(error.value) for error in at.error]

    db_users, db_model = frames_with(at, "column")[-2:]
    assert list(db_users["column"]) == [column.name for column in users.columns]
    assert list(db_model["column"]) == [column.name for column in user_models.columns]
    (all_versions,) = frames_with(at, "version id")
    assert list(all_versions["version id"]) == list(versions)
    assert list(all_versions["latest"]) == [True, False, False]
    assert list(all_versions["stored"]) == [False, False, True]
    assert all_versions["created"].notna().all()
    training_extra, training_input = frames_with(at, "name")
    assert training_extra.set_index("name").loc["output version", "value"].endswith(versions[0])
    assert training_input.set_index("name").loc["trigger_word", "value"] == "user51a1e000"
    shown = texts(at)
    assert world.replicate.stale_model in shown and "succeeded" in shown


def test_healthy_row_is_marked_as_latest(app_as: Callable[..., AppTest], world: UserWorld) -> None:
    at = _user_page(app_as, world.healthy, role="admin")
    assert _metrics(at)["versions behind"] == "0"
    assert [unescaped(success.value) for success in at.success] == [
        "Stored = latest.",
        "No findings: the row, the model and the trainings agree.",
    ]
    assert not at.error


def test_prefixed_and_foreign_values_are_named(
    app_as: Callable[..., AppTest], world: UserWorld
) -> None:
    prefixed = _user_page(app_as, world.prefixed)
    assert any("not a bare version id" in error.value for error in prefixed.error)
    foreign = _user_page(app_as, world.foreign, role="product")
    assert "Not a version of this model." in [unescaped(error.value) for error in foreign.error]
    # Not a version of the model: no place among its versions, so its short hash.
    assert _metrics(foreign)["stored version"] == f"version {FAST_FLUX_TRAINER_VERSION[:12]}…"


def test_malformed_row_shows_what_is_there(
    app_as: Callable[..., AppTest], world: UserWorld
) -> None:
    at = _user_page(app_as, world.malformed)
    warnings = " ".join(unescaped(warning.value) for warning in at.warning)
    assert "No replicate_model_id is stored" in warnings
    assert "is not a Replicate training id" in warnings
    model_row = frames_with(at, "column")[-1].set_index("column")["value"]
    assert model_row["replicate_version_id"] == repr("  not-a-version\n")
    assert model_row["replicate_model_id"] == "NULL"
    assert model_row["training_status"] == "weird-status"


def test_missing_model_and_user_without_a_row(
    app_as: Callable[..., AppTest], world: UserWorld
) -> None:
    missing = _user_page(app_as, world.missing_model)
    assert any("does not exist on Replicate (404)" in unescaped(w.value) for w in missing.warning)
    no_row = _user_page(app_as, world.no_row)
    # Signed up, never trained: one calm note, not red errors and repeated warnings.
    (note,) = no_row.info
    assert "has not trained a model yet" in note.value and "Nothing to repair" in note.value
    assert not no_row.error and not no_row.warning


def test_unknown_user_gets_a_clear_message(
    app_as: Callable[..., AppTest], world: UserWorld
) -> None:
    at = open_page(app_as("support"), "user", user="no-such-user")
    assert not at.exception
    assert at.error and "No user with id 'no-such-user'" in unescaped(at.error[0].value)
    assert "Search the Users page" in at.error[0].value


def test_no_user_chosen(app_as: Callable[..., AppTest], world: UserWorld) -> None:
    at = open_page(app_as("support"), "user")
    assert not at.exception and at.info and "No user chosen" in at.info[0].value


@pytest.mark.usefixtures("replicate_down")
def test_replicate_down_keeps_the_database_part(
    app_as: Callable[..., AppTest], world: UserWorld
) -> None:
    at = _user_page(app_as, world.stale)
    warnings = [warning.value for warning in at.warning]
    assert any("Replicate is unavailable" in text and "try again" in text for text in warnings)
    assert _metrics(at)["latest version"] == "?"
    stored = world.replicate.stale_versions[-1]
    assert _metrics(at)["stored version"] == f"version {stored[:12]}…"  # versions unknown
    assert stored in _copyable(at)
    assert list(frames_with(at, "column")[-1]["column"])[:2] == ["id", "user_id"]


def test_the_user_page_never_lists_the_fleet_and_asks_the_workers_once_for_a_gap(
    app_as: Callable[..., AppTest],
    world: UserWorld,
    engine: Engine,
    sandbox_server: RunningSandbox,
) -> None:
    # The foreign row names a training the ledger holds for another user: a gap that the
    # user's trainings by id cannot close. Only a listing could, and one just ran.
    listed_ago(engine, "0 s")
    forget_history_syncs(engine)
    listings = listing_requests(sandbox_server)
    try:
        at = open_page(app_as("support"), "user", user=world.foreign)
        assert not at.exception, at.exception
        assert "The training history is incomplete" in texts(at)
        assert "it was not there either" in texts(at)
        assert history_syncs_waiting(engine) == 0  # a listing this recent would not help
        listed_ago(engine, "1 hour")  # an old listing: the workers are asked, once
        forget_facts()
        at.run()
        assert "a worker is reading Replicate's training list" in texts(at)
        forget_facts()
        at.run()
        assert history_syncs_waiting(engine) == 1
        assert listing_requests(sandbox_server) == listings  # the page itself listed nothing
    finally:
        listed_ago(engine, "0 s")
        forget_history_syncs(engine)


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 90)).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def generations(
    engine: Engine, world: UserWorld, sandbox_server: RunningSandbox, live_env: None
) -> Iterator[dict[str, str]]:
    """Three generations of the healthy user of three shapes (a Maya chat image, a feed
    planner one, a studio photo) and one whose URL no longer answers; removed after."""
    base = sandbox_server.base_url
    urls = {}
    for name, size in {"wide": (900, 400), "tall": (300, 700), "square": (512, 512)}.items():
        path = f"outputs/words-{name}.jpg"
        httpx.put(f"{base}/_blob/{path}", content=_jpeg(*size)).raise_for_status()
        urls[name] = f"{base}/_blob/{path}"
    day = datetime(2025, 10, 3, 12, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(ai_images),
            [
                {
                    "user_id": world.healthy,
                    "image_url": urls["wide"],
                    "source": "maya_chat",
                    "created_at": day,
                },
                {
                    "user_id": world.healthy,
                    "image_url": urls["tall"],
                    "source": "feed_planner",
                    "created_at": day - timedelta(days=1),
                },
                {
                    "user_id": world.healthy,
                    "image_url": f"{base}/_blob/outputs/words-gone.jpg",
                    "source": "maya_chat",
                    "created_at": day - timedelta(days=3),
                },
            ],
        )
        conn.execute(
            insert(generated_images).values(
                user_id=world.healthy,
                category="portrait",
                image_urls=json.dumps([urls["square"]]),
                selected_url=urls["square"],
                created_at=day - timedelta(days=2),
            )
        )
    yield urls
    with engine.begin() as conn:
        conn.execute(delete(ai_images).where(ai_images.c.user_id == world.healthy))
        conn.execute(delete(generated_images).where(generated_images.c.user_id == world.healthy))


def test_generations_are_captioned_in_words_as_same_size_square_thumbnails(
    app_as: Callable[..., AppTest],
    world: UserWorld,
    generations: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown: list[bytes] = []  # every picture the run handed to the browser
    load = MemoryMediaFileStorage.load_and_get_id

    def recording(self: MemoryMediaFileStorage, data: Any, *args: Any, **kwargs: Any) -> str:
        if isinstance(data, bytes):
            shown.append(data)
        return load(self, data, *args, **kwargs)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    at = _user_page(app_as, world.healthy)
    assert not shown  # nothing downloaded until someone opens them
    at.session_state["generations_open"] = True
    at.run()
    (recent,) = [e for e in at.expander if e.label == "Recent generations"]
    images = [image for image in recent.get("image") if isinstance(image, ImageElement)]
    captions = [unescaped(caption) for image in images for caption in image.captions]
    assert captions == [
        "Maya chat image, 3 Oct 2025",
        "Feed planner image, 2 Oct 2025",
        "Studio photo · portrait, 1 Oct 2025",
    ]
    assert not [c for c in captions if "ai_images" in c or "generated_images" in c]
    assert "1 of the 4 newest images no longer answer (deleted)." in texts(at)
    # Every thumbnail is the same square, whatever the shape of the image it shows.
    sizes = {Image.open(io.BytesIO(data)).size for data in shown}
    assert len(shown) == 3 and len(sizes) == 1, sizes
    ((width, height),) = sizes
    assert width == height
