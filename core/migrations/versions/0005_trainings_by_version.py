"""Schema ops: the ledger's trainings found by the version they made.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

When a user's row stores a version that is not one of their own, the drift engine asks
the ledger whose it is (``core.ledger.sync.version_owner``): an index on the hash part of
``output.version`` (its last 64 characters, whether Replicate gave ``owner/name:hash`` or
the bare hash) makes that a lookup instead of a scan of every training.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ops"


def upgrade() -> None:
    op.create_index(
        "ix_trainings_version_hash",
        "trainings",
        [sa.text("right(output_version, 64)")],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("ix_trainings_version_hash", table_name="trainings", schema=SCHEMA)
