"""Migration 0002: the ledger's tables in schema ops, applied (and re-applied) for real."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, DateTime, inspect, text
from sqlalchemy.exc import IntegrityError

from core.db import MIGRATIONS_DIR, alembic_config, make_engine, upgrade_ops
from core.ledger.tables import trainings

LEDGER_TABLES = {"trainings", "dataset_facts", "ledger_state"}
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def test_the_migration_applies_and_a_rerun_is_a_noop(fresh_database_url: str) -> None:
    upgrade_ops(fresh_database_url)
    upgrade_ops(fresh_database_url)
    engine = make_engine(fresh_database_url)
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            assert set(inspector.get_table_names(schema="ops")) >= LEDGER_TABLES
            assert inspector.get_table_names(schema="public") == []
            columns = {c["name"]: c for c in inspector.get_columns("trainings", schema="ops")}
            assert list(columns) == [column.name for column in trainings.columns]
            assert columns["user_id"]["nullable"] and columns["destination"]["nullable"]
            assert str(columns["input"]["type"]) == "JSONB"
            assert str(columns["synced_at"]["type"]) == "TIMESTAMP"
            synced_at_type = columns["synced_at"]["type"]
            assert isinstance(synced_at_type, DateTime)
            assert synced_at_type.timezone
            indexes = {
                i["name"]: i["column_names"]
                for i in inspector.get_indexes("trainings", schema="ops")
            }
            assert indexes == {
                "ix_trainings_user_id": ["user_id", "created_at"],
                "ix_trainings_created_at": ["created_at"],
                "ix_trainings_version_hash": [None],  # right(output_version, 64), rev. 0005
            }
            assert [c["name"] for c in inspector.get_columns("dataset_facts", schema="ops")] == [
                "url",
                "content_sha256",
                "facts",
                "computed_at",
            ]
            assert (
                connection.execute(  # migrated to the newest revision
                    text("SELECT version_num FROM ops.alembic_version")
                ).scalar_one()
                == HEAD
            )
    finally:
        engine.dispose()


def test_downgrade_to_0001_drops_only_the_ledger(fresh_database_url: str) -> None:
    upgrade_ops(fresh_database_url)
    command.downgrade(alembic_config(fresh_database_url), "0001")
    engine = make_engine(fresh_database_url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names(schema="ops")) == {
                "alembic_version",
                "audit_log",
                "staff",
            }
        upgrade_ops(fresh_database_url)
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names(schema="ops")) >= LEDGER_TABLES
    finally:
        engine.dispose()


def _insert(conn: Connection, **values: object) -> None:
    row = {"id": "t1", "trainer_model": "o/t", "trainer_version": "v", "status": "failed", **values}
    with conn.begin_nested():
        conn.execute(trainings.insert().values(row))


def test_an_attachment_always_names_its_rule(conn: Connection) -> None:
    _insert(conn, id="ok", user_id="u1", attached_by="trigger_word")
    _insert(conn, id="loose")
    assert conn.execute(
        text("SELECT input, synced_at IS NOT NULL FROM ops.trainings WHERE id = 'loose'")
    ).one() == ({}, True)
    for values in (
        {"user_id": "u1"},
        {"attached_by": "trigger_word"},
        {"user_id": "u1", "attached_by": "a hunch"},
    ):
        with pytest.raises(IntegrityError):
            _insert(conn, id="bad", **values)
