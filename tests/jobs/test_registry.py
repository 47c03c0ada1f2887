"""Every domain's blueprint registered on the one app (``core.tasks``), each task under
exactly its ``TaskName``: queued jobs carry those names, and a worker looks tasks up by
them (a prefix such as procrastinate's ``namespace:`` would leave every queued job with
no task). No database: only what the app holds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.jobs.app import Queue, TaskName, app
from core.tasks import BLUEPRINTS, attach_schedules, register_tasks


def _ours() -> dict[str, str]:
    """name -> queue of the app's tasks, procrastinate's own builtins left out."""
    register_tasks()
    return {
        name: task.queue
        for name, task in app.tasks.items()
        if not task.name.startswith("builtin:")  # procrastinate's, under a name and an alias
    }


def test_every_task_is_registered_under_its_task_name_and_nothing_else_is() -> None:
    ours = _ours()
    assert set(ours) == {name.value for name in TaskName}
    for name in TaskName:
        task = app.tasks[name.value]
        assert task.name == name.value
        assert task.blueprint is app  # bound: a job of it can be deferred and run
    assert set(ours.values()) <= {queue.value for queue in Queue}


def test_each_blueprint_declares_its_tasks_by_their_names() -> None:
    declared = [name for blueprint in BLUEPRINTS for name in blueprint.tasks]
    assert sorted(declared) == sorted(name.value for name in TaskName)  # each once


def test_registering_again_changes_nothing() -> None:
    register_tasks()
    before = dict(app.tasks)
    register_tasks()
    assert app.tasks == before


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
def test_the_schedules_attach_to_the_registered_tasks_by_name() -> None:
    assert attach_schedules("0 3 * * *", recovery_seconds=60.0) == [
        "maintenance.tick (* * * * * */15)",
        "scan.nightly (0 3 * * *)",
    ]
    periodic = app.periodic_registry.periodic_tasks
    assert set(periodic) == {("maintenance.tick", "maintenance"), ("scan.nightly", "nightly-scan")}
    for (name, _), schedule in periodic.items():
        assert schedule.task is app.tasks[name]
    assert attach_schedules("0 3 * * *", recovery_seconds=60.0) == []  # once per process
