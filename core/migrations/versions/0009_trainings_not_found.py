"""Schema ops: the training ids Replicate answered 404 for, remembered.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

- ``trainings_not_found``: an id that the app's rows name (or the ledger held) and that
  Replicate answered "not found" for, with when it first and last did. A sync no longer
  asks about it again every time (a page once waited on those answers at every rerun);
  it asks again after a day, or in a full sync.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ops"


def upgrade() -> None:
    op.create_table(
        "trainings_not_found",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column(
            "first_answered_at",
            sa.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column(
            "last_answered_at",
            sa.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("trainings_not_found", schema=SCHEMA)
