"""Schema ops: what a retrain review found, and its alert.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

``retrain_reviews`` gains the review's steps and outcome (``core.watch.review``) and its
alert (``core.watch.alerts``):

- ``status``: queued → comparing (its comparison runs) → done; a review job moves it on,
  and the maintenance job queues that job again for a row no job holds.
- ``verdict`` (better, same, worse, broken) with ``sentence`` (what is wrong, or what
  changed, in one sentence), ``codes`` (the row's and the dataset's finding codes that
  the training caused), the versions, the photos before and after, the comparison (or
  ``skipped``: why none ran) and its reading.
- ``alert_status``: none (nothing to say), off (no webhook set), queued, sending, sent,
  failed (retries ran out), unknown (a sender died mid-send: not sent again).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "ops"
TABLE = "retrain_reviews"


def upgrade() -> None:
    op.drop_constraint("ck_retrain_reviews_status", TABLE, schema=SCHEMA)
    op.create_check_constraint(
        "ck_retrain_reviews_status",
        TABLE,
        "status IN ('queued', 'comparing', 'done')",
        schema=SCHEMA,
    )
    columns: list[sa.Column[Any]] = [
        sa.Column("verdict", sa.Text()),
        sa.Column("sentence", sa.Text()),
        sa.Column(
            "codes",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::text[]"),
        ),
        sa.Column("previous_version", sa.Text()),
        sa.Column("new_version", sa.Text()),
        sa.Column("photos_before", sa.Integer()),
        sa.Column("photos_after", sa.Integer()),
        sa.Column("comparison_id", sa.BigInteger()),
        sa.Column("skipped", sa.Text()),
        sa.Column("reading", postgresql.JSONB()),
        sa.Column("reviewed_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("alert_status", sa.Text(), nullable=False, server_default="none"),
        sa.Column("alert_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("alert_claimed_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("alert_sent_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("alert_error", sa.Text()),
    ]
    for column in columns:
        op.add_column(TABLE, column, schema=SCHEMA)
    op.create_check_constraint(
        "ck_retrain_reviews_verdict",
        TABLE,
        "verdict IS NULL OR verdict IN ('better', 'same', 'worse', 'broken')",
        schema=SCHEMA,
    )
    op.create_check_constraint(
        "ck_retrain_reviews_alert_status",
        TABLE,
        "alert_status IN ('none', 'off', 'queued', 'sending', 'sent', 'failed', 'unknown')",
        schema=SCHEMA,
    )
    op.create_index("ix_retrain_reviews_ended_at", TABLE, [sa.text("ended_at DESC")], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_retrain_reviews_ended_at", table_name=TABLE, schema=SCHEMA)
    op.drop_constraint("ck_retrain_reviews_alert_status", TABLE, schema=SCHEMA)
    op.drop_constraint("ck_retrain_reviews_verdict", TABLE, schema=SCHEMA)
    for name in (
        "alert_error",
        "alert_sent_at",
        "alert_claimed_at",
        "alert_attempts",
        "alert_status",
        "reviewed_at",
        "reading",
        "skipped",
        "comparison_id",
        "photos_after",
        "photos_before",
        "new_version",
        "previous_version",
        "codes",
        "sentence",
        "verdict",
    ):
        op.drop_column(TABLE, name, schema=SCHEMA)
    op.drop_constraint("ck_retrain_reviews_status", TABLE, schema=SCHEMA)
    op.create_check_constraint(
        "ck_retrain_reviews_status", TABLE, "status IN ('queued')", schema=SCHEMA
    )
