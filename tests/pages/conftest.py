"""Fixtures for AppTests of the console, run exactly as a LIVE deployment runs.

Why they exist: the pages are only worth testing through the real entry
(``dashboard/app.py``), the real runtime and real services. So each test module gets
- its own PostgreSQL database (on the session's test server) with the app's tables and
  schema ops, filled with ``tests.user_world`` rows and committed, dropped afterwards;
- the session's sandbox, emptied once and given real trained models for that world;
- LIVE settings in the environment pointing at both (DATABASE_URL, an ``r8_`` token,
  REPLICATE_BASE_URL), which is how the real LIVE console is configured;
- one console runtime (engines, gateway, schema ops checked) for the module's tests, as a
  deployed console keeps one for all its sessions: a test's settings are the module's, so
  ``st.cache_resource`` hands every AppTest the same runtime. Around each test only what
  a test can change is cleared (``st.cache_data``, the cached Replicate facts); a test
  that makes Replicate fail asks for ``fresh_runtime``, since the gateway's circuit
  breaker would carry the outage into the next test. The module's end clears it all, so
  the runtime lets go of the module's database before it is dropped.
These modules must not use the function-scoped ``sandbox`` fixture: it empties the sandbox.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import streamlit as st
from sqlalchemy import Engine, text
from streamlit.testing.v1 import AppTest

from core.db import make_engine
from core.ledger.sync import LISTED_AT_KEY, sync_ledger
from core.sandbox.server import RunningSandbox
from dashboard.diagnosis import forget_facts
from tests.db_fixtures import new_database
from tests.user_world import UserWorld, gateway_on, insert_world, seed_replicate
from tests.workers import MODE_SETTINGS

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
# The first run migrates schema ops; later runs are cache hits.
APP_TIMEOUT = 60.0
LIVE_TOKEN = "r8_consolePagesTest9f2c"

AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "pages-test-cookie-secret",
    "client_id": "sselfie-console",
    "client_secret": "pages-test-client-secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}
ROLES = {
    "support": ["support@staff.test"],
    "product": ["product@staff.test"],
    "admin": ["Admin@Staff.test"],
}
STAFF_ONLY_EMAIL = "from-ops@staff.test"  # in ops.staff (as product), not in [roles]
EMAIL_OF = {
    "support": "support@staff.test",
    "product": "product@staff.test",
    "admin": "admin@staff.test",
}
LIVE_ENV_NAMES = MODE_SETTINGS


@pytest.fixture(scope="module")
def pages_database_url(db_engine: Engine, db_url: str) -> Iterator[str]:
    """A database of this module's own, with the app's tables and schema ops in place."""
    with new_database(db_engine, db_url, prefix="pages", console_tables=True) as url:
        yield url


@pytest.fixture(scope="module")
def engine(pages_database_url: str) -> Iterator[Engine]:
    """An engine on this module's database, for a test to read or arrange rows."""
    built = make_engine(pages_database_url)
    yield built
    built.dispose()


@pytest.fixture(scope="module")
def world(pages_database_url: str, sandbox_server: RunningSandbox) -> Iterator[UserWorld]:
    """The users world, trained on the sandbox and committed to this module's database."""
    base_url = sandbox_server.base_url
    httpx.post(f"{base_url}/_sandbox/reset").raise_for_status()
    with gateway_on(base_url) as gateway:
        replicate = seed_replicate(gateway)
    engine = make_engine(pages_database_url)
    try:
        with engine.begin() as connection:
            seeded = insert_world(connection, replicate)
            connection.execute(
                text("INSERT INTO ops.staff (email, role) VALUES (:email, 'product')"),
                {"email": STAFF_ONLY_EMAIL},
            )
        # The workers keep the training history synced; pages only read it.
        with gateway_on(base_url) as gateway:
            sync_ledger(ops_engine=engine, app_engine=engine, gateway=gateway)
    finally:
        engine.dispose()
    yield seeded
    httpx.delete(f"{base_url}/_sandbox/faults").raise_for_status()


def _clear_streamlit_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


def _clear_what_a_test_changes() -> None:
    st.cache_data.clear()
    forget_facts()


@pytest.fixture(scope="module")
def module_runtime(pages_database_url: str) -> Iterator[None]:
    """The module's console runtime, released when the module ends (before its database
    is dropped)."""
    _clear_streamlit_caches()
    yield
    _clear_streamlit_caches()


@pytest.fixture(scope="module")
def module_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pages-data")


@pytest.fixture
def live_env(
    monkeypatch: pytest.MonkeyPatch,
    module_data_dir: Path,
    pages_database_url: str,
    sandbox_server: RunningSandbox,
    world: UserWorld,
    module_runtime: None,
) -> Iterator[None]:
    """LIVE settings, as a deployment sets them, aimed at the test database and sandbox."""
    for name in LIVE_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", pages_database_url)
    monkeypatch.setenv("REPLICATE_API_TOKEN", LIVE_TOKEN)
    monkeypatch.setenv("REPLICATE_BASE_URL", sandbox_server.base_url)
    monkeypatch.setenv("DATA_DIR", str(module_data_dir))
    # The world's sync stands for the workers' (none run here): it stays fresh.
    monkeypatch.setenv("HISTORY_FRESH_SECONDS", "86400")
    _clear_what_a_test_changes()
    yield
    _clear_what_a_test_changes()


@pytest.fixture
def fresh_runtime(live_env: None) -> Iterator[None]:
    """A runtime of this test's own, dropped after it: for a test that makes Replicate
    fail (the breaker's state would outlive it) or checks how a runtime starts."""
    _clear_streamlit_caches()
    yield
    _clear_streamlit_caches()


@pytest.fixture
def replicate_down(sandbox_server: RunningSandbox, fresh_runtime: None) -> Iterator[None]:
    """Every Replicate call answers 503 with Retry-After: 120 s. That is beyond the gateway's
    retry budget, so it gives up at the first answer instead of retrying for seconds."""
    faults = f"{sandbox_server.base_url}/_sandbox/faults"
    httpx.post(faults, json={"status": 503, "retry_after": 120}).raise_for_status()
    yield
    httpx.delete(faults).raise_for_status()


def new_app(
    *, email: str | None, secrets: dict[str, Any] | None = None, query: dict[str, str] | None = None
) -> AppTest:
    """An AppTest of the entry; ``email=None`` is a logged-out visitor."""
    at = AppTest.from_file(APP, default_timeout=APP_TIMEOUT)
    at.secrets = (
        {"auth": dict(AUTH), "roles": {k: list(v) for k, v in ROLES.items()}}
        if secrets is None
        else secrets
    )
    at.user = {"is_logged_in": False} if email is None else {"is_logged_in": True, "email": email}
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at


@pytest.fixture
def app_as(live_env: None) -> Callable[..., AppTest]:
    """``app_as("support")``: the console, run once, for a logged-in staff member."""

    def make(role: str, **options: Any) -> AppTest:
        return new_app(email=EMAIL_OF[role], **options).run()

    return make


def open_page(at: AppTest, page: str, **query: str) -> AppTest:
    """Switch to ``pages/<page>.py`` (as a link or st.switch_page would) and run it."""
    at.switch_page(f"../pages/{page}.py")
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def frames_with(at: AppTest, column: str) -> list[pd.DataFrame]:
    """The tables shown that have ``column``, in page order."""
    return [frame.value for frame in at.dataframe if column in frame.value.columns]


# A backslash escape of ASCII punctuation, as ``core.text.inert`` writes them.
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
WORD_JOINER = "\u2060"


def unescaped(markdown: object) -> str:
    """Markdown as a reader sees its characters: each backslash escape undone and the
    invisible word joiners gone (``core.text.inert``'s marks), the page's own markup kept."""
    return _ESCAPE.sub(r"\1", str(markdown)).replace(WORD_JOINER, "")


def texts(at: AppTest) -> str:
    """Everything the run showed as text (as read: see ``unescaped``), for plain `in` checks."""
    parts: list[str] = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "error",
        "warning",
        "info",
        "success",
    ):
        parts += [unescaped(element.value) for element in getattr(at, kind)]
    parts += [f"{unescaped(metric.label)}: {unescaped(metric.value)}" for metric in at.metric]
    return "\n".join(parts)


def listing_requests(sandbox: RunningSandbox) -> int:
    """How often the sandbox was asked for the account's list of trainings."""
    stats = httpx.get(f"{sandbox.base_url}/_sandbox/stats").json()
    return int(stats["counts"].get("GET /v1/trainings", 0))


def listed_ago(engine: Engine, interval: str) -> None:
    """Make the ledger's last listing look ``interval`` old (a PostgreSQL interval)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE ops.ledger_state SET value = (now() - CAST(:ago AS interval))::text"
                " WHERE key = :key"
            ),
            {"ago": interval, "key": LISTED_AT_KEY},
        )


def history_syncs_waiting(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM ops.procrastinate_jobs"
                    " WHERE task_name = 'ledger.sync' AND status = 'todo'"
                )
            ).scalar_one()
        )


def forget_history_syncs(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL search_path TO ops, public"))  # procrastinate's triggers
        conn.execute(text("DELETE FROM procrastinate_jobs WHERE task_name = 'ledger.sync'"))
