"""Alembic environment for the console's own schema ``ops`` (run by ``core.db.upgrade_ops``).

Everything Alembic touches lives in schema ``ops``, including its version table, so the
app's ``public`` schema is never read for autogenerate nor written. The URL comes from
``config.attributes["url"]``; there is no alembic.ini.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool, text

from core.compare import tables as compare_tables
from core.ledger import reviews as watch_tables
from core.ledger import tables as ledger_tables
from core.retrain import tables as retrain_tables
from core.scan import tables as scan_tables
from core.schema import OPS_SCHEMA, ops_metadata, ops_objects_only

# Importing them registers the ledger's, the scan's, the comparisons' and the retrains'
# tables in ops_metadata (and the watch's reviews).
REGISTERED_TABLE_MODULES = (
    ledger_tables,
    scan_tables,
    compare_tables,
    retrain_tables,
    watch_tables,
)

# Several console processes may start at once: the first migrates, the others wait and
# then find the version table at head (arbitrary constant, distinct from the app-tables key).
MIGRATION_LOCK_KEY = 7_318_420_002
VERSION_TABLE = "alembic_version"


def _options() -> dict[str, Any]:
    """What both modes tell Alembic: only schema ops, its version table inside ops."""
    return {
        "target_metadata": ops_metadata,
        "version_table": VERSION_TABLE,
        "version_table_schema": OPS_SCHEMA,
        "include_schemas": True,
        "include_name": ops_objects_only,
    }


def run_migrations_offline(url: str) -> None:
    """Emit the SQL instead of running it (for review before touching a shared database)."""
    context.configure(url=url, literal_binds=True, **_options())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online(url: str) -> None:
    """Migrate in one transaction, holding an advisory lock against concurrent runs."""
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            # The version table lives in ops, so the schema must exist before Alembic looks.
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{OPS_SCHEMA}"'))
            context.configure(connection=connection, **_options())
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def _run() -> None:
    url = context.config.attributes.get("url")
    if not isinstance(url, str):
        raise RuntimeError("core.db.alembic_config(url) sets the URL; run migrations through it.")
    if context.is_offline_mode():
        run_migrations_offline(url)
    else:
        run_migrations_online(url)


_run()
