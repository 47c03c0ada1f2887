"""The watch's periodic job: attached with the others when asked, on its tick's cron."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.jobs.app import TaskName, app
from core.tasks import attach_schedules
from core.watch.tasks import PERIODIC_ID, WATCH_LOCK, watch

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def schedules_put_back() -> Iterator[None]:
    """attach_schedules registers periodic tasks on the process-wide app: what this
    process had before is put back after the test."""
    registered = app.periodic_registry.periodic_tasks
    saved = dict(registered)
    registered.clear()
    yield
    registered.clear()
    registered.update(saved)


@pytest.mark.usefixtures("schedules_put_back")
def test_the_watch_ticks_every_minute_beside_the_other_schedules() -> None:
    assert attach_schedules(None, recovery_seconds=60.0, watch_seconds=300.0) == [
        "maintenance.tick (* * * * * */15)",
        "watch.pass (* * * * *)",
    ]
    periodic = app.periodic_registry.periodic_tasks
    assert periodic[(TaskName.WATCH.value, PERIODIC_ID)].task is app.tasks[TaskName.WATCH.value]
    assert attach_schedules(None, watch_seconds=300.0) == []  # once per process


def test_ticks_never_overlap() -> None:
    assert watch.queueing_lock == WATCH_LOCK and watch.lock == WATCH_LOCK
