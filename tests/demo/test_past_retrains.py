"""DEMO's past retrain reviews: written once however often the seeding writes them, done
(no review job's work), judged as each persona's history makes plausible, spread over the
last ten days, on the personas' real retrains."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, func, select

from core.demo.history import PersonaHistory, TrainingRun
from core.demo.past_retrains import PAST_RETRAINS, write_past_retrains
from core.demo.personas import CAST, PERSONAS
from core.gateway.values import Training
from core.ledger.reviews import Verdict, retrain_reviews
from tests.demo.test_world import trainings_of
from tests.demo_world import DemoWorld

USER_OF = {persona.key: persona.user_id for persona in PERSONAS}


def _histories() -> list[PersonaHistory]:
    """Every persona's trainings as plain values: the script's steps, succeeded unless
    the step fails, each with a version of its own (no sandbox needed)."""
    histories = []
    for cast in CAST:
        runs: list[TrainingRun] = []
        version: str | None = None
        for number, step in enumerate(cast.script.steps, start=1):
            made = None if step.fails else hashlib.sha256(f"{cast.persona.key}{number}".encode())
            training = Training(
                id=f"{cast.persona.key}-{number}",
                trainer_model=step.trainer,
                trainer_version=step.trainer_version,
                status="failed" if step.fails else "succeeded",
                input={},
                output_version=f"sandrasocial/model:{made.hexdigest()}" if made else None,
                output_weights=None,
                error="CUDA out of memory" if step.fails else None,
                logs=None,
                created_at=None,
                started_at=None,
                completed_at=None,
            )
            runs.append(TrainingRun(training, "sandrasocial/model", "", step.upload.count, version))
            version = training.version_hash or version
        histories.append(PersonaHistory(cast, None, tuple(runs), (), 0))
    return histories


def _count(conn: Connection, training_ids: list[str]) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(retrain_reviews)
            .where(retrain_reviews.c.training_id.in_(training_ids))
        ).scalar_one()
    )


def test_writing_the_past_retrains_twice_leaves_them_once(conn: Connection) -> None:
    histories = _histories()
    ids = [f"{past.persona}-{past.training}" for past in PAST_RETRAINS]
    mine = select(retrain_reviews).where(retrain_reviews.c.training_id.in_(ids))
    now = datetime.now(UTC)
    assert write_past_retrains(histories, conn=conn, now=now) == len(PAST_RETRAINS)
    first = conn.execute(mine.order_by(retrain_reviews.c.training_id)).all()
    assert write_past_retrains(histories, conn=conn, now=now + timedelta(hours=1)) == 0
    again = conn.execute(mine.order_by(retrain_reviews.c.training_id)).all()
    assert again == first and _count(conn, ids) == len(PAST_RETRAINS)
    by_id = {row.training_id: row for row in first}
    lost = by_id["version_lost-2"]  # a failed retrain: no new version, nothing compared
    assert lost.new_version is None and lost.skipped and lost.verdict == "broken"
    assert lost.previous_version == hashlib.sha256(b"version_lost1").hexdigest()
    blurry = by_id["blurry_retrain-2"]
    assert (blurry.photos_before, blurry.photos_after) == (16, 5)
    assert blurry.previous_version == hashlib.sha256(b"blurry_retrain1").hexdigest()


def test_the_seeded_world_holds_the_past_retrains_done_and_spread_over_ten_days(
    demo_world: DemoWorld,
) -> None:
    with demo_world.engine.connect() as conn:
        rows = conn.execute(
            select(retrain_reviews).where(
                retrain_reviews.c.user_id.in_([USER_OF[past.persona] for past in PAST_RETRAINS])
            )
        ).all()
        now: datetime = conn.execute(select(func.now())).scalar_one()
    assert len(rows) == len(PAST_RETRAINS)
    assert {row.status for row in rows} == {"done"}  # never a review job's work
    assert {row.verdict for row in rows} == {verdict.value for verdict in Verdict}
    for row in rows:
        assert timedelta(0) < now - row.ended_at < timedelta(days=10.5)
        assert row.alert_status == ("sent" if Verdict(row.verdict).alerts else "none")
        assert row.sentence and row.reviewed_at > row.ended_at
    assert len({row.ended_at.date() for row in rows}) >= 7  # a chart with some spread
    for past in PAST_RETRAINS:
        # Each is the persona's real retrain on the sandbox, with its photo counts.
        training = trainings_of(demo_world, past.persona)[past.training - 1]
        row = next(row for row in rows if row.training_id == training.id)
        assert row.user_id == USER_OF[past.persona]
        assert row.verdict == past.verdict.value and tuple(row.codes) == past.codes
        assert row.training_status == training.status
        assert row.new_version == training.version_hash
        assert row.photos_after is not None and row.photos_before is not None
    squeezed = next(row for row in rows if row.user_id == USER_OF["squeezed_retrain"])
    assert (squeezed.verdict, squeezed.photos_before, squeezed.photos_after) == ("worse", 16, 16)
