"""``python -m core.scan --background`` and ``python -m core.worker`` as an operator runs
them: separate processes, LIVE settings in the environment."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import insert

from core.scan.store import scan_summary
from core.schema import staff
from tests.jobs.conftest import World
from tests.workers import ROOT, Workers, wait_for

pytestmark = pytest.mark.timeout(180)


def _cli(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=world.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_background_twice_queues_one_and_refuses_the_second_naming_it(
    world: World, workers: Workers
) -> None:
    with world.engine.begin() as conn:
        conn.execute(insert(staff).values(email="ops@staff.test", role="admin"))
    first = _cli(world, "core.scan", "--background", "--actor", "ops@staff.test")
    assert first.returncode == 0, first.stderr
    scan_id = int(first.stdout.strip())
    second = _cli(world, "core.scan", "--background", "--json", "--actor", "ops@staff.test")
    assert second.returncode == 1 and second.stdout == ""
    assert f"Fleet scan #{scan_id}, requested by ops@staff.test" in second.stderr
    assert second.stderr.count("\n") == 1  # one line, no traceback

    workers.start()
    ended = wait_for(lambda: _status(world, scan_id), timeout=150, what="the scan to end")
    assert ended == "finished", workers.logs()
    third = _cli(
        world, "core.scan", "--background", "--json", "--no-datasets", "--actor", "ops@staff.test"
    )
    assert third.returncode == 0, third.stderr
    answer = json.loads(third.stdout)
    assert answer["status"] == "queued" and answer["scan_id"] > scan_id


def test_a_worker_refuses_an_unknown_queue_with_a_usage_error(world: World) -> None:
    result = _cli(world, "core.worker", "--queue", "nonsense")
    assert result.returncode == 2 and "invalid choice: 'nonsense'" in result.stderr


def _status(world: World, scan_id: int) -> str | None:
    with world.engine.connect() as conn:
        summary = scan_summary(conn, scan_id)
    return summary.status if summary is not None and not summary.is_active else None
