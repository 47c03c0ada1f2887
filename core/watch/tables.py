"""The watch's table in schema ``ops`` (migration 0013).

``retrain_reviews``: one row per ended training of a user that a watch pass saw end, the
review it queued for that user (``status`` 'queued' until the review step exists). The
training id is the key, so two passes, or two workers, never queue two reviews of one
training (inserts are ``ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

from sqlalchemy import TIMESTAMP, CheckConstraint, Column, Index, Table, Text, func

from core.schema import ops_metadata

REVIEW_STATUSES = ("queued",)

retrain_reviews = Table(
    "retrain_reviews",
    ops_metadata,
    Column("training_id", Text, primary_key=True),
    # No FK: schema ops may live in another database (OPS_DATABASE_URL).
    Column("user_id", Text, nullable=False),
    Column("training_status", Text, nullable=False),  # how the training ended
    Column("ended_at", TIMESTAMP(timezone=True)),  # Replicate's completed_at
    Column("status", Text, nullable=False, server_default="queued"),
    Column("seen_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('queued')", name="ck_retrain_reviews_status"),
    CheckConstraint(
        "training_status IN ('succeeded', 'failed', 'canceled')",
        name="ck_retrain_reviews_training_status",
    ),
    Index("ix_retrain_reviews_user_id", "user_id", "seen_at"),
)
