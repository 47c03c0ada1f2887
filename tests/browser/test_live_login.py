"""LIVE login for real: chromium, a LIVE console and a real OpenID Connect provider.

AppTest can only pretend a login (``at.user``). Here the whole of it runs: the console's
"Log in" sends chromium to the provider's authorize page, a person is picked there, the
provider's token endpoint signs an ID token that Streamlit checks (discovery, JWKS, nonce,
PKCE where offered) before it sets its identity cookie, and the console reads the email
from it and its role from ``[roles]``.

- The provider: ``oidc-provider-mock`` (requirements-dev.txt), started as its own process
  on a free loopback port (as its README runs it; in a thread of this process, pytest's
  "warnings are errors" would reach its request handlers). It knows two people, each a
  button on its authorize page: an admin listed in ``[roles]``, and someone nobody gave a
  role. Its end-session page asks for a click, as real providers often do.
- The console: ``streamlit run dashboard/app.py`` (``console_command``) in LIVE: a test
  database with the app's tables and schema ops (``new_database``), the session's
  Replicate sandbox, and ``[auth]``/``[roles]`` in a secrets file of the test's own, the
  only one it reads (``--secrets.files``: a developer's ``.streamlit/secrets.toml`` is
  never used).
- A second console on the same provider and database lets a login last 5 s
  (``SESSION_MAX_AGE_SECONDS``), to see an open tab lock itself when its login ends.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine

from core.bench.common import free_port
from core.sandbox.server import RunningSandbox
from tests.browser.conftest import (
    Console,
    console_page,
    new_user_environment,
    open_console,
    running_console,
    stop_process,
    wait_for_text,
    wait_until_rendered,
)
from tests.db_fixtures import new_database
from tests.waits import wait_for

pytestmark = pytest.mark.timeout(300)

ADMIN_EMAIL = "admin@staff.test"
STRANGER_EMAIL = "stranger@elsewhere.test"
# The provider's people: ``sub`` is their button on its authorize page; the console goes by
# the email claim, never by ``sub``.
ADMIN = "ada-admin"
STRANGER = "sam-stranger"
PEOPLE = (
    {"sub": ADMIN, "email": ADMIN_EMAIL, "email_verified": True, "name": "Ada Admin"},
    {"sub": STRANGER, "email": STRANGER_EMAIL, "email_verified": True, "name": "Sam"},
)
ROLES = {"admin": [ADMIN_EMAIL]}  # the stranger is on no list
LIVE_TOKEN = "r8_liveLoginBrowserTest4d1e"
SHORT_SESSION_S = 5
PROVIDER_START_S = 30.0
# From a click to the next page: a redirect chain through the provider and the console.
HOP_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def identity_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The provider's base URL (its discovery document under /.well-known)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("identity-provider") / "provider.log"
    command = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    for person in PEOPLE:
        command += ["--user-claims", json.dumps(person)]
    with log_path.open("wb") as log:
        provider = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for(
            lambda: provider.poll() is not None or _discovery_answers(base_url),
            timeout=PROVIDER_START_S,
            what=f"the identity provider's discovery document at {base_url}",
        )
        if provider.poll() is not None:
            pytest.fail(
                f"the identity provider exited with {provider.returncode}:\n"
                + log_path.read_text(errors="replace")[-3000:]
            )
        yield base_url
    finally:
        stop_process(provider)


def _discovery_answers(base_url: str) -> bool:
    try:
        answer = httpx.get(f"{base_url}/.well-known/openid-configuration", timeout=2.0)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and answer.json().get("issuer") == base_url


@pytest.fixture(scope="module")
def live_database_url(db_engine: Engine, db_url: str) -> Iterator[str]:
    """The app's database for the LIVE consoles: the app's tables and schema ops, empty."""
    with new_database(db_engine, db_url, prefix="live_login", console_tables=True) as url:
        yield url


@contextmanager
def _live_console(
    *, identity_provider: str, database_url: str, sandbox_url: str, session_max_age_s: int
) -> Iterator[Console]:
    """A LIVE console logging in through ``identity_provider``."""
    data_dir = Path(tempfile.mkdtemp(prefix="sselfie-live-login-"))
    port = free_port()
    secrets_file = data_dir / "secrets.toml"
    secrets_file.write_text(
        _toml(
            {
                "auth": {
                    "redirect_uri": f"http://127.0.0.1:{port}/oauth2callback",
                    "cookie_secret": secrets.token_urlsafe(32),
                    "client_id": "sselfie-console",
                    "client_secret": secrets.token_urlsafe(16),
                    "server_metadata_url": f"{identity_provider}/.well-known/openid-configuration",
                },
                "roles": ROLES,
            }
        ),
        encoding="utf-8",
    )
    environment = new_user_environment(data_dir)
    environment.update(
        DATABASE_URL=database_url,
        REPLICATE_API_TOKEN=LIVE_TOKEN,
        REPLICATE_BASE_URL=sandbox_url,
        SESSION_MAX_AGE_SECONDS=str(session_max_age_s),
    )
    options = ("--secrets.files", str(secrets_file))
    with running_console(data_dir, environment, *options, port=port) as console:
        yield console


def _toml(tables: Mapping[str, Mapping[str, object]]) -> str:
    """Tables of strings and lists of strings as TOML (JSON strings are TOML strings)."""
    lines: list[str] = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
        lines.append("")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def live_console(
    identity_provider: str, live_database_url: str, sandbox_server: RunningSandbox
) -> Iterator[Console]:
    """LIVE with a login lasting 8 h (the default)."""
    with _live_console(
        identity_provider=identity_provider,
        database_url=live_database_url,
        sandbox_url=sandbox_server.base_url,
        session_max_age_s=8 * 3600,
    ) as console:
        yield console


@pytest.fixture(scope="module")
def short_session_console(
    identity_provider: str, live_database_url: str, sandbox_server: RunningSandbox
) -> Iterator[Console]:
    """LIVE with a login lasting ``SHORT_SESSION_S``."""
    with _live_console(
        identity_provider=identity_provider,
        database_url=live_database_url,
        sandbox_url=sandbox_server.base_url,
        session_max_age_s=SHORT_SESSION_S,
    ) as console:
        yield console


@pytest.fixture
def live_page(
    browser: Browser, live_console: Console, request: pytest.FixtureRequest
) -> Iterator[Page]:
    with console_page(browser, live_console, request) as opened:
        yield opened


@pytest.fixture
def short_session_page(
    browser: Browser, short_session_console: Console, request: pytest.FixtureRequest
) -> Iterator[Page]:
    with console_page(browser, short_session_console, request) as opened:
        yield opened


def _on_the_login_page(page: Page) -> None:
    main = page.get_by_test_id("stMain")
    wait_for_text(main, "Staff only. Log in with your company account to continue.")
    expect(main.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.get_by_test_id("stSidebarNavLink")).to_have_count(0)


def _pick_at_the_provider(page: Page, identity_provider: str, who: str, console: Console) -> None:
    """On the provider's authorize page, log in as ``who``; back on the console, rendered."""
    page.wait_for_url(f"{identity_provider}/oauth2/authorize?*", timeout=HOP_TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    page.get_by_role("button", name=who, exact=True).click()
    page.wait_for_url(f"{console.base_url}/", timeout=HOP_TIMEOUT_MS)
    wait_until_rendered(page)


def _log_in(page: Page, console: Console, identity_provider: str, who: str) -> None:
    """From a fresh visit to the console, through the provider's authorize page as ``who``."""
    open_console(page, console.base_url)
    _on_the_login_page(page)
    page.get_by_test_id("stMain").get_by_role("button", name="Log in").click()
    _pick_at_the_provider(page, identity_provider, who, console)


def test_an_admin_logs_in_sees_admin_pages_and_logs_out(
    live_page: Page, live_console: Console, identity_provider: str
) -> None:
    page = live_page
    _log_in(page, live_console, identity_provider, ADMIN)

    sidebar = page.get_by_test_id("stSidebar")
    wait_for_text(sidebar, f"Signed in as {ADMIN_EMAIL} (admin)")
    wait_for_text(sidebar, "LIVE — production data")
    links = page.get_by_test_id("stSidebarNavLink")
    for admin_only in ("Retrain", "Audit log", "Settings"):
        expect(links.filter(has_text=admin_only)).to_be_visible()
    links.filter(has_text="Settings").click()
    page.wait_for_url(f"{live_console.base_url}/settings")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name="Settings")).to_be_visible()
    wait_for_text(main, "Mode LIVE")
    # A reload is a new session: the identity cookie keeps the login.
    open_console(page, live_console.base_url, "settings")
    wait_for_text(page.get_by_test_id("stSidebar"), f"Signed in as {ADMIN_EMAIL} (admin)")

    page.get_by_test_id("stSidebar").get_by_role("button", name="Log out").click()
    # Streamlit clears its cookie and sends the browser to the provider's end-session page.
    page.wait_for_url(f"{identity_provider}/oauth2/end_session?*", timeout=HOP_TIMEOUT_MS)
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(f"{live_console.base_url}/", timeout=HOP_TIMEOUT_MS)
    wait_until_rendered(page)
    _on_the_login_page(page)
    # Logged out for good: a new visit is not logged in either.
    open_console(page, live_console.base_url, "settings")
    _on_the_login_page(page)


def test_someone_with_no_role_gets_no_access(
    live_page: Page, live_console: Console, identity_provider: str
) -> None:
    page = live_page
    _log_in(page, live_console, identity_provider, STRANGER)

    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name="No access")).to_be_visible()
    wait_for_text(main, f"{STRANGER_EMAIL} is not on the console's staff list")
    expect(main.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_test_id("stSidebarNavLink")).to_have_count(0)
    # Not by address either: an admin page answers with the same dead end.
    open_console(page, live_console.base_url, "settings")
    expect(page.get_by_test_id("stMain").get_by_role("heading", name="No access")).to_be_visible()


def test_an_open_tab_locks_itself_when_its_login_ends(
    short_session_page: Page, short_session_console: Console, identity_provider: str
) -> None:
    page = short_session_page
    _log_in(page, short_session_console, identity_provider, ADMIN)

    # Nobody reloads or clicks: once the login is 5 s old, the console notices by itself
    # (or already had, on a machine slow enough to take that long to show it).
    main = page.get_by_test_id("stMain")
    ended = wait_for_text(main, "Your session has ended", timeout_s=SHORT_SESSION_S + 60)
    assert "a login lasts 5 s here (SESSION_MAX_AGE_SECONDS)" in ended.inner_text()
    expect(page.get_by_test_id("stSidebarNavLink")).to_have_count(0)
    expect(page.get_by_test_id("stSidebar").get_by_text("Signed in as")).to_have_count(0)

    # "Log in again" is a new login at the provider (there, it would ask who is logging in).
    main.get_by_role("button", name="Log in again").click()
    page.wait_for_url(f"{identity_provider}/oauth2/authorize?*", timeout=HOP_TIMEOUT_MS)
    expect(page.get_by_role("button", name=ADMIN, exact=True)).to_be_visible()
