"""Every task a worker runs, gathered in the one place allowed to know every domain.

Each domain declares its tasks on a procrastinate ``Blueprint`` of its own
(``core/scan/tasks.py``, ``core/compare/tasks.py``, ``core/retrain/tasks.py``,
``core/watch/tasks.py``, ``core/maintenance.py``); ``register_tasks`` adds them all to the one app
(``core.jobs.app``), which itself knows no domain. A new domain's tasks: a ``TaskName``
each, a blueprint in the domain, and its line in ``BLUEPRINTS``.

Names are the queue's contract: a job already queued carries its task's name, and a
worker looks the task up by it. procrastinate files a blueprint's tasks under
``namespace:name``, except with the empty namespace, which leaves each task under the
name it was declared with (``procrastinate.utils.add_namespace``): so every task stays
exactly its ``TaskName`` value (``scan.plan``, ``retrain.submit``…), as before blueprints.
"""

from __future__ import annotations

from typing import Any

from procrastinate import Blueprint

from core import maintenance
from core.compare import tasks as compare_tasks
from core.jobs.app import TaskName, app
from core.ledger import tasks as ledger_tasks
from core.retrain import tasks as retrain_tasks
from core.scan import tasks as scan_tasks
from core.watch import tasks as watch_tasks
from core.watch.decisions import watch_cron

# One line per domain.
BLUEPRINTS: tuple[Blueprint, ...] = (
    scan_tasks.blueprint,
    compare_tasks.blueprint,
    retrain_tasks.blueprint,
    ledger_tasks.blueprint,
    watch_tasks.blueprint,
    maintenance.blueprint,
)
# No prefix: a task is registered under the name it declares (its ``TaskName``).
AS_DECLARED = ""


def register_tasks() -> None:
    """Add every domain's tasks to the app (again in the same process: nothing to do);
    refuse when a ``TaskName`` has no task, since its jobs would fail unrun."""
    for blueprint in BLUEPRINTS:
        if any(app.tasks.get(name) is not task for name, task in blueprint.tasks.items()):
            app.add_tasks_from(blueprint, namespace=AS_DECLARED)
    missing = [name.value for name in TaskName if name.value not in app.tasks]
    if missing:
        raise RuntimeError(f"no task is registered as {', '.join(missing)}: see BLUEPRINTS")


def attach_schedules(
    scan_cron: str | None,
    *,
    recovery_seconds: float = 60.0,
    watch_seconds: float | None = None,
) -> list[str]:
    """Register the tasks and attach the periodic ones to the app (once per process):
    the maintenance job every quarter of RECOVERY_SECONDS, the nightly scan on
    ``scan_cron`` if set, the watch's tick when ``watch_seconds`` (its interval) is
    given. What was attached."""
    register_tasks()
    attached = []
    schedules: list[tuple[Any, str, str]] = [
        (maintenance.maintain, maintenance.maintenance_cron(recovery_seconds), "maintenance")
    ]
    if scan_cron:
        schedules.append((scan_tasks.nightly, scan_cron, "nightly-scan"))
    if watch_seconds is not None:
        cron, _ = watch_cron(watch_seconds)
        schedules.append((watch_tasks.watch, cron, watch_tasks.PERIODIC_ID))
    for task, cron, periodic_id in schedules:
        if (task.name, periodic_id) in app.periodic_registry.periodic_tasks:
            continue
        app.periodic(cron=cron, periodic_id=periodic_id)(task)
        attached.append(f"{task.name} ({cron})")
    return attached
