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
from sqlalchemy import Engine, make_url

from core.db import make_engine
from core.roles import Actor, Role
from core.sandbox.server import RunningSandbox
from tests.conftest import instant_sandbox
from tests.db_fixtures import new_database
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


WORLD_SNAPSHOT = "jobs-world"


@pytest.fixture(scope="session")
def jobs_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """A sandbox of the jobs world's own, at an instant pace: the function-scoped
    ``sandbox`` fixture empties the session's main one."""
    running = instant_sandbox(tmp_path_factory.mktemp("jobs-sandbox"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def jobs_template(
    db_engine: Engine, db_url: str, jobs_sandbox: RunningSandbox
) -> Iterator[tuple[str, JobsWorld]]:
    """The world built once per session: its rows in a template database (each test gets
    a copy), its models trained on the jobs sandbox and saved as a snapshot (each test
    gets them back as built). Building it takes seconds; a copy takes a fraction of one."""
    base_url = jobs_sandbox.base_url
    with new_database(db_engine, db_url, prefix="jobs_template", console_tables=True) as url:
        engine = make_engine(url)
        try:
            with gateway_on(base_url) as gateway:
                users = build_world(engine, gateway, base_url)
        finally:
            engine.dispose()  # a template database may have no connection when copied
        httpx.post(
            f"{base_url}/_sandbox/snapshots", json={"name": WORLD_SNAPSHOT}
        ).raise_for_status()
        yield str(make_url(url).database), users


@pytest.fixture
def world(
    db_engine: Engine,
    db_url: str,
    jobs_template: tuple[str, JobsWorld],
    jobs_sandbox: RunningSandbox,
    tmp_path: Path,
) -> Iterator[World]:
    """The world as built: a database copied from the template (the app's tables, schema
    ops and the users' rows) and the jobs sandbox put back to the snapshot (no faults,
    nothing counted), whatever the previous test did to either."""
    template, users = jobs_template
    base_url = jobs_sandbox.base_url
    httpx.post(f"{base_url}/_sandbox/snapshots/{WORLD_SNAPSHOT}/restore").raise_for_status()
    with new_database(db_engine, db_url, prefix="jobs", template=template) as url:
        engine = make_engine(url)
        try:
            yield World(url, engine, users, base_url, tmp_path)
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
