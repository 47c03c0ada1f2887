"""DEMO's past retrain reviews, so the watch's view of recent retrains is not empty.

Seeding writes a handful of rows of ``ops.retrain_reviews`` as if the watch had reviewed
the personas' retrains over the last ten days: each is a real retrain of the demo world
(its training id, versions and photo counts from the persona's history), judged the way
its history makes plausible (the blurry and squeezed retrains worse, the stale and lost
versions broken, a healthy retrain better, the rest the same). They are ``done`` (no
review job picks them up) and the watch never queues a training that has a review, so
they are history only. The insert is ``ON CONFLICT DO NOTHING`` on the training id:
seeding twice leaves them once. A demo comparison (``core.demo.comparisons``) of a
version one of them made is linked to it once it is queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert

from core.app.calls import bare_version
from core.demo.history import PersonaHistory, TrainingRun
from core.ledger.reviews import Verdict, retrain_reviews

# How long after a training ended the watch saw it, reviewed it, and alerted.
SEEN_AFTER = timedelta(seconds=40)
REVIEWED_AFTER = timedelta(minutes=3)
ALERTED_AFTER = timedelta(seconds=4)
NO_COMPARISON = "The training failed: there is no new version to compare."


@dataclass(frozen=True)
class PastRetrain:
    """One persona's retrain as the watch judged it, ``days_ago`` before the seeding."""

    persona: str
    training: int  # which of the persona's trainings, 1 being the first
    days_ago: float
    verdict: Verdict
    codes: tuple[str, ...]
    sentence: str


PAST_RETRAINS: tuple[PastRetrain, ...] = (
    PastRetrain(
        "trainer_changed",
        2,
        9.7,
        Verdict.SAME,
        ("TRAINER_CHANGED",),
        "Retrained on the same 15 photos with replicate/fast-flux-trainer instead of "
        "ostris/flux-dev-lora-trainer; the new version looks no different beyond the noise.",
    ),
    PastRetrain(
        "stale_version",
        2,
        8.9,
        Verdict.BROKEN,
        ("STALE_VERSION",),
        "The retrain succeeded, but the app kept generating from the first version: the new "
        "one was never stored.",
    ),
    PastRetrain(
        "blurry_retrain",
        2,
        7.6,
        Verdict.WORSE,
        ("DATASET_SHRANK", "DATASET_DEGRADED", "PARAMS_CHANGED"),
        "Retrained on 5 blurry photos instead of 16 sharp ones; the new version's faces are "
        "softer and further from her photos.",
    ),
    PastRetrain(
        "healthy_retrained",
        2,
        6.4,
        Verdict.BETTER,
        (),
        "Retrained on 18 sharp photos (15 before) and the app switched to the new version, "
        "which is closer to her photos.",
    ),
    PastRetrain(
        "version_lost",
        2,
        5.2,
        Verdict.BROKEN,
        ("VERSION_LOST",),
        "The retrain failed (CUDA out of memory) after the app had already cleared the "
        "stored version: she has nothing to generate from, though her first version "
        "still exists.",
    ),
    PastRetrain(
        "params_changed",
        2,
        4.1,
        Verdict.SAME,
        ("PARAMS_CHANGED",),
        "Retrained on 14 of his 18 photos, so the app lowered the LoRA rank from 48 to 40; "
        "the new version looks no different beyond the noise.",
    ),
    PastRetrain(
        "squeezed_retrain",
        2,
        2.9,
        Verdict.WORSE,
        ("DATASET_DEGRADED",),
        "Retrained on the same 16 photos squeezed by the browser to 600 px at JPEG quality "
        "0.55; the new version is softer and less like her.",
    ),
    PastRetrain(
        "two_models",
        2,
        1.8,
        Verdict.SAME,
        ("DUPLICATE_MODELS",),
        "The retrain went to a second model instead of a new version of the first; the "
        "images look no different beyond the noise.",
    ),
    PastRetrain(
        "stale_version",
        3,
        0.7,
        Verdict.BROKEN,
        ("STALE_VERSION",),
        "Retrained again on the same 15 photos, and the app still generates from the first "
        "version, now two versions behind.",
    ),
)


def past_retrain_rows(
    histories: Sequence[PersonaHistory], *, now: datetime
) -> list[dict[str, Any]]:
    """The ``retrain_reviews`` rows of ``PAST_RETRAINS`` from the personas' histories
    (pure); a persona or training the histories lack is left out."""
    by_key = {history.cast.persona.key: history for history in histories}
    rows = []
    for past in PAST_RETRAINS:
        history = by_key.get(past.persona)
        if history is None or len(history.trainings) < past.training:
            continue
        run = history.trainings[past.training - 1]
        previous = _previous_succeeded(history.trainings[: past.training - 1])
        ended_at = now - timedelta(days=past.days_ago)
        reviewed_at = ended_at + SEEN_AFTER + REVIEWED_AFTER
        alerted = past.verdict.alerts
        rows.append(
            {
                "training_id": run.training.id,
                "user_id": history.cast.persona.user_id,
                "training_status": run.training.status,
                "ended_at": ended_at,
                "status": "done",
                "seen_at": ended_at + SEEN_AFTER,
                "verdict": past.verdict.value,
                "sentence": past.sentence,
                "codes": list(past.codes),
                "previous_version": (
                    bare_version(run.version_before) if run.version_before else None
                ),
                "new_version": run.training.version_hash,
                "photos_before": previous.image_count if previous is not None else None,
                "photos_after": run.image_count,
                "comparison_id": None,
                "skipped": NO_COMPARISON if run.training.version_hash is None else None,
                "reviewed_at": reviewed_at,
                "alert_status": "sent" if alerted else "none",
                "alert_attempts": 1 if alerted else 0,
                "alert_sent_at": reviewed_at + ALERTED_AFTER if alerted else None,
            }
        )
    return rows


def write_past_retrains(
    histories: Sequence[PersonaHistory], *, conn: Connection, now: datetime | None = None
) -> int:
    """Insert the past reviews unless there (the caller owns the transaction); how many
    were new."""
    rows = past_retrain_rows(histories, now=now or datetime.now(UTC))
    if not rows:
        return 0
    inserted = conn.execute(
        insert(retrain_reviews)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[retrain_reviews.c.training_id])
        .returning(retrain_reviews.c.training_id)
    )
    return len(inserted.all())


def _previous_succeeded(runs: Sequence[TrainingRun]) -> TrainingRun | None:
    """The training behind the version the user had before (the last that succeeded)."""
    succeeded = [run for run in runs if run.training.status == "succeeded"]
    return succeeded[-1] if succeeded else None
