"""The ledger's task: bring the training history up to date when a page asked for it
(``core.facts.request_history_refresh``). Registered with every other domain's by
``core.tasks``."""

from __future__ import annotations

import logging

from procrastinate import Blueprint, JobContext

from core.errors import ReplicateError
from core.jobs.app import Queue, TaskName
from core.jobs.context import DATABASE_RETRY, services_of
from core.ledger.sync import sync_ledger

log = logging.getLogger(__name__)

blueprint = Blueprint()


@blueprint.task(
    name=TaskName.SYNC_LEDGER.value,
    queue=Queue.SCANS.value,
    pass_context=True,
    retry=DATABASE_RETRY,
)
def sync_history(context: JobContext) -> None:
    """Bring the training ledger up to date with the account's trainings (a page asked:
    ``core.facts.request_history_refresh``). A listing that fails is logged; the page
    shows the history's age, and asks again."""
    services = services_of(context)
    try:
        report = sync_ledger(
            ops_engine=services.ops_engine, app_engine=services.app_engine, gateway=services.gateway
        )
    except ReplicateError as exc:
        log.warning("the training history could not be synced: %s", exc)
        return
    log.info(
        "training history synced: %s listed, %s new, %s s",
        report.listed,
        report.inserted,
        report.seconds,
    )
