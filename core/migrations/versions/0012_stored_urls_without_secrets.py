"""Schema ops: URLs written before 0011's code kept their secrets; rewrite them as the
console now stores them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Every text, JSON and text-array column of every table in ``ops`` (the job queue's too) is
read where it holds a URL that may carry a secret (a userinfo ``…@`` or a query), and each
such value is written back as ``core.redaction.storable`` gives it: no userinfo, no
signature-like parameter. A row whose rewritten key collides with one already stored that
way (the caches keyed by URL: ``dataset_facts``, ``training_photos``, ``scan_zips``) is the
same thing kept twice, so the older copy with the secret is deleted; a cache row deleted is
read again when next needed. Values already stored this way are left alone, so running it
again changes nothing.

This reads the rule from ``core.redaction`` on purpose: what the migration writes must be
exactly what the console now writes, or lookups by stored URL would miss these rows.
Downgrading leaves the values redacted (the secrets are gone by design).
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from core.redaction import storable

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ops"
_TEXT_TYPES = ("text", "character varying")
_JSON_TYPES = ("json", "jsonb")
# Rows worth reading: a URL with a userinfo or a query somewhere in the value.
_MAY_HOLD_SECRET = r'://[^/\s"]*@|://[^\s"]*\?'


def upgrade() -> None:
    bind = op.get_bind()
    columns = bind.execute(
        sa.text(
            "SELECT table_name, column_name, data_type, udt_name "
            "FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = :schema AND t.table_type = 'BASE TABLE' "
            "AND table_name <> 'alembic_version' "
            "AND (data_type = ANY(:types) OR (data_type = 'ARRAY' AND udt_name = '_text')) "
            "ORDER BY table_name, column_name"
        ),
        {"schema": SCHEMA, "types": [*_TEXT_TYPES, *_JSON_TYPES]},
    ).all()
    for table, column, data_type, _ in columns:
        _rewrite_column(bind, table, column, data_type)


def _rewrite_column(bind: Any, table: str, column: str, data_type: str) -> None:
    qualified = f'{SCHEMA}."{table}"'
    found = bind.execute(
        sa.text(
            f'SELECT ctid::text AS row_id, "{column}" AS value FROM {qualified} '
            f'WHERE "{column}"::text ~ :pattern'
        ),
        {"pattern": _MAY_HOLD_SECRET},
    ).all()
    for row_id, value in found:
        cleaned = storable(value)
        if cleaned == value:
            continue
        if data_type in _JSON_TYPES:
            assignment = f'"{column}" = CAST(:value AS {data_type})'
            given: Any = json.dumps(cleaned)
        else:
            assignment = f'"{column}" = :value'
            given = cleaned
        savepoint = bind.begin_nested()
        try:
            bind.execute(
                sa.text(f"UPDATE {qualified} SET {assignment} WHERE ctid = CAST(:row AS tid)"),
                {"value": given, "row": row_id},
            )
            savepoint.commit()
        except sa.exc.IntegrityError:
            # The stored form is there already (a cache keyed by URL): drop this copy.
            savepoint.rollback()
            bind.execute(
                sa.text(f"DELETE FROM {qualified} WHERE ctid = CAST(:row AS tid)"),
                {"row": row_id},
            )


def downgrade() -> None:
    """Nothing to put back: the secrets are not kept anywhere."""
