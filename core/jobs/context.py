"""What every task finds in its job's context, and the retry they share.

A worker (``core.worker``) puts its services and settings in procrastinate's
``additional_context``; a task takes them from there, never from module state. The
services every domain's tasks need (engines, gateway, face readers) and the recovery
delay live here, below every domain (scans, comparisons, retrains, the ledger), so that
a domain's tasks reach them without importing another domain; what only one domain's
tasks read is that domain's (e.g. ``core.compare.tasks.COMPARE_KEY``).

A database hiccup makes a job fail and come back later (``DATABASE_RETRY``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from procrastinate import JobContext, RetryStrategy
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from core.gateway.gateway import ReplicateGateway
from core.imaging.faces import FaceReader

DATABASE_RETRY = RetryStrategy(
    max_attempts=4, wait=5, retry_exceptions={OperationalError, InterfaceError}
)
# A job whose worker has been silent for RECOVERY_SECONDS is taken for dead and run again
# (every step is safe to run twice); this is the default when a worker gives none.
DEFAULT_RECOVERY = timedelta(seconds=60)
SERVICES_KEY = "services"
RECOVERY_KEY = "recovery"


@dataclass(frozen=True)
class JobServices:
    """Shared by every job a worker runs (engines, gateway and readers are thread-safe)."""

    app_engine: Engine  # the app's tables: read only
    ops_engine: Engine  # schema ops: the scan's rows, the ledger, the queue
    gateway: ReplicateGateway
    face_reader: Callable[[], FaceReader]  # dlib's models, loaded on first call
    heartbeat_seconds: float = 10.0


def services_of(context: JobContext) -> JobServices:
    """The worker's shared services (set by ``core.worker``)."""
    services: JobServices = context.additional_context[SERVICES_KEY]
    return services


def recovery_of(context: JobContext) -> timedelta:
    """RECOVERY_SECONDS as the worker was started with: how long a silent worker, a
    lapsed lease or an unowned step waits before it is resumed."""
    recovery: timedelta = context.additional_context.get(RECOVERY_KEY, DEFAULT_RECOVERY)
    return recovery


def job_priority(context: JobContext) -> int:
    """The running job's priority (its follow-ups keep it)."""
    return int(context.job.priority)
