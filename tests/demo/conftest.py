"""The demo world, seeded once per test module into a database of its own.

Why: seeding plays every persona's history against the sandbox (about 20 s), so the
tests that read the world share one seeding. The shared ``fresh_database_url`` and
``gateway`` fixtures are per test (and ``gateway`` resets the sandbox), so this module
scope builds its own: a new database on the session's server and a gateway on the
session's sandbox. Tests here must not use ``sandbox``/``gateway``/``control``, which
would wipe the world under them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine, make_url, text

from core.config import Mode
from core.db import create_app_tables, make_engine, upgrade_ops
from core.demo import SeedReport, seed_demo_world
from core.gateway.gateway import ReplicateGateway
from core.gateway.retry import RetryPolicy
from core.sandbox.server import RunningSandbox
from tests.conftest import quick_gateway


@dataclass(frozen=True)
class DemoWorld:
    engine: Engine
    gateway: ReplicateGateway
    sandbox_url: str
    report: SeedReport
    progress: tuple[str, ...]


def new_database(db_engine: Engine, db_url: str) -> tuple[str, str]:
    """(name, URL) of a new, empty database on the test server."""
    name = f"demo_{uuid.uuid4().hex[:12]}"
    with db_engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    return name, make_url(db_url).set(database=name).render_as_string(hide_password=False)


def drop_database(db_engine: Engine, name: str) -> None:
    with db_engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def demo_gateway(sandbox_server: RunningSandbox) -> Iterator[ReplicateGateway]:
    built = quick_gateway(
        sandbox_server.base_url, timeout=30.0, policy=RetryPolicy(base_delay=0.01, max_delay=0.1)
    )
    yield built
    built.close()


@pytest.fixture(scope="module")
def demo_world(
    db_engine: Engine, db_url: str, sandbox_server: RunningSandbox, demo_gateway: ReplicateGateway
) -> Iterator[DemoWorld]:
    """The seeded world: app tables in a fresh database, histories in the sandbox."""
    name, url = new_database(db_engine, db_url)
    engine = make_engine(url)
    try:
        create_app_tables(engine, mode=Mode.DEMO)
        upgrade_ops(url)  # a DEMO database always has schema ops (seeding clears the ledger)
        messages: list[str] = []
        report = seed_demo_world(
            engine=engine,
            gateway=demo_gateway,
            sandbox_url=sandbox_server.base_url,
            progress=messages.append,
        )
        yield DemoWorld(engine, demo_gateway, sandbox_server.base_url, report, tuple(messages))
    finally:
        engine.dispose()
        drop_database(db_engine, name)
        httpx.post(f"{sandbox_server.base_url}/_sandbox/reset").raise_for_status()
