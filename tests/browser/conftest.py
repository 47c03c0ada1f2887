"""Fixtures for the real-browser tests: the console as a new user starts it, and chromium.

Why they exist: AppTest runs the scripts without a browser, so it cannot show what staff
really see (fragment timers, the sidebar navigation, what renders after the DEMO world is
seeded). These tests drive Debian's chromium (Playwright's own browser downloads are
impossible here; ``python -m tests.browser.install`` puts it in place) against a real
``streamlit run`` of the console.

- ``console`` (session): ``streamlit run dashboard/app.py`` on a free loopback port, in
  DEMO mode with the environment of a new user (no database or Replicate settings) and a
  DATA_DIR of its own, made with ``tempfile.mkdtemp``: not under pytest's basetemp, because
  pgserver makes the folders above its cluster world-traversable and another pytest session
  resets /tmp/pytest-of-<user> to 0700. The first page load starts, detached under
  DATA_DIR, the embedded PostgreSQL, the Replicate sandbox and the worker; they outlive
  streamlit, so teardown stops each of them, then removes the folder.
- ``browser`` (session): headless chromium at /usr/bin/chromium; fails, never skips, when
  it is missing (a skipped browser suite is a suite that silently stopped testing).
- ``page``: a fresh context and page per test; when the test fails, a screenshot is saved
  in the console's data folder and its path and the log's tail are written to stderr
  (teardown then keeps the screenshots and streamlit.log, and removes the rest).
- ``open_console``, ``wait_until_rendered`` and ``wait_for_text``: waits that always have
  a deadline.
- ``running_console`` and ``console_page``: the same for a console started otherwise (the
  LIVE login test's, with its own settings and secrets), torn down the same way.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psutil
import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

from core.bench.browser import console_command
from core.bench.common import free_port
from core.db import stop_embedded_postgres
from core.jobs.service import stop_worker
from core.sandbox.service import stop_sandbox
from core.text import WORD_JOINER
from tests.workers import MODE_SETTINGS

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HEALTH_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
LEFTOVER_TIMEOUT_S = 10.0
PAGE_TIMEOUT_MS = 30_000
# The first page load seeds the DEMO world (about 30 s measured here, up to ~90 s on a busy
# 2-core machine); later loads take a second or two. One generous deadline serves both.
RENDER_TIMEOUT_S = 180.0
POLL_S = 0.2
# The script has finished a run and the websocket is up (attributes Streamlit's own
# end-to-end tests wait on).
SCRIPT_DONE = (
    '[data-testid="stApp"][data-test-connection-state="CONNECTED"]'
    '[data-test-script-state="notRunning"]'
)
RENDERED = '[data-testid="stSidebarNav"], [data-testid="stMain"]'


@dataclass(frozen=True)
class Console:
    """A running console: where to browse, its DATA_DIR and its server log."""

    base_url: str
    data_dir: Path
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"


def new_user_environment(data_dir: Path) -> dict[str, str]:
    # A new user has none of the settings that pick the mode: the console runs in DEMO.
    environment = {name: value for name, value in os.environ.items() if name not in MODE_SETTINGS}
    environment["DATA_DIR"] = str(data_dir)
    return environment


def _wait_until_healthy(server: subprocess.Popen[bytes], console: Console) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while True:
        if server.poll() is not None:
            pytest.fail(
                f"streamlit exited with {server.returncode} before it was healthy; "
                f"log tail:\n{console.log_tail()}"
            )
        try:
            if httpx.get(f"{console.base_url}/_stcore/health", timeout=2.0).text == "ok":
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"streamlit was not healthy within {HEALTH_TIMEOUT_S:.0f} s; "
                f"log tail:\n{console.log_tail()}"
            )
        time.sleep(POLL_S)


def stop_process(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if it has not ended within ``STOP_TIMEOUT_S``."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=STOP_TIMEOUT_S)


def _guarded(what: str, errors: list[str], step: Callable[..., object], *args: object) -> None:
    """Run one teardown step; a failure is recorded so the next steps still run."""
    try:
        step(*args)
    except Exception as exc:
        errors.append(f"{what}: {exc!r}")


def _processes_using(data_dir: Path) -> dict[psutil.Process, str]:
    """Processes started for ``data_dir`` (named on their command line, like PostgreSQL and
    the sandbox, or as their DATA_DIR, like the worker), with their command line."""
    folder = str(data_dir.resolve())
    found = {}
    for process in psutil.process_iter():
        try:
            command = " ".join(process.cmdline())
            if folder in command or process.environ().get("DATA_DIR") == folder:
                found[process] = command
        except psutil.Error:
            continue
    return found


def _no_leftovers(data_dir: Path) -> None:
    """Every process started for this folder has ended; any still running after a grace
    period is killed and reported, so a broken stop cannot leave orphans on CI."""
    commands = _processes_using(data_dir)
    _, running = psutil.wait_procs(list(commands), timeout=LEFTOVER_TIMEOUT_S)
    for process in running:
        try:
            process.kill()
        except psutil.Error:
            continue
    if running:
        raise RuntimeError(
            "still running, killed: "
            + "; ".join(f"{process.pid} {commands[process][:120]}" for process in running)
        )


def _remove_data_dir(data_dir: Path) -> None:
    """Remove the console's folder, except failure screenshots and the log explaining them."""
    kept = {screenshot.name for screenshot in data_dir.glob("failure-*.png")}
    if not kept:
        shutil.rmtree(data_dir, ignore_errors=True)
        return
    kept.add("streamlit.log")
    for child in data_dir.iterdir():
        if child.name in kept:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


@contextmanager
def running_console(
    data_dir: Path,
    environment: Mapping[str, str],
    *options: str,
    port: int | None = None,
    stops: Sequence[tuple[str, Callable[[], object]]] = (),
) -> Iterator[Console]:
    """``streamlit run`` of the console (``console_command`` and ``options``) from the
    repository's root on ``port`` (a free loopback port by default) with ``environment``,
    its log in ``data_dir``; healthy when the block starts.

    When it ends, each step runs even when one before failed: streamlit is stopped, then
    ``stops`` (what the console started), then any process still running for ``data_dir``
    is killed and reported, then the folder is removed (failure screenshots and the log
    kept). A failed step fails the test.
    """
    port = port or free_port()
    running = Console(f"http://127.0.0.1:{port}", data_dir, data_dir / "streamlit.log")
    with running.log_path.open("wb") as log:
        server = subprocess.Popen(
            [*console_command(port), *options],
            cwd=REPO_ROOT,
            env=dict(environment),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    errors: list[str] = []
    try:
        _wait_until_healthy(server, running)
        yield running
    finally:
        _guarded("stopping streamlit", errors, stop_process, server)
        for what, stop in stops:
            _guarded(what, errors, stop)
        _guarded("checking for leftover processes", errors, _no_leftovers, data_dir)
        _guarded("removing the data folder", errors, _remove_data_dir, data_dir)
    if errors:
        pytest.fail("console teardown: " + "; ".join(errors))


@pytest.fixture(scope="session")
def console() -> Iterator[Console]:
    data_dir = Path(tempfile.mkdtemp(prefix="sselfie-browser-"))
    # The first page load starts these, detached: they outlive streamlit.
    started = (
        ("stopping the DEMO worker", partial(stop_worker, data_dir)),
        ("stopping the sandbox", partial(stop_sandbox, data_dir / "sandbox")),
        ("stopping the embedded PostgreSQL", partial(stop_embedded_postgres, data_dir)),
    )
    with running_console(data_dir, new_user_environment(data_dir), stops=started) as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run python -m tests.browser.install")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def console_page(
    browser: Browser, console: Console, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh context (no cookies: nobody logged in) and page; when the test failed, a
    screenshot is saved in the console's data folder and the log's tail written out. Use it
    in a fixture: the test's outcome is known only once the test has returned."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    opened = context.new_page()
    try:
        yield opened
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            _report_failure(opened, console, request.node.nodeid)
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, console: Console, request: pytest.FixtureRequest) -> Iterator[Page]:
    with console_page(browser, console, request) as opened:
        yield opened


def _report_failure(page: Page, console: Console, nodeid: str) -> None:
    screenshot = console.data_dir / f"failure-{re.sub(r'[^A-Za-z0-9_.-]+', '_', nodeid)}.png"
    try:
        page.screenshot(path=str(screenshot), full_page=True)
        where = str(screenshot)
    except Exception as exc:
        where = f"(screenshot failed: {exc!r})"
    sys.stderr.write(
        f"screenshot: {where} (kept with streamlit.log after the run)\n"
        f"console log tail:\n{console.log_tail()}\n"
    )


def _left_ms(deadline: float) -> float:
    return max(deadline - time.monotonic(), POLL_S) * 1000


def open_console(
    page: Page, base_url: str, path: str = "", *, timeout_s: float = RENDER_TIMEOUT_S, **query: str
) -> None:
    """Go to ``base_url/path?query`` and wait until Streamlit has finished rendering it
    (``wait_until_rendered``)."""
    url = f"{base_url.rstrip('/')}/{path.lstrip('/')}"
    if query:
        url += "?" + urlencode(query)
    deadline = time.monotonic() + timeout_s
    page.goto(url, wait_until="domcontentloaded", timeout=timeout_s * 1000)
    wait_until_rendered(page, timeout_s=max(deadline - time.monotonic(), POLL_S))


def wait_until_rendered(page: Page, *, timeout_s: float = RENDER_TIMEOUT_S) -> None:
    """Wait until the console in ``page`` (just opened, or reached by a redirect) has run
    its script to the end with the websocket connected, and the sidebar navigation or the
    main area is visible. An uncaught exception on the page fails at once, with its text,
    instead of letting the test wait for text that never comes.
    """
    deadline = time.monotonic() + timeout_s
    page.locator(SCRIPT_DONE).wait_for(state="attached", timeout=_left_ms(deadline))
    page.locator(RENDERED).first.wait_for(state="visible", timeout=_left_ms(deadline))
    exception = page.locator('[data-testid="stException"]')
    if exception.count():
        raise AssertionError(f"{page.url} shows an exception: {exception.first.inner_text()}")


# What a page says when Replicate did not answer within a page's budget (a few seconds):
# "... reload in about N s to try again". On a machine this busy the DEMO sandbox can be
# that slow; a person reloads, and so does ``wait_for_text(..., reload_when=...)``.
REPLICATE_SLOW = "Replicate is unavailable"
RELOAD_EVERY_S = 3.0


def wait_for_text(
    page: Page | Locator,
    text: str,
    timeout_s: float = 30.0,
    *,
    exact: bool = False,
    reload_when: str | None = None,
) -> Locator:
    """The first visible element with ``text`` (in ``page`` or under a locator), polled
    until ``timeout_s``; an AssertionError after that. ``reload_when``: a text that asks
    the reader to reload (``REPLICATE_SLOW``); while it shows, the page is reloaded."""
    matches = page.get_by_text(_as_shown(text, exact=exact))
    deadline = time.monotonic() + timeout_s
    reloaded = time.monotonic()
    while True:
        for index in range(matches.count()):
            if matches.nth(index).is_visible():
                return matches.nth(index)
        if (
            reload_when is not None
            and isinstance(page, Page)
            and time.monotonic() - reloaded > RELOAD_EVERY_S
            and page.get_by_text(reload_when).count()
        ):
            page.reload()
            reloaded = time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} did not appear within {timeout_s:.0f} s")
        time.sleep(POLL_S)


def _as_shown(text: str, *, exact: bool) -> re.Pattern[str]:
    """``text`` as a page shows it: data is shown through ``core.text.inert``, which puts an
    invisible word joiner into emails, URLs and arrows so they stay text, so one may stand
    between any two characters."""
    pattern = (WORD_JOINER + "?").join(re.escape(character) for character in text)
    return re.compile(f"^{pattern}$" if exact else pattern)


ROW_PX = 35  # a table row's height (and the header's) in Streamlit's data grid


def grid_rows(page: Page) -> dict[int, list[str]]:
    """The first data grid's rows on screen: row index -> its cells' texts (the grid draws
    on a canvas; ``glide-cell-<column>-<row>`` elements are its accessible copies). Read
    in one step in the page: the grid redraws its copies whenever the page reruns, so a
    cell counted first may be gone when read one by one."""
    cells: list[list[str]] = page.evaluate(
        """() => {
            const grid = document.querySelector('[data-testid="stDataFrame"]');
            if (!grid) return [];
            return [...grid.querySelectorAll('[id^="glide-cell-"]')]
                .map(cell => [cell.id, cell.innerText]);
        }"""
    )
    rows: dict[int, list[str]] = {}
    for cell_id, text in cells:
        rows.setdefault(int(cell_id.rsplit("-", 1)[1]), []).append(text)
    return rows


def click_row_with(page: Page, text: str, timeout_s: float = 30.0) -> None:
    """Select the first grid's row that has a cell with ``text`` (its checkbox column,
    drawn on the canvas): other journeys on the same console may add rows above it."""
    cell = (
        page.locator('[data-testid="stDataFrame"]')
        .first.locator('[id^="glide-cell-"]', has_text=text)
        .first
    )
    cell.wait_for(state="attached", timeout=timeout_s * 1000)
    row = int(str(cell.get_attribute("id")).rsplit("-", 1)[1])
    frame = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
    assert frame is not None
    page.mouse.click(frame["x"] + 15, frame["y"] + ROW_PX * (row + 1) + ROW_PX // 2)


# Journeys that wait for the console's own background work (the demo world's comparisons,
# queued at the first start behind the first scan) go last: meanwhile the other journeys
# run, instead of waiting on the same worker first.
LAST = frozenset({"test_product_records_twenty_blind_votes_and_sees_the_results"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.name in LAST)
