"""Scan fixtures: the first scan of the session's demo world (``tests/demo_world.py``;
once for tests/scan), and small worlds of literal rows.

Why: the scan's contract is judged on the demo world, whose personas say which codes a
correct scan reports; reading the photos with dlib takes ~2 min, so the package scans with
datasets once. Tests that change the world (or its sandbox's faults) put it back.
``small_world`` is for tests that need a handful of users in a database the scan may
commit to (the rolled-back ``conn`` cannot hold a scan, which commits).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from core.db import make_engine
from core.imaging.faces import FaceReader
from core.roles import Actor, Role
from core.scan import ScanResult, run_scan
from core.schema import user_models, users
from tests.demo_world import DemoWorld


@dataclass(frozen=True)
class FirstScan:
    result: ScanResult
    progress: tuple[tuple[int, int], ...]
    progress_threads: frozenset[int]
    caller_thread: int


@pytest.fixture(scope="session")
def first_scan(demo_world: DemoWorld, face_reader: FaceReader) -> FirstScan:
    """One scan WITH dataset facts (dlib reads every photo the dataset checks need)."""
    calls: list[tuple[int, int]] = []
    threads: set[int] = set()

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        threads.add(threading.get_ident())

    result = run_scan(
        app_engine=demo_world.engine,
        ops_engine=demo_world.engine,
        gateway=demo_world.gateway,
        face_reader=face_reader,
        actor=Actor("ada@example.test", Role.ADMIN),
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
def small_world(console_database_url: str) -> Iterator[SmallWorld]:
    engine = make_engine(console_database_url)
    try:
        yield SmallWorld(engine)
    finally:
        engine.dispose()
