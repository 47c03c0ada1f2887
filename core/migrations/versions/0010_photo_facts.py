"""Schema ops: each training photo's facts, measured once for every path.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

- ``training_photos.facts``: the photo's ``PhotoFacts`` (``core.imaging.measure``): size,
  sharpness, exposure, faces, hash. The ledger's dataset facts, comparisons' references and
  the retrain checks all read these, so a photo is decoded and measured with dlib once,
  whichever of them reads its ZIP first. Rows read before this revision have none; the
  next scan reads their ZIPs again (the dataset facts' method changed too).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ops"


def upgrade() -> None:
    op.add_column("training_photos", sa.Column("facts", JSONB()), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("training_photos", "facts", schema=SCHEMA)
