"""Migration 0003: the scan's tables in schema ops, applied, reverted and constrained."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Connection, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from core.db import alembic_config, make_engine, upgrade_ops
from core.scan.tables import scan_findings, scan_users, scans

SCAN_TABLES = {"scans", "scan_findings", "scan_users"}


def test_the_migration_creates_the_scan_tables(fresh_database_url: str) -> None:
    upgrade_ops(fresh_database_url)
    engine = make_engine(fresh_database_url)
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            assert set(inspector.get_table_names(schema="ops")) >= SCAN_TABLES
            assert [c["name"] for c in inspector.get_columns("scans", schema="ops")] == [
                column.name for column in scans.columns
            ]
            assert inspector.get_pk_constraint("scan_findings", schema="ops")[
                "constrained_columns"
            ] == ["scan_id", "user_id", "code"]
            assert {
                i["name"]: i["column_names"]
                for i in inspector.get_indexes("scan_findings", schema="ops")
            } == {
                "ix_scan_findings_scan_code": ["scan_id", "code"],
                "ix_scan_findings_scan_severity": ["scan_id", "severity"],
                "ix_scan_findings_user_id": ["user_id"],
            }
            assert [
                i["column_names"] for i in inspector.get_indexes("scan_users", schema="ops")
            ] == [["scan_id", "worst_severity"]]
            foreign = inspector.get_foreign_keys("scan_users", schema="ops")[0]
            assert (foreign["referred_table"], foreign["options"]["ondelete"]) == (
                "scans",
                "CASCADE",
            )
    finally:
        engine.dispose()


def test_downgrade_to_0002_drops_only_the_scan_tables(fresh_database_url: str) -> None:
    upgrade_ops(fresh_database_url)
    command.downgrade(alembic_config(fresh_database_url), "0002")
    engine = make_engine(fresh_database_url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names(schema="ops")) == {
                "alembic_version",
                "audit_log",
                "staff",
                "trainings",
                "dataset_facts",
                "ledger_state",
            }
        upgrade_ops(fresh_database_url)
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names(schema="ops")) >= SCAN_TABLES
    finally:
        engine.dispose()


def test_deleting_a_scan_deletes_its_rows(conn: Connection) -> None:
    scan_id = conn.execute(insert(scans).values(users_total=1).returning(scans.c.id)).scalar_one()
    conn.execute(
        insert(scan_users).values(
            scan_id=scan_id, user_id="u", finding_count=1, worst_severity="info"
        )
    )
    conn.execute(
        insert(scan_findings).values(
            scan_id=scan_id,
            user_id="u",
            code="PARAMS_CHANGED",
            severity="info",
            title="t",
            evidence={},
            fix={"action": None, "text": "t"},
        )
    )
    row = conn.execute(select(scans).where(scans.c.id == scan_id)).one()
    assert (row.status, row.scope, row.users_scanned, row.options) == ("queued", "all", 0, {})
    conn.execute(scans.delete().where(scans.c.id == scan_id))
    assert (
        conn.execute(
            text("SELECT count(*) FROM ops.scan_findings WHERE scan_id = :id"), {"id": scan_id}
        ).scalar_one()
        == 0
    )
    assert (
        conn.execute(
            text("SELECT count(*) FROM ops.scan_users WHERE scan_id = :id"), {"id": scan_id}
        ).scalar_one()
        == 0
    )


@pytest.mark.parametrize(
    ("table", "values"),
    [
        ("scans", {"users_total": 1, "status": "paused"}),
        ("scan_users", {"user_id": "u", "finding_count": 0, "worst_severity": "fatal"}),
        (
            "scan_findings",
            {
                "user_id": "u",
                "code": "X",
                "severity": "minor",
                "title": "t",
                "evidence": {},
                "fix": {},
            },
        ),
        ("scan_users", {"scan_id": -1, "user_id": "u", "finding_count": 0}),
    ],
)
def test_constraints_refuse_what_no_scan_writes(
    conn: Connection, table: str, values: dict[str, object]
) -> None:
    scan_id = conn.execute(insert(scans).values(users_total=1).returning(scans.c.id)).scalar_one()
    target = {"scans": scans, "scan_users": scan_users, "scan_findings": scan_findings}[table]
    row = values if table == "scans" else {"scan_id": scan_id, **values}
    with pytest.raises(IntegrityError), conn.begin_nested():
        conn.execute(insert(target).values(row))
