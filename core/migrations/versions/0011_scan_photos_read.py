"""Schema ops: a scan counts the photos read for it while its ZIPs are being read.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

- ``scans.photos_read``: photos measured so far in the ZIPs this scan waits for (a ZIP
  counts in ``zips_done`` only once all its photos are read, which takes minutes for a
  large one: this is what moves meanwhile).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ops"


def upgrade() -> None:
    op.add_column(
        "scans",
        sa.Column("photos_read", sa.Integer(), nullable=False, server_default=sa.text("0")),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("scans", "photos_read", schema=SCHEMA)
