"""Data that reads as Markdown, put where the real app would put it, shown in chromium as
its characters and never as a live link (each was a live link before pages showed data
through ``core.text.inert`` and ``dashboard.messages``):

- a photo name in the user's training ZIP, on the admin's Retrain page, where the wizard
  lists the previous training's photos;
- a ``training_id`` in the app's ``user_models`` row, in the User page's warning about
  that training;
- a ``?user=`` in the User page's address, in its error box.

The checks read the page as drawn: the hostile text is there (``inert`` may put an
invisible word joiner inside its URL), and no link on the whole page leads to
evil.example. Links are judged by the host they lead to, not by ``href*=``: the User
page's own link to the training on Replicate rightly carries the row's training_id,
percent-encoded, in its path.

The hostile data goes where the app keeps it: the ZIP is replaced in the app's blob store
(the sandbox's ``/_blob``) at the URL the user's training was given, the row is updated in
the console's embedded database.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import zipfile
from typing import Any

import httpx
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page
from sqlalchemy import update

from core.db import embedded_postgres_url, make_engine
from core.demo.personas import PERSONAS
from core.schema import app_metadata
from tests.browser.conftest import Console, open_console

pytestmark = pytest.mark.timeout(600)

ADMIN = "admin@demo.sselfie.test"
EVIL_HOST = "evil.example"
PHOTO_NAME = "x` [Session expired - sign in again](https://evil.example/login) `.jpg"
TRAINING_ID = "[t](https://evil.example/tr)"
USER_PARAM = "[click here](https://evil.example/x)"
# One user per injection, none of them another browser test's.
PHOTOS_OF = next(persona for persona in PERSONAS if persona.key == "healthy_single")
ROW_OF = next(persona for persona in PERSONAS if persona.key == "trainer_changed")
SEEDED_S = 180.0  # the first page load seeds the DEMO world
SHOWN_S = 180.0  # a draft's earlier photos are loaded by the worker, beside the first scan

# What the page draws now: the texts under ``scope`` (invisible word joiners dropped) and
# every link, anywhere on the page, that leads to the hostile host.
_DRAWN = """([scope, host]) => ({
    texts: [...document.querySelectorAll(scope)]
        .map(element => element.innerText.replaceAll('\\u2060', '')),
    links: [...document.querySelectorAll('a[href]')]
        .filter(a => {
            try {
                const to = new URL(a.getAttribute('href'), location.href).hostname;
                return to === host || to.endsWith('.' + host);
            } catch (error) {
                return false;
            }
        })
        .map(a => a.outerHTML),
})"""
_SHOWN_OR_LINKED = f"""(args) => {{
    const drawn = ({_DRAWN})(args);
    return drawn.links.length > 0 || drawn.texts.some(text => text.includes(args[2]));
}}"""


def shows_as_text(page: Page, scope: str, text: str, timeout_s: float) -> None:
    """Wait until an element under ``scope`` shows ``text`` or any link leads to
    evil.example (whichever comes first), then assert the text is shown and no link is."""
    # On a timeout the assertions below say what the page shows instead.
    with contextlib.suppress(PlaywrightError):
        page.wait_for_function(
            _SHOWN_OR_LINKED, arg=[scope, EVIL_HOST, text], timeout=timeout_s * 1000
        )
    drawn: dict[str, Any] = page.evaluate(_DRAWN, [scope, EVIL_HOST])
    assert not drawn["links"], f"live links to {EVIL_HOST}: {drawn['links']}"
    assert any(text in shown for shown in drawn["texts"]), (
        f"{text!r} is not shown under {scope}; it shows: {drawn['texts']}"
    )


def _sandbox(console: Console) -> httpx.Client:
    base = json.loads((console.data_dir / "sandbox" / "server.json").read_text())["base_url"]
    # The sandbox takes any token.
    return httpx.Client(
        base_url=base, headers={"Authorization": "Bearer r8_browser_test"}, timeout=30.0
    )


def _model_row(console: Console, user_id: str, timeout_s: float = SEEDED_S) -> Any:
    """The user's ``user_models`` row, once the DEMO world has been seeded."""
    engine = make_engine(embedded_postgres_url(console.data_dir))
    user_models = app_metadata.tables["user_models"]
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            with engine.connect() as conn:
                row = conn.execute(
                    user_models.select().where(user_models.c.user_id == user_id)
                ).one_or_none()
            if row is not None:
                return row
            assert time.monotonic() < deadline, f"no user_models row for {user_id}"
            time.sleep(0.5)
    finally:
        engine.dispose()


def _with_member(zip_bytes: bytes, name: str) -> bytes:
    """The ZIP with one more member, ``name``, holding a copy of its first photo (the way a
    user's browser zipped a photo whose file name was ``name``)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(zip_bytes)) as original,
        zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive,
    ):
        members = original.infolist()
        for info in members:
            archive.writestr(info, original.read(info))
        archive.writestr(
            zipfile.ZipInfo(name, date_time=members[0].date_time), original.read(members[0])
        )
    return out.getvalue()


def test_a_photo_name_from_the_training_zip_is_text_on_the_retrain_page(
    page: Page, console: Console
) -> None:
    open_console(page, console.base_url, f"retrain?user={PHOTOS_OF.user_id}&as={ADMIN}")
    start = page.get_by_role("button", name="Start a retrain")
    start.wait_for(state="visible", timeout=SEEDED_S * 1000)
    # The user's training ZIP, in the app's blob store, holds a photo with that name.
    training_id = _model_row(console, PHOTOS_OF.user_id).training_id
    with _sandbox(console) as sandbox:
        training = sandbox.get(f"/v1/trainings/{training_id}")
        training.raise_for_status()
        zip_url = training.json()["input"]["input_images"]
        original = sandbox.get(zip_url)
        original.raise_for_status()
        sandbox.put(
            zip_url,
            content=_with_member(original.content, PHOTO_NAME),
            headers={"content-type": "application/zip"},
        ).raise_for_status()
    start.click()
    shows_as_text(
        page, '[data-testid="stMain"] [data-testid="stMarkdownContainer"]', PHOTO_NAME, SHOWN_S
    )


def test_a_training_id_from_the_app_row_is_text_in_the_user_page_warning(
    page: Page, console: Console
) -> None:
    open_console(page, console.base_url)
    _model_row(console, ROW_OF.user_id)
    engine = make_engine(embedded_postgres_url(console.data_dir))
    user_models = app_metadata.tables["user_models"]
    try:
        with engine.begin() as conn:
            conn.execute(
                update(user_models)
                .where(user_models.c.user_id == ROW_OF.user_id)
                .values(training_id=TRAINING_ID)
            )
    finally:
        engine.dispose()
    open_console(page, console.base_url, "user", user=ROW_OF.user_id)
    shows_as_text(page, '[data-testid="stAlert"]', TRAINING_ID, 60)


def test_a_user_id_from_the_address_is_text_in_the_user_page_error(
    page: Page, console: Console
) -> None:
    open_console(page, console.base_url, "user", timeout_s=SEEDED_S, user=USER_PARAM)
    shows_as_text(page, '[data-testid="stAlert"]', USER_PARAM, 60)
