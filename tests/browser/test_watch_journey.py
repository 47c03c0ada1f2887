"""The watch catches a bad retrain in a real browser, with nobody clicking: a DEMO console
started with an alert webhook (a loopback receiver), a healthy persona retrained the way
the app does it (`python -m core.demo --app-retrain … --photos 5 --squeeze`: five new
photos only, squeezed, the row's version left stale), and within two minutes of the
training's end the User page shows the verdict in red with its comparison, the Users
filter on RETRAIN_REGRESSED lists the user, Fleet → Recent retrains has the retrain with
its comparison, and the receiver got exactly one message, naming the user.

Its own console: the session's has no webhook, and other journeys' retrains there would
alert too.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import Engine, select

from core.db import embedded_postgres_url, make_engine, stop_embedded_postgres
from core.demo.personas import PERSONAS
from core.jobs.service import stop_worker
from core.ledger.reviews import retrain_reviews
from core.ledger.tables import ledger_state
from core.sandbox.service import stop_sandbox
from core.scan.tables import scans
from core.text import WORD_JOINER
from core.watch.run import SINCE_KEY
from tests.browser.conftest import (
    Console,
    console_page,
    grid_rows,
    new_user_environment,
    open_console,
    running_console,
    wait_for_text,
)
from tests.waits import wait_for
from tests.watch.receiver import Receiver
from tests.workers import ROOT

pytestmark = pytest.mark.timeout(900)

HEALTHY = next(persona for persona in PERSONAS if persona.key == "healthy_single")
SUPPORT = "support@demo.sselfie.test"
CAUGHT_WITHIN_S = 120.0


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def watched_console(receiver: Receiver) -> Iterator[Console]:
    data_dir = Path(tempfile.mkdtemp(prefix="sselfie-watch-"))
    environment = {**new_user_environment(data_dir), "ALERT_WEBHOOK_URL": receiver.url}
    started = (
        ("stopping the DEMO worker", partial(stop_worker, data_dir)),
        ("stopping the sandbox", partial(stop_sandbox, data_dir / "sandbox")),
        ("stopping the embedded PostgreSQL", partial(stop_embedded_postgres, data_dir)),
    )
    with running_console(data_dir, environment, stops=started) as running:
        yield running


@pytest.fixture
def page(
    browser: Browser, watched_console: Console, request: pytest.FixtureRequest
) -> Iterator[Page]:
    with console_page(browser, watched_console, request) as opened:
        yield opened


def _watching(engine: Engine) -> bool:
    """The first scan finished (the ledger listed once) and the watch began."""
    with engine.connect() as conn:
        finished = conn.execute(
            select(scans.c.id).where(scans.c.status == "finished").limit(1)
        ).scalar_one_or_none()
        began = conn.execute(
            select(ledger_state.c.value).where(ledger_state.c.key == SINCE_KEY)
        ).scalar_one_or_none()
    return finished is not None and began is not None


def _verdict(engine: Engine, training_id: str) -> str | None:
    with engine.connect() as conn:
        found = conn.execute(
            select(retrain_reviews.c.status, retrain_reviews.c.verdict).where(
                retrain_reviews.c.training_id == training_id
            )
        ).one_or_none()
    return found.verdict if found is not None and found.status == "done" else None


def _app_retrain(console: Console) -> str:
    """The app's retrain of the healthy persona; the training's id (printed first)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "core.demo",
            "--app-retrain",
            HEALTHY.user_id,
            "--photos",
            "5",
            "--squeeze",
        ],
        cwd=ROOT,
        env=new_user_environment(console.data_dir),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]  # "training <id>: succeeded"
    assert first.endswith(": succeeded"), done.stdout
    return first.split()[1].rstrip(":")


def _grid_row_with(page: Page, text: str, timeout_s: float = 30.0) -> str:
    """The cells of the first grid's row that shows ``text``, tab-separated, as read (the
    grid draws on a canvas; its cells' accessible copies carry the text)."""

    def find() -> str | None:
        for cells in grid_rows(page).values():
            shown = "\t".join(cell.replace(WORD_JOINER, "") for cell in cells)
            if text in shown:
                return shown
        return None

    found: str = wait_for(find, timeout=timeout_s, what=f"a table row with {text!r}")
    return found


def _shown_after_reloads(page: Page, text: str, deadline: float) -> None:
    """Reload until ``text`` shows (nobody clicks: the page is only opened again)."""
    while True:
        try:
            wait_for_text(page, text, 5)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            page.reload()


def test_an_app_style_bad_retrain_is_caught_within_two_minutes_with_one_alert(
    page: Page, watched_console: Console, receiver: Receiver
) -> None:
    open_console(page, watched_console.base_url, f"user?user={HEALTHY.user_id}&as={SUPPORT}")
    wait_for_text(page, "Findings", 180)  # the demo world is seeded and its worker up
    engine = make_engine(embedded_postgres_url(watched_console.data_dir))
    try:
        wait_for(lambda: _watching(engine), timeout=300, what="the first scan and the watch")
        training_id = _app_retrain(watched_console)
        ended = time.monotonic()
        verdict = wait_for(
            lambda: _verdict(engine, training_id),
            timeout=CAUGHT_WITHIN_S,
            what="the watch's verdict on the app's retrain",
            every=1.0,
        )
        caught_after = time.monotonic() - ended
    finally:
        engine.dispose()
    assert verdict == "worse"
    assert caught_after <= CAUGHT_WITHIN_S

    deadline = time.monotonic() + 30
    page.reload()
    _shown_after_reloads(page, "Last retrain: Worse", deadline)
    wait_for_text(page, "trained on 5 photos")
    wait_for_text(page, "Comparison #")

    open_console(page, watched_console.base_url, f"users?code=RETRAIN_REGRESSED&as={SUPPORT}")
    row = _grid_row_with(page, HEALTHY.email)
    assert "RETRAIN_REGRESSED" in row and "STALE_VERSION" in row

    open_console(page, watched_console.base_url, f"fleet?view=Recent+retrains&as={SUPPORT}")
    row = _grid_row_with(page, HEALTHY.email)
    assert "Worse" in row and "16 → 5" in row, row

    wait_for(lambda: receiver.delivered(), timeout=60, what="the alert")
    time.sleep(5)  # a second message, were one coming, would be on its way by now
    messages = receiver.delivered()
    assert len(messages) == 1, [message.text for message in messages]
    assert HEALTHY.email in messages[0].text and HEALTHY.user_id in messages[0].text
    assert receiver.token not in messages[0].text
