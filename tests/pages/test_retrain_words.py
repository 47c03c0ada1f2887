"""The Retrain and Compare pages in words staff can act on (AppTest, LIVE, the pages' world):
a training estimate that never reads "0 s", a Keep button that does not look like undo,
where the retrain goes and why (and the user's other model, to choose), a user found by
email, versions by name, and a status naming the step while photos are added or a
retrain is confirmed."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Engine, delete, insert, select
from streamlit.testing.v1 import AppTest

from core.ledger.sync import sync_ledger
from core.retrain.tables import retrains
from core.sandbox.catalog import FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION
from core.sandbox.server import RunningSandbox
from tests.pages.conftest import open_page, texts, unescaped
from tests.photos import selfie_zip
from tests.user_world import OWNER, STALE_TRIGGER, UserWorld, gateway_on, train

pytestmark = pytest.mark.timeout(180)

FORK = f"{OWNER}/user-stale001-selfie-lora-fork"


def _forget_retrains(engine: Engine, user_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(retrains).where(retrains.c.user_id == user_id))


@contextmanager
def _retrain(engine: Engine, user_id: str, **values: Any) -> Iterator[int]:
    """A retrain of ``user_id`` as the workers leave it (``values``), gone afterwards."""
    _forget_retrains(engine, user_id)
    row = {
        "user_id": user_id,
        "requested_by": "admin@staff.test",
        "requested_role": "admin",
        "reason": "images got worse",
        "active": True,
        "trainer_model": FAST_FLUX_TRAINER,
        "trainer_version": FAST_FLUX_TRAINER_VERSION,
        "destination": f"{OWNER}/user-stale001-selfie-lora",
        "trigger_word": STALE_TRIGGER,
        "training_id": f"tr-{uuid.uuid4().hex[:12]}",
        "submitted_at": datetime.now(UTC) - timedelta(minutes=3),
    } | values
    with engine.begin() as conn:
        retrain_id = int(
            conn.execute(insert(retrains).values(row).returning(retrains.c.id)).scalar_one()
        )
    try:
        yield retrain_id
    finally:
        _forget_retrains(engine, user_id)


def _plain(at: AppTest) -> str:
    """What the page says, as read (without the bold marks)."""
    return texts(at).replace("**", "")


def _progress_texts(at: AppTest) -> str:
    return "\n".join(unescaped(bar.proto.text) for bar in at.get("progress"))


def test_a_running_retrain_never_reads_0_s_and_says_when_nothing_is_known(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    # The sandbox's trainings end within a second: the history knows them.
    with _retrain(engine, world.stale, status="processing", step=140, steps=1400):
        at = open_page(app_as("admin"), "retrain", user=world.stale)
        assert not at.exception, at.exception
        shown = _progress_texts(at)
        assert "step 140/1400" in shown
        assert " 0 s in all" not in shown, shown
        assert "under a minute in all" in shown, shown
    # A trainer version nobody trained on yet: not known, said so.
    with _retrain(engine, world.stale, status="processing", trainer_version="e" * 64):
        at = open_page(app_as("admin"), "retrain", user=world.stale)
        assert not at.exception, at.exception
        assert "not known yet" in _progress_texts(at), _progress_texts(at)


def test_keep_does_not_wear_the_undo_icon_and_versions_go_by_name(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    newest = world.replicate.stale_versions[0]  # the model's third version
    with _retrain(
        engine,
        world.stale,
        status="succeeded",
        new_version=newest,
        finished_at=datetime.now(UTC),
        gate_read_at=datetime.now(UTC),  # the gate could not run: decide with a reason
    ):
        at = open_page(app_as("admin"), "retrain", user=world.stale)
        assert not at.exception, at.exception
        (keep,) = [button for button in at.button if button.label == "Keep the current version"]
        assert keep.proto.icon == ":material/check:"
        shown = _plain(at)
        assert "New version v3 · trained " in shown, shown
        assert newest in [code.value for code in at.code]  # the hash, to copy
        assert "current version v1 · trained " in shown, shown


def test_the_page_says_where_the_retrain_goes_and_why(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    _forget_retrains(engine, world.stale)
    at = open_page(app_as("admin"), "retrain", user=world.stale)
    assert not at.exception, at.exception
    assert (
        f"Into {world.replicate.stale_model} (the user's own model): the model the app's row "
        "points at, and the one its current version was trained into."
    ) in _plain(at)


def test_a_user_with_two_models_is_told_of_both_and_the_admin_chooses(
    app_as: Callable[..., AppTest],
    world: UserWorld,
    engine: Engine,
    sandbox_server: RunningSandbox,
) -> None:
    _forget_retrains(engine, world.stale)
    with gateway_on(sandbox_server.base_url) as gateway:  # the app forked the user's model
        gateway.create_model(FORK)
        zip_url = gateway.upload_file(
            selfie_zip(10, long_side=400), filename="images.zip", content_type="application/zip"
        ).url
        train(gateway, FORK, zip_url, STALE_TRIGGER)
        sync_ledger(ops_engine=engine, app_engine=engine, gateway=gateway)
    at = open_page(app_as("admin"), "retrain", user=world.stale)
    assert not at.exception, at.exception
    shown = _plain(at)
    assert (
        f"Into {world.replicate.stale_model} (the user's own model): the model the app's row"
        in shown
    )
    assert f"The user also has {FORK}: choose above to train into it instead." in shown, shown
    choice = at.selectbox(key=f"retrain_into_{world.stale}")
    assert choice.options[0].startswith(world.replicate.stale_model)
    choice.set_value(FORK).run()
    assert not at.exception, at.exception
    shown = _plain(at)
    assert f"Into {FORK} (the user's own model): the model you chose." in shown, shown
    assert f"The user also has {world.replicate.stale_model}" in shown
    next(button for button in at.button if button.label == "Start a retrain").click().run()
    assert not at.exception, at.exception
    with engine.connect() as conn:
        draft = conn.execute(
            select(retrains.c.destination).where(
                retrains.c.user_id == world.stale, retrains.c.status == "draft"
            )
        ).scalar_one()
    assert draft == FORK
    shown = _plain(at)  # the draft keeps its model, and the page says so
    assert f"Into {FORK} (the user's own model): the model you chose." in shown, shown
    assert f"The user also has {world.replicate.stale_model}." in shown
    _forget_retrains(engine, world.stale)


@pytest.mark.parametrize(
    ("page", "key"), [("retrain", "retrain_user"), ("compare", "compare_user")]
)
def test_a_user_is_found_by_email_in_any_case(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine, page: str, key: str
) -> None:
    _forget_retrains(engine, world.stale)
    at = open_page(app_as("admin"), page)
    assert not at.exception, at.exception
    email = world.email(world.stale)
    at.text_input(key=key).input(f"  {email.upper()} ").run()
    assert not at.exception, at.exception
    assert f"{email} · {world.stale}" in _plain(at)
    assert at.query_params["user"] == world.stale  # a reload opens the same user
    assert str(at.text_input(key=key).value).strip() == email.upper()  # what was typed stays
    if page == "retrain":  # the wizard's heading is the user's email
        assert email in [unescaped(heading.value) for heading in at.subheader]
    at.text_input(key=key).input("nobody@example.test").run()
    assert not at.exception, at.exception
    assert "No user has the email or id nobody@example.test." in _plain(at)
    at.text_input(key=key).input("example.test").run()  # part of many emails: nobody picked
    assert "users' email, trigger word or model contain it" in _plain(at)


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 80), (120, 90, 60)).save(out, format="JPEG")
    return out.getvalue()


def test_adding_photos_and_confirming_show_what_is_happening(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    _forget_retrains(engine, world.stale)
    at = open_page(app_as("admin"), "retrain", user=world.stale)
    next(button for button in at.button if button.label == "Start a retrain").click().run()
    assert not at.exception, at.exception
    at.file_uploader[0].set_value(
        [("one.jpg", _jpeg(), "image/jpeg"), ("two.jpg", _jpeg(), "image/jpeg")]
    )
    next(button for button in at.button if button.label == "Add photos").click().run()
    assert not at.exception, at.exception
    labels = [status.label for status in at.status]
    assert "Added 2 photos; a worker is checking them" in labels, labels
    assert "Saved photo 2 of 2: two.jpg (0.0 MB)" in _progress_texts(at)
    # The confirmation, opened as its button opens it, and clicked without a reason.
    at.session_state["retrain_confirm"] = "words-test-token"
    at.session_state["retrain_submitting"] = False
    at.run()
    at.button(key="retrain_confirm_words-test-token").click().run()
    assert not at.exception, at.exception
    statuses = {status.label: status.state for status in at.status}
    assert statuses.get("Not submitted") == "error", statuses
    assert "Say why this user is retrained" in _plain(at)
    _forget_retrains(engine, world.stale)
