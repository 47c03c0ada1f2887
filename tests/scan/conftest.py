"""Scan fixtures: the seeded demo world and its first scan (once for tests/scan), and small
worlds of literal rows.

Why: the scan's contract is judged on the demo world, whose personas say which codes a
correct scan reports; seeding takes ~25 s and reading the photos with dlib ~2 min, so
the package seeds once and scans with datasets once. It mirrors ``tests/demo/conftest.py``
(a database of its own on the session's server, its own gateway on the session's
sandbox). No test under tests/scan may use ``sandbox``/``gateway``/``control``: they
reset the sandbox and would wipe the world; tests that change the world put it back.
``small_world`` is for tests that need a handful of users in a database the scan may
commit to (the rolled-back ``conn`` cannot hold a scan, which commits).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, insert

from core.config import Mode
from core.db import create_app_tables, make_engine, upgrade_ops
from core.demo import seed_demo_world
from core.faces import FaceReader
from core.gateway.gateway import ReplicateGateway
from core.gateway.retry import RetryPolicy
from core.sandbox.server import RunningSandbox
from core.scan import ScanResult, run_scan
from core.schema import user_models, users
from tests.conftest import quick_gateway
from tests.demo.conftest import drop_database, new_database


@dataclass(frozen=True)
class ScanWorld:
    engine: Engine  # the app's tables and schema ops, in one database (as in DEMO)
    url: str
    gateway: ReplicateGateway
    sandbox_url: str


@pytest.fixture(scope="package")
def scan_gateway(sandbox_server: RunningSandbox) -> Iterator[ReplicateGateway]:
    built = quick_gateway(
        sandbox_server.base_url, timeout=30.0, policy=RetryPolicy(base_delay=0.01, max_delay=0.1)
    )
    yield built
    built.close()


@pytest.fixture(scope="package")
def scan_world(
    db_engine: Engine, db_url: str, sandbox_server: RunningSandbox, scan_gateway: ReplicateGateway
) -> Iterator[ScanWorld]:
    """The seeded demo world in a database of its own, schema ops migrated."""
    name, url = new_database(db_engine, db_url)
    engine = make_engine(url)
    try:
        create_app_tables(engine, mode=Mode.DEMO)
        upgrade_ops(url)
        seed_demo_world(engine=engine, gateway=scan_gateway, sandbox_url=sandbox_server.base_url)
        yield ScanWorld(engine, url, scan_gateway, sandbox_server.base_url)
    finally:
        engine.dispose()
        drop_database(db_engine, name)
        httpx.post(f"{sandbox_server.base_url}/_sandbox/reset").raise_for_status()


@dataclass(frozen=True)
class FirstScan:
    result: ScanResult
    progress: tuple[tuple[int, int], ...]
    progress_threads: frozenset[int]
    caller_thread: int


@pytest.fixture(scope="package")
def first_scan(scan_world: ScanWorld, face_reader: FaceReader) -> FirstScan:
    """One scan WITH dataset facts (dlib reads every photo the dataset checks need)."""
    calls: list[tuple[int, int]] = []
    threads: set[int] = set()

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        threads.add(threading.get_ident())

    result = run_scan(
        app_engine=scan_world.engine,
        ops_engine=scan_world.engine,
        gateway=scan_world.gateway,
        face_reader=face_reader,
        requested_by="ada@example.test",
        progress=progress,
    )
    return FirstScan(result, tuple(calls), frozenset(threads), threading.get_ident())


def findings_by_user(result: ScanResult) -> dict[str, list[dict[str, Any]]]:
    """Each user's findings as the CLI prints them: what "the same result" compares."""
    return {user.user_id: user.to_dict()["findings"] for user in result.users}


@dataclass
class SmallWorld:
    """An empty app database with schema ops; ``add`` writes a user the way the app does."""

    engine: Engine
    added: list[str] = field(default_factory=list)

    def add(
        self,
        user_id: str,
        *,
        model_id: str | None = None,
        status: str = "pending",
        training_id: str | None = None,
        with_model_row: bool = True,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(users).values(id=user_id, email=f"{user_id}@example.com"))
            if with_model_row:
                conn.execute(
                    insert(user_models).values(
                        user_id=user_id,
                        trigger_word=f"user{user_id[:8]}",
                        replicate_model_id=model_id,
                        training_status=status,
                        training_id=training_id,
                    )
                )
        self.added.append(user_id)


@pytest.fixture
def small_world(fresh_database_url: str) -> Iterator[SmallWorld]:
    engine = make_engine(fresh_database_url)
    try:
        create_app_tables(engine, mode=Mode.DEMO)
        upgrade_ops(fresh_database_url)
        yield SmallWorld(engine)
    finally:
        engine.dispose()
