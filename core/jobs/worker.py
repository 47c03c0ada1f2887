"""The worker loop: runs the app's jobs (``core.jobs.app``) with what the process hands
it, until SIGTERM or Ctrl-C, and outlives the database. It knows no domain:
``core.worker`` starts the runtime, registers every domain's tasks (``core.tasks``) and
calls ``work`` with a ``Started`` (the database, what every task finds in its job's
context, how to let go of them).

Running jobs finish first on SIGTERM or Ctrl-C; a second signal stops at once, and their
jobs are run again by another worker's maintenance. Tasks are plain functions, so they
run on a thread pool of ``concurrency`` threads.

The database going away never ends the process. procrastinate's worker loop stops when
it loses its connection (LISTEN, the heartbeat, fetching a job) once the jobs running
here have ended (their own queries fail at once; recording how they ended waits up to
``CONNECT_TIMEOUT_SECONDS``). The process then says so once (``database unavailable:
...; reconnecting in 1 s``), tries again after 1, 2, 4 ... s (at most 30 s, with jitter
so that many workers do not knock at once), and when the database answers says so
(``database available again after N s``), opens a new connector and runs a new loop.
Jobs the stopped loop could not record as ended stay ``doing``: on reconnecting its
worker row is removed and a maintenance run queued (``core.maintenance.maintain``, which
queues again the jobs of workers that are gone), so they run again within seconds. A
worker started while the database is down waits for it the same way. SIGTERM or Ctrl-C
during such a wait ends the process at once with status 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from procrastinate import PsycopgConnector
from procrastinate.app import WorkerOptions
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.worker import Worker
from sqlalchemy import make_url

from core.jobs.app import TaskName, app
from core.schema import OPS_SCHEMA

log = logging.getLogger(__name__)

# procrastinate polls for new jobs this often when LISTEN/NOTIFY missed one.
POLL_SECONDS = 2.0
# Waits between attempts to reach a database that went away: doubling, capped, jittered.
RECONNECT_FIRST_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 30.0
RECONNECT_JITTER = 0.1
# How long an attempt waits for the database to answer, and procrastinate's pool for a
# connection (its default, 30 s, let a dying loop wait that long on every query).
CONNECT_TIMEOUT_SECONDS = 5
CONNECTOR_OPTIONS = {
    "options": f"-c search_path={OPS_SCHEMA}",
    "application_name": "sselfie-console-worker",
}

T = TypeVar("T")


def procrastinate_conninfo(sqlalchemy_url: str) -> str:
    """The libpq URI for a SQLAlchemy URL (procrastinate speaks psycopg, not SQLAlchemy)."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def heartbeat_seconds(recovery_seconds: float) -> float:
    """How often a worker tells the database it is alive: four times within
    RECOVERY_SECONDS (at most every 10 s, procrastinate's own pace), so a live worker's
    jobs are never taken for a dead one's."""
    return max(0.5, min(10.0, recovery_seconds / 4))


# --- the database going away ----------------------------------------------------------


def connection_error(error: BaseException | None) -> BaseException | None:
    """The psycopg error in ``error``'s chain saying the database went away or does not
    answer (a refused or broken connection, the server shutting down, a pool that got no
    connection), or None: reconnecting helps only with those."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def reconnect_delays(
    *,
    first: float = RECONNECT_FIRST_SECONDS,
    cap: float = RECONNECT_MAX_SECONDS,
    jitter: float = RECONNECT_JITTER,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Seconds to wait before each attempt: ``first``, doubling up to ``cap``, each moved
    by up to ``jitter`` of itself either way."""
    spread = rng or random.Random()
    delay = first
    while True:
        yield delay * (1 + spread.uniform(-jitter, jitter))
        delay = min(cap, delay * 2)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class StopRequest:
    """SIGTERM and SIGINT for the worker process. The first asks it to stop: a running
    worker loop lets its jobs finish, a wait for the database ends at once. The second
    meets the default action, which ends the process at once."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.worker: Worker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._installed: list[signal.Signals] = []

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals only reach the main thread; the caller stops us otherwise
        self._loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(number, self._first, number)
            self._installed.append(number)

    def uninstall(self) -> None:
        if self._loop is not None:
            for number in self._installed:
                self._loop.remove_signal_handler(number)
        self._installed.clear()

    def _first(self, number: signal.Signals) -> None:
        log.info("%s: stopping (running jobs finish first; again to stop at once)", number.name)
        installed = list(self._installed)
        self.uninstall()
        for again in installed:
            signal.signal(again, signal.SIG_DFL)
        self.event.set()
        if self.worker is not None:
            self.worker.stop()  # type: ignore[no-untyped-call]

    async def unless_stopped(self, awaitable: Awaitable[T]) -> tuple[bool, T | None]:
        """Await ``awaitable`` unless a stop comes first: (finished, its result)."""
        task = asyncio.ensure_future(awaitable)
        stopped = asyncio.ensure_future(self.event.wait())
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not task.done():
            task.cancel()
            return False, None
        return True, task.result()

    async def sleep(self, seconds: float) -> bool:
        """Sleep unless a stop comes first; False when it did."""
        finished, _ = await self.unless_stopped(asyncio.sleep(seconds))
        return finished and not self.requested


class Outage:
    """The database being away: said once when noticed and once when over, with the
    waits between attempts."""

    def __init__(self, stop: StopRequest) -> None:
        self._stop = stop
        self._since: float | None = None
        self._delays: Iterator[float] = iter(())

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    async def wait(self, error: BaseException) -> bool:
        """Wait before the next attempt; False when asked to stop meanwhile."""
        if self._since is None:
            self._since = time.monotonic()
            self._delays = reconnect_delays()
            delay = next(self._delays)
            log.warning(
                "database unavailable: %s; reconnecting in %.0f s", _first_line(error), delay
            )
        else:
            delay = next(self._delays)
            log.debug("database still unavailable (%s); next try in %.1f s", error, delay)
        return await self._stop.sleep(delay)

    def over(self, note: str = "") -> None:
        if self._since is not None:
            away = time.monotonic() - self._since
            log.warning("database available again after %.0f s%s", away, note)
            self._since = None


class LoopFailures(logging.Filter):
    """procrastinate stops its worker loop when a side task (LISTEN, the heartbeat, ...)
    fails, logging the failure twice with a traceback (as ``side_task_failed``, then as
    ``<task>_error`` while shutting down). A lost database is said once, by ``Outage``:
    those records are kept here instead (``take``); any other passes."""

    def __init__(self, worker_name: str) -> None:
        super().__init__()
        self._loggers = [
            logging.getLogger("procrastinate.worker").getChild(worker_name),
            logging.getLogger("procrastinate.utils"),
        ]
        self._lost: BaseException | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        action = str(getattr(record, "action", ""))
        if action != "side_task_failed" and not action.endswith("_error"):
            return True
        lost = connection_error(record.exc_info[1] if record.exc_info else None)
        if lost is None:
            return True
        if action == "side_task_failed":
            self._lost = self._lost or lost
        return False

    def take(self) -> BaseException | None:
        lost, self._lost = self._lost, None
        return lost

    def __enter__(self) -> LoopFailures:
        for logger in self._loggers:
            logger.addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger in self._loggers:
            logger.removeFilter(self)


async def _database_answers(conninfo: str) -> BaseException | None:
    """None when the database takes a connection and a query now, else the error."""
    try:
        async with await psycopg.AsyncConnection.connect(
            conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True
        ) as connection:
            await connection.execute("SELECT 1")
    except psycopg.Error as exc:
        return exc
    return None


@asynccontextmanager
async def _connected(conninfo: str, *, concurrency: int) -> AsyncIterator[None]:
    """The app on a new connector for one run of the worker loop (a connector whose
    pool lost the database is not used again)."""
    connector = PsycopgConnector(
        conninfo=conninfo,
        kwargs=dict(CONNECTOR_OPTIONS),
        min_size=1,
        max_size=concurrency + 2,
        timeout=CONNECT_TIMEOUT_SECONDS,
    )
    with app.replace_connector(connector):
        async with app.open_async():
            yield


class WorkerStopped(RuntimeError):
    """procrastinate's loop stopped on its own for something else than the database."""


async def _serve(conninfo: str, options: WorkerOptions, stop: StopRequest, outage: Outage) -> None:
    """Run the worker loop until asked to stop (or, without ``wait``, until the queues are
    empty), reconnecting whenever it stops because the database went away."""
    dead_workers: list[int] = []
    with LoopFailures(options.get("name") or "worker") as failures:
        while not stop.requested:
            lost = None
            if outage.ongoing:
                answered, lost = await stop.unless_stopped(_database_answers(conninfo))
                if not answered:
                    return
            if lost is None:
                worker = Worker(app=app, **options)
                try:
                    async with _connected(conninfo, concurrency=options.get("concurrency", 1)):
                        if outage.ongoing:
                            outage.over(await _recover(dead_workers))
                        if stop.requested:
                            return
                        stop.worker = worker
                        await worker.run()  # type: ignore[no-untyped-call]
                except Exception as exc:
                    lost = connection_error(exc)
                    if lost is None:
                        raise
                    lost = failures.take() or lost  # what the loop saw first says more
                else:
                    lost = failures.take()
                    if lost is None:
                        if stop.requested or not options.get("wait", True):
                            return
                        raise WorkerStopped("the worker loop stopped on its own; see above")
                finally:
                    stop.worker = None
                    if worker.worker_id is not None:  # it could not unregister itself
                        dead_workers.append(worker.worker_id)
            if stop.requested or not await outage.wait(lost):
                return


async def _recover(dead_workers: list[int]) -> str:
    """After an outage, hand the jobs that stopped loops left ``doing`` to the maintenance
    task: remove those loops' worker rows (the jobs are then stalled at once, not when
    the rows' heartbeats are a minute old) and queue a maintenance run now rather than
    at the next minute. What to say about them."""
    left = 0
    while dead_workers:
        doing = await app.job_manager.list_jobs_async(worker_id=dead_workers[0], status="doing")
        left += len(list(doing))
        await app.job_manager.unregister_worker(dead_workers[0])
        dead_workers.pop(0)
    # A maintenance run already waiting does the same.
    with suppress(AlreadyEnqueued):
        await app.tasks[TaskName.MAINTAIN.value].defer_async(timestamp=int(time.time()))
    if not left:
        return ""
    jobs = "1 job" if left == 1 else f"{left} jobs"
    return f"; {jobs} the stopped loop left running go back to the queue by a maintenance run"


def _unrecorded_job(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's exception handler: a job that ended while the database was away could
    not record how (procrastinate leaves that error in its task, unread); one line, not
    a traceback, since ``_recover`` has it run again."""
    task = context.get("future")
    if connection_error(context.get("exception")) is not None and isinstance(task, asyncio.Task):
        job = task.get_name().removeprefix("process job ")
        log.info("%s ended with the database away: how is not recorded; it runs again", job)
        return
    loop.default_exception_handler(context)


@dataclass(frozen=True)
class Started:
    """What the process hands the worker loop once its runtime is up (``core.worker``)."""

    conninfo: str  # libpq URI of the database holding schema ops
    additional_context: dict[str, Any]  # what every task finds in its job's context
    close: Callable[[], None]  # releases the runtime when the worker stops


async def _start(start: Callable[[], Started], stop: StopRequest, outage: Outage) -> Started | None:
    """``start()``, once the database answers; None when asked to stop meanwhile."""
    while not stop.requested:
        try:
            return await asyncio.to_thread(start)
        except Exception as exc:
            lost = connection_error(exc)
            if lost is None:
                raise
        if not await outage.wait(lost):
            break
    return None


def work(
    start: Callable[[], Started],
    *,
    concurrency: int,
    recovery_seconds: float,
    queues: Sequence[str] | None = None,
    name: str | None = None,
    wait: bool = True,
) -> None:
    """Run jobs until stopped (or, with ``wait=False``, until the queues are empty) on
    what ``start`` gives (it is called again while the database does not answer). The
    app's tasks and schedules must be registered first (``core.tasks``)."""
    asyncio.run(
        _work(
            start,
            concurrency=concurrency,
            recovery_seconds=recovery_seconds,
            queues=queues,
            name=name,
            wait=wait,
        )
    )


async def _work(
    start: Callable[[], Started],
    *,
    concurrency: int,
    recovery_seconds: float,
    queues: Sequence[str] | None,
    name: str | None,
    wait: bool,
) -> None:
    # Plain-function tasks run on the loop's default executor: make it as wide as the
    # worker's concurrency (the default has min(32, CPUs + 4) threads).
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job"))
    loop.set_exception_handler(_unrecorded_job)
    stop = StopRequest()
    stop.install()
    try:
        outage = Outage(stop)
        started = await _start(start, stop, outage)
        if started is None:
            return
        try:
            options: WorkerOptions = {
                "concurrency": concurrency,
                "name": name or f"{os.uname().nodename}:{os.getpid()}",
                "wait": wait,
                "additional_context": started.additional_context,
                "fetch_job_polling_interval": POLL_SECONDS,
                "abort_job_polling_interval": POLL_SECONDS,
                "update_heartbeat_interval": heartbeat_seconds(recovery_seconds),
                "stalled_worker_timeout": max(30.0, recovery_seconds),
                # Signals are StopRequest's: it must also end a wait for the database.
                "install_signal_handlers": False,
            }
            if queues:
                options["queues"] = list(queues)
            await _serve(started.conninfo, options, stop, outage)
        finally:
            started.close()
    finally:
        stop.uninstall()
