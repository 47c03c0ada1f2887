"""Migration 0004: procrastinate's queue in schema ops, the scans' new columns and tables,
and the unique index that allows one fleet scan queued or running."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Connection, insert, inspect, text
from sqlalchemy.exc import IntegrityError

from core.db import alembic_config, make_engine, upgrade_ops
from core.scan.tables import scan_batches, scan_zips, scans

QUEUE_TABLES = {
    "procrastinate_jobs",
    "procrastinate_events",
    "procrastinate_workers",
    "procrastinate_periodic_defers",
}


def test_the_queue_lives_in_schema_ops_and_reverts_cleanly(fresh_database_url: str) -> None:
    upgrade_ops(fresh_database_url)
    engine = make_engine(fresh_database_url)
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            assert set(inspector.get_table_names(schema="ops")) >= QUEUE_TABLES | {
                "scan_batches",
                "scan_zips",
            }
            assert not set(inspector.get_table_names(schema="public")) & QUEUE_TABLES
            assert [c["name"] for c in inspector.get_columns("scans", schema="ops")] == [
                column.name for column in scans.columns
            ]
            assert [c["name"] for c in inspector.get_columns("scan_batches", schema="ops")] == [
                column.name for column in scan_batches.columns
            ]
            assert [c["name"] for c in inspector.get_columns("scan_zips", schema="ops")] == [
                column.name for column in scan_zips.columns
            ]
        command.downgrade(alembic_config(fresh_database_url), "0003")
        with engine.connect() as connection:
            names = set(inspect(connection).get_table_names(schema="ops"))
            functions = connection.execute(
                text(
                    "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = 'ops' AND p.proname LIKE 'procrastinate%'"
                )
            ).scalar_one()
        assert not names & (QUEUE_TABLES | {"scan_batches", "scan_zips"}) and functions == 0
        upgrade_ops(fresh_database_url)  # and back: nothing of the queue was left behind
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names(schema="ops")) >= QUEUE_TABLES
    finally:
        engine.dispose()


def test_one_fleet_scan_queued_or_running_but_any_number_ended(conn: Connection) -> None:
    conn.execute(
        text("UPDATE ops.scans SET status = 'failed' WHERE status IN ('queued', 'running')")
    )
    conn.execute(insert(scans).values(users_total=1, status="finished"))
    conn.execute(insert(scans).values(users_total=1, status="finished"))
    conn.execute(insert(scans).values(users_total=1, status="queued"))
    conn.execute(insert(scans).values(users_total=1, status="running", scope="users"))
    with pytest.raises(IntegrityError, match="ux_scans_one_fleet_scan"), conn.begin_nested():
        conn.execute(insert(scans).values(users_total=1, status="running"))
