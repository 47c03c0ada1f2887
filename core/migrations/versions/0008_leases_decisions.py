"""Schema ops: leases on paid creates, what a retrain's confirmation fixed, the compare
budget given back for what never ran, and decisions the diagnosis knows.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

- ``retrains`` and ``comparison_images``: ``lease_owner`` / ``lease_expires_at``, the run
  that holds a claim on the paid create (or the ZIP upload) and until when; the retrains'
  ``upload_claimed_at`` (a lease without an owner) goes.
- ``retrains.trainer_schema``: the trainer's ``TrainingInput`` as read when the draft
  opened (the plan is computed from it, never from a page's copy); ``confirmed``: what
  the confirmation fixed (destination, trigger word, trainer, photos), which the worker
  checks before it sends; ``gate_read_at``: when the promotion gate's comparison ended
  and was read (or could not run).
- ``comparisons.price_per_image_usd`` and ``released_usd``: the budget counts the estimate
  less what was given back for images never sent.
- ``comparisons.status``: "failed" goes (no comparison ever ended so; see below).
- ``decisions``: an admin's "keep the current version" or "leave as is" on a finding,
  with who, when, why and the row and trainings it was made against.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ops"


def _lease_columns(table: str) -> None:
    op.add_column(table, sa.Column("lease_owner", sa.Text()), schema=SCHEMA)
    op.add_column(table, sa.Column("lease_expires_at", sa.TIMESTAMP(timezone=True)), schema=SCHEMA)


def upgrade() -> None:
    _lease_columns("retrains")
    _lease_columns("comparison_images")
    op.drop_column("retrains", "upload_claimed_at", schema=SCHEMA)
    op.add_column("retrains", sa.Column("trainer_schema", postgresql.JSONB()), schema=SCHEMA)
    op.add_column("retrains", sa.Column("confirmed", postgresql.JSONB()), schema=SCHEMA)
    op.add_column("retrains", sa.Column("gate_read_at", sa.TIMESTAMP(timezone=True)), schema=SCHEMA)
    op.add_column("comparisons", sa.Column("price_per_image_usd", sa.Numeric(10, 4)), schema=SCHEMA)
    op.add_column(
        "comparisons",
        sa.Column("released_usd", sa.Numeric(10, 4), nullable=False, server_default=sa.text("0")),
        schema=SCHEMA,
    )
    # Comparisons made before this revision: their estimate was price x images.
    op.execute(
        """
        UPDATE ops.comparisons AS c
        SET price_per_image_usd = c.estimate_usd / greatest(1, (
            SELECT sum(i.attempt) FROM ops.comparison_images AS i
            WHERE i.comparison_id = c.id))
        """
    )
    # A comparison never ends "failed" (its images fail one by one, and it finishes with
    # them): the state is dropped so that every state allowed is one the machine reaches.
    op.drop_constraint("ck_comparisons_status", "comparisons", schema=SCHEMA, type_="check")
    op.create_check_constraint(
        "ck_comparisons_status",
        "comparisons",
        "status IN ('queued', 'running', 'finished', 'cancelled')",
        schema=SCHEMA,
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=False),
        sa.Column("decided_role", sa.Text(), nullable=False),
        sa.Column(
            "decided_at",
            sa.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("row_fingerprint", sa.Text(), nullable=False),
        sa.Column("row_values", postgresql.JSONB(), nullable=False),
        sa.Column("retrain_id", sa.BigInteger()),
        sa.Column("withdrawn_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("withdrawn_by", sa.Text()),
        sa.CheckConstraint("kind IN ('keep', 'leave_as_is')", name="ck_decisions_kind"),
        schema=SCHEMA,
    )
    op.create_index("ix_decisions_user", "decisions", ["user_id", "id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_decisions_user", table_name="decisions", schema=SCHEMA)
    op.drop_table("decisions", schema=SCHEMA)
    op.drop_constraint("ck_comparisons_status", "comparisons", schema=SCHEMA, type_="check")
    op.create_check_constraint(
        "ck_comparisons_status",
        "comparisons",
        "status IN ('queued', 'running', 'finished', 'failed', 'cancelled')",
        schema=SCHEMA,
    )
    op.drop_column("comparisons", "released_usd", schema=SCHEMA)
    op.drop_column("comparisons", "price_per_image_usd", schema=SCHEMA)
    op.drop_column("retrains", "gate_read_at", schema=SCHEMA)
    op.drop_column("retrains", "confirmed", schema=SCHEMA)
    op.drop_column("retrains", "trainer_schema", schema=SCHEMA)
    op.add_column(
        "retrains", sa.Column("upload_claimed_at", sa.TIMESTAMP(timezone=True)), schema=SCHEMA
    )
    for table in ("comparison_images", "retrains"):
        op.drop_column(table, "lease_expires_at", schema=SCHEMA)
        op.drop_column(table, "lease_owner", schema=SCHEMA)
