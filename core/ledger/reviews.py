"""The retrain reviews' table in schema ``ops`` (migrations 0013, 0014).

``retrain_reviews``: one row per ended training of a user that a watch pass saw end, and
the review of it (``core.watch.review``) and its alert (``core.watch.alerts``). The
training id is the key, so two passes, or two workers, never queue two reviews of one
training (inserts are ``ON CONFLICT DO NOTHING``).

It lives beside the ledger's trainings, not in ``core.watch``: a review's verdict is one of
the facts about a user (``core.facts``) that the drift engine reads (RETRAIN_REGRESSED),
and the watch, which writes it, stands above those facts.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Index,
    Integer,
    Table,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from core.drift.facts import RetrainReview
from core.schema import ops_metadata

# queued (a watch pass saw the training end) -> comparing (its comparison runs) -> done.
REVIEW_STATUSES = ("queued", "comparing", "done")


class Verdict(StrEnum):
    """What a retrain review says of one ended training (``ops.retrain_reviews.verdict``)."""

    BETTER = "better"  # the new version is closer to the user's photos beyond the noise
    SAME = "same"  # no difference beyond the noise (or nothing changed: a failed training)
    WORSE = "worse"  # the new version loses the face or is further beyond the noise
    BROKEN = "broken"  # the app's row is wrong after it (stale, lost or malformed version…)

    @property
    def words(self) -> str:
        return VERDICT_WORDS[self]

    @property
    def alerts(self) -> bool:
        """Whether a retrain so judged sends an alert."""
        return self in (Verdict.WORSE, Verdict.BROKEN)


VERDICT_WORDS = {
    Verdict.BETTER: "Better",
    Verdict.SAME: "No difference",
    Verdict.WORSE: "Worse",
    Verdict.BROKEN: "Broken",
}


VERDICTS = tuple(verdict.value for verdict in Verdict)
# none: nothing to alert; off: no ALERT_WEBHOOK_URL; queued -> sending -> sent | failed;
# unknown: a sender died between claiming and recording (never sent again).
ALERT_STATUSES = ("none", "off", "queued", "sending", "sent", "failed", "unknown")

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
    # What the review found (migration 0014).
    Column("verdict", Text),  # better, same, worse, broken; None until done
    Column("sentence", Text),  # what is wrong, or what changed, in one sentence
    Column("codes", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("previous_version", Text),  # what the user had before the training
    Column("new_version", Text),  # what the training made (succeeded only)
    Column("photos_before", Integer),
    Column("photos_after", Integer),
    Column("comparison_id", BigInteger),  # ops.comparisons.id of the automatic comparison
    Column("skipped", Text),  # why no comparison ran (budget, no version to compare)
    Column("reading", JSONB),  # the comparison's reading: change, floor, sentence
    Column("reviewed_at", TIMESTAMP(timezone=True)),
    # The alert of a worse or broken retrain.
    Column("alert_status", Text, nullable=False, server_default="none"),
    Column("alert_attempts", Integer, nullable=False, server_default="0"),
    Column("alert_claimed_at", TIMESTAMP(timezone=True)),
    Column("alert_sent_at", TIMESTAMP(timezone=True)),
    Column("alert_error", Text),
    CheckConstraint("status IN ('queued', 'comparing', 'done')", name="ck_retrain_reviews_status"),
    CheckConstraint(
        "verdict IS NULL OR verdict IN ('better', 'same', 'worse', 'broken')",
        name="ck_retrain_reviews_verdict",
    ),
    CheckConstraint(
        "alert_status IN ('none', 'off', 'queued', 'sending', 'sent', 'failed', 'unknown')",
        name="ck_retrain_reviews_alert_status",
    ),
    CheckConstraint(
        "training_status IN ('succeeded', 'failed', 'canceled')",
        name="ck_retrain_reviews_training_status",
    ),
    Index("ix_retrain_reviews_user_id", "user_id", "seen_at"),
    Index("ix_retrain_reviews_ended_at", text("ended_at DESC")),
)


def latest_verdict(conn: Connection, user_id: str) -> RetrainReview | None:
    """The watch's judgement of the user's latest reviewed training (the newest end
    among reviews that are done), as the drift engine reads it; None when none is done."""
    row = conn.execute(
        select(retrain_reviews)
        .where(retrain_reviews.c.user_id == user_id, retrain_reviews.c.status == "done")
        .order_by(
            retrain_reviews.c.ended_at.desc().nulls_last(),
            retrain_reviews.c.seen_at.desc(),
        )
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    return RetrainReview(
        training_id=row.training_id,
        verdict=row.verdict,
        sentence=row.sentence,
        comparison_id=int(row.comparison_id) if row.comparison_id is not None else None,
        previous_version=row.previous_version,
        new_version=row.new_version,
        ended_at=row.ended_at,
        reading=row.reading if isinstance(row.reading, dict) else {},
    )
