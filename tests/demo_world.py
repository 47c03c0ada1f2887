"""The demo world, seeded once per test session (registered in ``tests/conftest.py``).

Why: seeding plays every persona's history against the sandbox (about 20 s), and both the
world's own tests (tests/demo) and the scan's contract (tests/scan) judge that one world.
It lives in a database of its own and on a sandbox of its own, so the per-test ``sandbox``
fixture (which empties the session's main sandbox) cannot wipe it. Tests that change the
world put it back (or roll back); tests must not reset ``demo_sandbox``. Helpers from
``tests.conftest`` are imported inside the fixtures: that conftest loads this module as a
plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from core.db import make_engine
from core.demo import SeedReport, seed_demo_world
from core.gateway.gateway import ReplicateGateway
from core.gateway.retry import RetryPolicy
from core.sandbox.server import RunningSandbox
from tests.db_fixtures import new_database


@dataclass(frozen=True)
class DemoWorld:
    engine: Engine  # the app's tables and schema ops, in one database (as in DEMO)
    url: str
    gateway: ReplicateGateway
    sandbox_url: str
    report: SeedReport
    progress: tuple[str, ...]


@pytest.fixture(scope="session")
def demo_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """A sandbox of the demo world's own, at an instant pace."""
    from tests.conftest import instant_sandbox

    running = instant_sandbox(tmp_path_factory.mktemp("demo-sandbox"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def demo_world(db_engine: Engine, db_url: str, demo_sandbox: RunningSandbox) -> Iterator[DemoWorld]:
    """The seeded world: app tables and schema ops in a new database, histories in the
    demo sandbox. A DEMO database always has schema ops (seeding clears the ledger)."""
    from tests.conftest import quick_gateway

    gateway = quick_gateway(
        demo_sandbox.base_url, timeout=30.0, policy=RetryPolicy(base_delay=0.01, max_delay=0.1)
    )
    try:
        with new_database(db_engine, db_url, prefix="demo", console_tables=True) as url:
            engine = make_engine(url)
            try:
                messages: list[str] = []
                report = seed_demo_world(
                    engine=engine,
                    gateway=gateway,
                    sandbox_url=demo_sandbox.base_url,
                    progress=messages.append,
                )
                yield DemoWorld(
                    engine, url, gateway, demo_sandbox.base_url, report, tuple(messages)
                )
            finally:
                engine.dispose()
    finally:
        gateway.close()
