"""DEMO through the real entry: the embedded database and the seeded demo world, the
"Acting as" picker instead of a login, and the pages each picked role gets.

The runtime starts its own embedded PostgreSQL and DEMO's worker process in a temporary
DATA_DIR (both stopped at the end) and uses the session's sandbox (REPLICATE_BASE_URL), so
no sandbox process is spawned.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.db import embedded_postgres_url, make_engine, stop_embedded_postgres
from core.jobs.service import stop_worker
from core.sandbox.server import RunningSandbox
from core.scan.store import last_fleet_scan
from tests.conftest import empty_sandbox
from tests.pages.conftest import APP, LIVE_ENV_NAMES, open_page, texts

# First start: a new PostgreSQL cluster, the app's tables, and the demo world's trainings.
DEMO_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def demo_data_dir(sandbox_server: RunningSandbox) -> Iterator[Path]:
    """A DATA_DIR outside pytest's basetemp: pgserver makes the folders above the cluster
    world-traversable for its `pgserver` user, and any pytest session starting meanwhile
    (another checkout, another engineer) resets /tmp/pytest-of-<user> to 0700, which makes
    initdb fail with "Permission denied" on pg_control."""
    empty_sandbox(sandbox_server)
    data_dir = Path(tempfile.mkdtemp(prefix="sselfie-demo-test-"))
    try:
        yield data_dir
    finally:
        stop_worker(data_dir)  # DEMO's first page load started it, detached
        stop_embedded_postgres(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def demo_started(demo_data_dir: Path, sandbox_server: RunningSandbox) -> Iterator[AppTest]:
    """DEMO started once for the module, by a first page load, as a new user starts it:
    the embedded PostgreSQL, the seeded world, the worker and the first scan it queues.
    Its runtime stays cached for the module's tests (their settings are the same), so
    they see this one start. The worker is then stopped: these tests look at the pages,
    and its first scan (dlib over every demo photo) would take a CPU away from the rest of
    the suite for minutes; the worker's own work is tested in tests/jobs and the browser.
    """
    with pytest.MonkeyPatch.context() as environment:
        for name in LIVE_ENV_NAMES:
            environment.delenv(name, raising=False)
        environment.setenv("DATA_DIR", str(demo_data_dir))
        environment.setenv("REPLICATE_BASE_URL", sandbox_server.base_url)
        st.cache_data.clear()
        st.cache_resource.clear()
        try:
            first = _demo_app()
            stop_worker(demo_data_dir)
            yield first
        finally:
            st.cache_data.clear()
            st.cache_resource.clear()


@pytest.fixture
def demo_env(demo_started: AppTest) -> Iterator[None]:
    """The module's DEMO console; each test starts with fresh page data (st.cache_data)."""
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def _demo_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=DEMO_TIMEOUT)
    at.user = {}  # DEMO never looks at a login
    return at.run()


def _acting_as(at: AppTest, role: str) -> AppTest:
    picker = at.selectbox(key="acting_as")
    choice = next((option for option in picker.options if option.endswith(f"({role})")), None)
    assert choice is not None, f"the demo staff list has nobody with role {role}"
    return picker.select(choice).run()


def test_demo_is_badged_and_picks_who_acts(demo_started: AppTest, demo_data_dir: Path) -> None:
    at = demo_started  # the first page load, which started DEMO
    assert not at.exception, at.exception
    assert not at.error, [element.value for element in at.error]
    badges = " ".join(str(element.value) for element in at.sidebar.markdown)
    assert "DEMO — sandbox data" in badges
    picker = at.selectbox(key="acting_as")
    assert picker.label == "Acting as" and picker.options
    assert {option.rsplit("(", 1)[-1].rstrip(")") for option in picker.options} <= {
        "support",
        "product",
        "admin",
    }
    assert "login" not in [button.key for button in at.button]  # no login in DEMO
    users = at.dataframe[0].value
    assert not users.empty  # the demo world's users
    # The first start queued a first fleet scan for the worker, nobody clicked for it;
    # until it has checked a user, that user is "not scanned yet", not "no finding".
    engine = make_engine(embedded_postgres_url(demo_data_dir))
    try:
        with engine.connect() as conn:
            first = last_fleet_scan(conn)
    finally:
        engine.dispose()
    assert first is not None and first.requested_by == "first-start@sselfie-console"
    if first.users_scanned == 0:
        assert f"Fleet scan #{first.id} is" in texts(at)
        assert set(users["worst"]) == {"not scanned yet"}


@pytest.mark.usefixtures("demo_env")
@pytest.mark.parametrize("role", ["support", "product"])
def test_picked_support_or_product_cannot_reach_settings(role: str) -> None:
    at = _acting_as(_demo_app(), role)
    assert at.session_state["actor"].role.value == role
    with pytest.raises(ValueError):
        at.switch_page("../pages/settings.py")


@pytest.mark.usefixtures("demo_env")
def test_picked_admin_gets_settings_and_can_open_users() -> None:
    at = _acting_as(_demo_app(), "admin")
    open_page(at, "settings")
    assert not at.exception, at.exception
    settings = at.dataframe[0].value.set_index("setting")["value"].to_dict()
    assert settings["DATABASE_URL"] == "unset" and "DEMO" in texts(at)
    open_page(at, "users")
    first_user = str(at.dataframe[0].value["user"].iloc[0])
    open_page(at, "user", user=first_user)
    assert not at.exception, at.exception
    assert f"User {first_user}" in texts(at)


@pytest.mark.usefixtures("demo_env")
def test_settings_are_true_to_demo() -> None:
    at = _acting_as(_demo_app(), "admin")
    open_page(at, "settings")
    assert not at.exception, at.exception
    settings, staff = (frame.value for frame in at.dataframe[:2])
    values = settings.set_index("setting")["value"].to_dict()
    defaults = settings.set_index("setting")["default"].to_dict()
    assert values["SCAN_SCHEDULE"] == "off (always off in DEMO)"  # DEMO never scans by itself
    assert values["RECOVERY_SECONDS"] == "60" and defaults["RECOVERY_SECONDS"] == "60"
    # The people the "Acting as" list offers are listed, not "Nobody is listed".
    assert "Nobody is listed" not in texts(at)
    assert set(staff["role"]) == {"support", "product", "admin"}
