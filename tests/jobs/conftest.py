"""Fixtures for the job queue: a database of each test's own, a small world trained on the
session's sandbox, and real worker processes (``python -m core.worker``) pointed at both.

Why they exist: the queue's promises (one fleet scan at a time, a killed worker's scan
given up, photos read once however many workers share a scan) only mean something with
real processes on a real PostgreSQL. Workers run in LIVE mode exactly as deployed: the
test database as DATABASE_URL, the sandbox as REPLICATE_BASE_URL. No test here may use
the function-scoped ``sandbox`` fixture: it empties the sandbox under the world.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from core.db import make_engine
from core.roles import Actor, Role
from core.sandbox.server import RunningSandbox
from tests.conftest import empty_sandbox
from tests.jobs.world import JobsWorld, build_world
from tests.user_world import gateway_on
from tests.workers import Workers, worker_env

ADMIN = Actor("ada@staff.test", Role.ADMIN)
# Short, so that a killed worker's scan is given up within the test.
HEARTBEAT_TIMEOUT_SECONDS = 4.0


@dataclass
class World:
    url: str
    engine: Engine
    users: JobsWorld
    sandbox_url: str
    tmp: Path

    def env(self, **extra: str) -> dict[str, str]:
        """A worker's (or the CLI's) environment: LIVE, aimed at this world."""
        return worker_env(
            database_url=self.url,
            sandbox_url=self.sandbox_url,
            data_dir=self.tmp,
            **{"SCAN_HEARTBEAT_TIMEOUT_SECONDS": str(HEARTBEAT_TIMEOUT_SECONDS), **extra},
        )


@pytest.fixture
def world(
    console_database_url: str, sandbox_server: RunningSandbox, tmp_path: Path
) -> Iterator[World]:
    """A new database with the app's tables and schema ops, and the world in it."""
    base_url = empty_sandbox(sandbox_server).base_url
    engine = make_engine(console_database_url)
    try:
        with gateway_on(base_url) as gateway:
            users = build_world(engine, gateway, base_url)
        yield World(console_database_url, engine, users, base_url, tmp_path)
    finally:
        engine.dispose()
        httpx.delete(f"{base_url}/_sandbox/faults").raise_for_status()


@pytest.fixture
def workers(world: World, request: pytest.FixtureRequest) -> Iterator[Workers]:
    started = Workers(world.env, world.tmp)
    yield started
    started.stop_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        sys.stderr.write(started.logs())
