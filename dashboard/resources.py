"""The console's shared resources: one runtime (engines, gateway) per server process.

``st.cache_resource`` hands the same ``Runtime`` to every session and thread; the engines'
pools and the gateway are thread-safe. The cache key is a digest of the settings, so a
process whose settings change (tests) gets a new runtime; a runtime dropped from the cache
(evicted or cleared) has its engines disposed and its HTTP session closed.
"""

from __future__ import annotations

import hashlib

import streamlit as st
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from core.config import Mode, Settings, get_settings
from core.errors import ConfigError
from core.faces import FaceReader
from core.runtime import Runtime, start_runtime

DEMO_STARTING = "Starting the demo database and Replicate sandbox…"
LIVE_CONNECTING = "Connecting to the app's database and checking schema ops…"


def _settings_key(settings: Settings) -> str:
    """A digest of everything that decides what the runtime connects to, secrets included."""
    described = repr(sorted(
        (name, value.get_secret_value() if hasattr(value, "get_secret_value") else str(value))
        for name, value in settings
    ))
    return hashlib.sha256(described.encode()).hexdigest()


def _release(runtime: Runtime) -> None:
    runtime.gateway.close()
    runtime.engine.dispose()
    if runtime.ops_engine is not runtime.engine:
        runtime.ops_engine.dispose()


@st.cache_resource(show_spinner=DEMO_STARTING, on_release=_release, max_entries=2)
def _demo_runtime(_settings: Settings, key: str) -> Runtime:
    return start_runtime(_settings)


@st.cache_resource(show_spinner=LIVE_CONNECTING, on_release=_release, max_entries=2)
def _live_runtime(_settings: Settings, key: str) -> Runtime:
    return start_runtime(_settings)


def load_runtime(settings: Settings) -> Runtime:
    """The runtime for ``settings``, started on first use (DEMO: with a spinner).

    A database that cannot be reached is a ConfigError (shown with the next step), not a
    traceback; a failed start is not cached, so the next rerun tries again.
    """
    key = _settings_key(settings)
    try:
        if settings.mode is Mode.DEMO:
            return _demo_runtime(settings, key)
        return _live_runtime(settings, key)
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        where = "DATABASE_URL / OPS_DATABASE_URL" if settings.mode is Mode.LIVE else \
            f"the embedded database in {settings.data_dir}"
        raise ConfigError(
            f"Could not connect to {where}: {reason}. Check the URL, that the database "
            "accepts connections from here, then reload the page.") from exc


def read_only(engine: Engine) -> Connection:
    """A connection that is read-only at the server: a bug in a page can never write."""
    return engine.connect().execution_options(postgresql_readonly=True)


def runtime() -> Runtime:
    """The running console's runtime, for pages and loaders (the entry already checked the
    settings, so this is a cache hit)."""
    return load_runtime(get_settings())


@st.cache_resource(show_spinner="Loading the face model (first use only)…")
def face_reader() -> FaceReader:
    """dlib's face models, loaded once per process (about a second); thread-safe."""
    return FaceReader()
