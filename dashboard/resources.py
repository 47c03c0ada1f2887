"""The console's shared resources: one runtime (engines, gateway) per server process.

``st.cache_resource`` hands the same ``Runtime`` to every session and thread; the engines'
pools and the gateway are thread-safe. The cache key is a digest of the settings, so a
process whose settings change (tests) gets a new runtime; a runtime dropped from the cache
(evicted or cleared) has its engines disposed and its HTTP session closed. The first start
shows which step it is on (DEMO: database, sandbox, seeding, worker, first scan).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from core.config import Mode, Settings, get_settings
from core.db import database_errors
from core.errors import ConfigError
from core.jobs.service import ensure_worker
from core.runtime import Runtime, start_runtime
from dashboard.messages import said

DEMO_STARTING = "Starting the demo database and Replicate sandbox…"
LIVE_CONNECTING = "Connecting to the app's database and checking schema ops…"


def _settings_key(settings: Settings) -> str:
    """A digest of everything that decides what the runtime connects to, secrets included."""
    described = repr(
        sorted(
            (name, value.get_secret_value() if hasattr(value, "get_secret_value") else str(value))
            for name, value in settings
        )
    )
    return hashlib.sha256(described.encode()).hexdigest()


class _Started:
    """One process's runtime for one set of settings, started by the first session that
    needs it; the others wait on ``lock``. ``st.cache_resource`` holds it (not the
    runtime itself) so that the first start can show its steps: elements drawn inside a
    cached function would be replayed on every later run."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runtime: Runtime | None = None


def _release(started: _Started) -> None:
    runtime = started.runtime
    if runtime is None:
        return
    runtime.gateway.close()
    runtime.engine.dispose()
    if runtime.ops_engine is not runtime.engine:
        runtime.ops_engine.dispose()


@st.cache_resource(show_spinner=False, on_release=_release, max_entries=2)
def _started(key: str) -> _Started:
    return _Started()


def _start(settings: Settings, started: _Started) -> Runtime:
    """Start the runtime, showing each step (the first DEMO start seeds for half a
    minute); sessions arriving meanwhile wait with a spinner."""
    if not started.lock.acquire(blocking=False):
        with st.spinner("The console is starting in another session…", show_time=True):
            started.lock.acquire()
    try:
        if started.runtime is not None:
            return started.runtime
        label = DEMO_STARTING if settings.mode is Mode.DEMO else LIVE_CONNECTING
        slot = st.empty()
        with slot.status(label, expanded=True) as status:

            def step(message: str) -> None:
                status.update(label=f"{said(message)}…")
                status.write(said(message))

            started.runtime = start_runtime(settings, progress=step)
        slot.empty()  # started: the page itself follows
        return started.runtime
    finally:
        started.lock.release()


def load_runtime(settings: Settings) -> Runtime:
    """The runtime for ``settings``, started on first use (showing its steps).

    A database that cannot be reached is a ConfigError (shown with the next step), not a
    traceback; a failed start is not kept, so the next rerun tries again.
    """
    started = _started(_settings_key(settings))
    try:
        return started.runtime or _start(settings, started)
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        where = (
            "DATABASE_URL / OPS_DATABASE_URL"
            if settings.mode is Mode.LIVE
            else f"the embedded database in {settings.data_dir}"
        )
        raise ConfigError(
            f"Could not connect to {where}: {reason}. Check the URL, that the database "
            "accepts connections from here, then reload the page."
        ) from exc


def keep_worker_alive(settings: Settings) -> None:
    """DEMO: restart the worker process if it died (a pid file and a process lookup:
    milliseconds, once per page run). LIVE workers are deployed, not started here."""
    if settings.mode is Mode.DEMO:
        try:
            ensure_worker(settings)
        except ConfigError as exc:
            st.sidebar.error(f"The background worker could not be started: {said(exc)}")


@contextmanager
def read_only(engine: Engine) -> Iterator[Connection]:
    """A connection that is read-only at the server (a bug in a page can never write);
    database errors come out as the error tree's, with the next step."""
    with database_errors(), engine.connect() as conn:
        yield conn.execution_options(postgresql_readonly=True)


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A connection for a write the caller commits; database errors translated too."""
    with database_errors(), engine.connect() as conn:
        yield conn


def runtime() -> Runtime:
    """The running console's runtime, for pages and loaders (the entry already checked the
    settings, so this is a cache hit)."""
    return load_runtime(get_settings())
