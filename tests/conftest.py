"""Shared fixtures: a real sandbox on a free loopback port, and clients pointed at it.

The sandbox starts once per test session (it is an HTTP server on its own thread) and
is reset before each test that uses it, so tests never see each other's models.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from replicate.client import Client

from core.gateway.client import ReplicateConnection, build_client
from core.gateway.gateway import ReplicateGateway
from core.gateway.limits import RateLimits
from core.gateway.retry import RetryPolicy
from core.imaging.faces import FaceReader
from core.sandbox.server import RunningSandbox, start_sandbox

pytest_plugins = ["tests.db_fixtures", "tests.demo_world"]

TEST_TOKEN = "r8_sandbox_test_token"


def instant_sandbox(data_dir: Path) -> RunningSandbox:
    """A sandbox whose trainings and predictions end at once (the caller stops it)."""
    return start_sandbox(
        data_dir, training_start_seconds=0.0, training_seconds=0.0, prediction_seconds=0.0
    )


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    running = instant_sandbox(tmp_path_factory.mktemp("sandbox"))
    yield running
    running.stop()


def empty_sandbox(running: RunningSandbox) -> RunningSandbox:
    """Empty the session's sandbox (trainers only, no faults) at an instant pace."""
    httpx.post(f"{running.base_url}/_sandbox/reset").raise_for_status()
    running.sandbox.config.update(
        {
            "training_start_seconds": 0.0,
            "training_seconds": 0.0,
            "prediction_seconds": 0.0,
            "page_size": 100,
        }
    )
    return running


@pytest.fixture
def sandbox(sandbox_server: RunningSandbox) -> RunningSandbox:
    """The session's sandbox, emptied (trainers only, no faults, instant pace)."""
    return empty_sandbox(sandbox_server)


# Lanes, from what each test uses (never tagged by hand): a test's fixtures say whether
# it drives chromium, starts worker processes, loads dlib, or runs the pages in AppTest.
LANE_FIXTURES = {
    "browser": frozenset({"page", "console", "browser"}),
    "workers": frozenset({"workers", "outage_workers"}),
    "dlib": frozenset({"face_reader", "photo_measurer", "uploads"}),
}
# A module that builds dlib's readers itself (not from a fixture) is in the dlib lane too.
DLIB_NAMES = ("FaceReader", "PhotoMeasurer", "SharedReaders")
# A module that runs the pages (AppTest itself, or the pages' helper that makes one).
APPTEST_NAMES = ("AppTest", "new_app")
# Fixtures that build a world of trained users or seed the demo world (seconds each).
SLOW_FIXTURES = frozenset({"world", "outage_world", "demo_world", "synced_world", "scans"})


# Session worlds that are costly to build: every test that needs one runs in the same
# process under pytest-xdist, so each is built once (a process of its own builds its own).
SHARED_WORLDS = {"demo_world": "demo-world", "synced_world": "demo-world"}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one process more than the CPUs this run may use. Much of the suite
    waits (a sandbox holding an answer, a worker's poll, a page rendering in chromium), so
    with one process per CPU the CPUs idle in those waits."""
    return len(os.sched_getaffinity(0)) + 1


# tryfirst: pytest-xdist reads each test's xdist_group marker in a hook of its own, which
# would otherwise run before this one and find no group.
# The repository's own DEMO data folder (DATA_DIR's default, relative to the directory the
# console runs in). No test may create it: a test that does started a console of its own
# in the developer's checkout, beside the suite.
REPO_DATA_DIR = Path(__file__).resolve().parents[1] / ".data"


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_DATA_DIR_BEFORE] = REPO_DATA_DIR.exists()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return  # xdist: the controlling process checks once, after every process ended
    if not session.config.stash.get(_DATA_DIR_BEFORE, True) and REPO_DATA_DIR.exists():
        writer = session.config.get_terminal_writer()
        writer.line()
        writer.line(
            f"FAILED: a test created {REPO_DATA_DIR} (a console started in the checkout)",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_DATA_DIR_BEFORE = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with the lanes its fixtures put it in; ``slow`` is any of them, so
    ``python -m pytest -m "not slow"`` is the fast lane for a change. Under pytest-xdist
    (``--dist loadgroup``) a module's tests stay in one process (its module-scoped world is
    built once), and so do the browser tests (one console) and the demo world's users."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        lanes = {lane for lane, fixtures in LANE_FIXTURES.items() if used & fixtures}
        module = getattr(item, "module", None)
        if module is not None and any(hasattr(module, name) for name in APPTEST_NAMES):
            lanes.add("apptest")
        if module is not None and any(hasattr(module, name) for name in DLIB_NAMES):
            lanes.add("dlib")
        if lanes or used & SLOW_FIXTURES or _declared_long(item):
            lanes.add("slow")
        for lane in sorted(lanes):
            item.add_marker(lane)
        shared = next((SHARED_WORLDS[name] for name in SHARED_WORLDS if name in used), None)
        group = "browser" if "browser" in lanes else shared or item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))


def _declared_long(item: pytest.Item) -> bool:
    """The test itself says it may take longer than the default deadline."""
    marker = item.get_closest_marker("timeout")
    default = float(item.config.getini("timeout") or 0)
    return marker is not None and bool(marker.args) and float(marker.args[0]) > default


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test (``item.rep_call``), so fixtures can report
    what they hold (worker logs, a screenshot) when the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def control(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    """An HTTP client for the sandbox's ``/_sandbox`` control API."""
    with httpx.Client(base_url=f"{sandbox.base_url}/_sandbox") as http:
        yield http


def close_client(connection: ReplicateConnection) -> None:
    """replicate.Client has no close(); the connection that holds it closes its sessions."""
    connection.close()


@pytest.fixture
def client(sandbox: RunningSandbox) -> Iterator[Client]:
    """The official client, exactly as the app would build it, aimed at the sandbox."""
    built = build_client(TEST_TOKEN, sandbox.base_url)
    yield built.client
    built.close()


def quick_gateway(
    base_url: str,
    *,
    token: str = TEST_TOKEN,
    timeout: float = 5.0,
    limits: RateLimits | None = None,
    policy: RetryPolicy | None = None,
) -> ReplicateGateway:
    """A gateway with quick retries and limits high enough not to slow tests down; the
    caller closes it."""
    return ReplicateGateway(
        build_client(token, base_url, timeout=httpx.Timeout(timeout)),
        limits=limits or RateLimits.per_minute(60_000, 60_000),
        policy=policy or RetryPolicy(base_delay=0.01, max_delay=0.1, total_seconds=15),
    )


@pytest.fixture
def gateway(sandbox: RunningSandbox) -> Iterator[ReplicateGateway]:
    built = quick_gateway(sandbox.base_url)
    yield built
    built.close()


@pytest.fixture
def make_gateway(sandbox: RunningSandbox) -> Iterator[Callable[..., ReplicateGateway]]:
    """Gateways with their own timeouts, limits or retry policy; closed after the test."""
    built: list[ReplicateGateway] = []

    def make(
        *,
        token: str = TEST_TOKEN,
        timeout: float = 5.0,
        limits: RateLimits | None = None,
        policy: RetryPolicy | None = None,
    ) -> ReplicateGateway:
        made = quick_gateway(
            sandbox.base_url,
            token=token,
            timeout=timeout,
            limits=limits,
            policy=policy or RetryPolicy(base_delay=0.01, max_delay=0.1),
        )
        built.append(made)
        return made

    yield make
    for made in built:
        made.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(scope="session")
def face_reader() -> FaceReader:
    """dlib's detector and embedding model, loaded once (about a second)."""
    return FaceReader()
