"""DEMO's own worker process (core.jobs.service): started once, reused, restarted when it
died, stopped by ``python -m core.db stop``; and the sidebar's view of the queue."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from core.config import get_settings
from core.jobs.service import ensure_worker, running_worker, stop_worker
from core.jobs.status import QueueState, queue_state
from core.scan.request import ScanOptions, request_scan
from core.scan.store import scan_summary
from tests.jobs.conftest import ADMIN, World
from tests.workers import wait_for

pytestmark = pytest.mark.timeout(180)


def _is_worker(pid: int) -> bool:
    try:
        return "core.worker" in " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def test_the_console_keeps_one_worker_alive(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in world.env().items():
        monkeypatch.setenv(name, value)
    settings = get_settings()
    with world.engine.connect() as conn:
        assert queue_state(conn).workers_alive == 0
    pid, started = ensure_worker(settings)
    try:
        assert started and _is_worker(pid)
        assert ensure_worker(settings) == (pid, False)  # reused, not a second one
        with world.engine.connect() as conn:
            assert queue_state(conn).problem is None
        with world.engine.begin() as conn:
            scan = request_scan(conn, ADMIN, ScanOptions.of(with_datasets=False), background=True)
        ended = wait_for(lambda: _ended(world, scan.id), timeout=90, what="the scan to end")
        assert ended == "finished"
        state = wait_for(
            lambda: _idle(world),
            timeout=60,
            what="the worker's jobs (and its minute's maintenance) to end",
        )
        assert state.workers_alive == 1 and state.running == 0 and state.waiting == 0

        os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: running_worker(settings.data_dir) is None,
            timeout=10,
            what="the killed worker to be gone",
        )
        again, restarted = ensure_worker(settings)
        assert restarted and again != pid and _is_worker(again)
        assert stop_worker(settings.data_dir)
        assert running_worker(settings.data_dir) is None and not _is_worker(again)
        assert not stop_worker(settings.data_dir)
    finally:
        stop_worker(settings.data_dir)


def _idle(world: World) -> QueueState | None:
    with world.engine.connect() as conn:
        state = queue_state(conn)
    return state if state.running == 0 and state.waiting == 0 else None


def _ended(world: World, scan_id: int) -> str | None:
    with world.engine.connect() as conn:
        summary = scan_summary(conn, scan_id)
    return summary.status if summary is not None and not summary.is_active else None
