"""A retrain through real worker processes: the draft's photos checked (the previous
training's loaded from its ZIP), one training submitted and followed to its end, and the
promotion gate's comparison run; the page and the command line only queue steps and read
rows."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core.compare.tables import comparisons
from core.jobs.app import TaskName
from core.ledger.reviews import retrain_reviews
from core.retrain.draft import draft_gate
from core.retrain.opening import open_retrain
from core.retrain.submit import NewPhoto
from core.retrain.tables import retrain_photos, retrains
from core.retrain.tasks import defer_retrain
from core.watch.decisions import WATCH_ACTOR
from tests.conftest import quick_gateway
from tests.jobs.conftest import World
from tests.photos import face_photo
from tests.retrain.drafts import ADMINS, PHOTOS, confirm_draft
from tests.retrain.drafts import app_row as _app_row
from tests.workers import Workers, wait_for

pytestmark = pytest.mark.timeout(300)


def _photos(world: World, retrain_id: int) -> list[Any]:
    with world.engine.connect() as conn:
        return list(
            conn.execute(
                select(retrain_photos).where(retrain_photos.c.retrain_id == retrain_id)
            ).all()
        )


def _retrain(world: World, retrain_id: int) -> Any:
    with world.engine.connect() as conn:
        return conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one()


def test_workers_check_submit_follow_and_gate_a_retrain(world: World, workers: Workers) -> None:
    user_id = world.users.stale_user
    before = _app_row(world, user_id)
    gateway = quick_gateway(world.sandbox_url)
    try:  # as the page opens it: the core decides the target and queues the checks
        retrain_id = open_retrain(
            app_engine=world.engine,
            ops_engine=world.engine,
            gateway=gateway,
            actor=ADMINS[0],
            user_id=user_id,
            photos=[
                NewPhoto(f"selfie-{index}.jpg", "upload", face_photo(index, long_side=1280))
                for index in range(PHOTOS)
            ],
            then=lambda conn, new_id: defer_retrain(conn, TaskName.CHECK_RETRAIN, new_id),
        ).retrain_id
    finally:
        gateway.close()
    # The watch looks too: the retrain's training is one the app's user got.
    workers.start(concurrency=2, WATCH_INTERVAL_SECONDS="10")

    def checked() -> list[Any] | None:
        photos = _photos(world, retrain_id)
        previous = [photo for photo in photos if photo.source == "previous"]
        if previous and all(photo.verdict for photo in photos):
            return photos
        return None

    photos = wait_for(checked, timeout=180, what="the draft's photos to be checked")
    previous = [photo for photo in photos if photo.source == "previous"]
    # Both earlier trainings' ZIPs (the jobs world's 5 photos each), named by version.
    assert len(previous) == 10
    assert {photo.name.split("/")[0] for photo in previous} == {"v1", "v2"}
    assert all(photo.thumbnail and photo.facts for photo in photos)
    # The previous photos are 400 px on their long side: too small (a warning or, under
    # 400 px on the short side, a rejection), each with the reason; uploads are not.
    assert {photo.verdict for photo in previous} <= {"warn", "reject"}
    assert all(" px" in " ".join(photo.reasons) for photo in previous)
    assert all(photo.verdict != "reject" for photo in photos if photo.source == "upload")
    # A rejected photo is dropped at once (it could not be submitted); the rest stay kept.
    assert all(photo.kept == (photo.verdict != "reject") for photo in photos)
    with world.engine.begin() as conn:
        conn.execute(
            retrain_photos.update()
            .where(retrain_photos.c.retrain_id == retrain_id, retrain_photos.c.source == "previous")
            .values(kept=False)
        )
        result = draft_gate(conn, retrain_id)
    assert result.passed, result.blocks
    confirm_draft(world, ADMINS[0], retrain_id)
    with world.engine.begin() as conn:
        defer_retrain(conn, TaskName.SUBMIT_RETRAIN, retrain_id)

    def decided_or_gated() -> Any:
        row = _retrain(world, retrain_id)
        if row.comparison_id is None:
            return None
        with world.engine.connect() as conn:
            status = conn.execute(
                select(comparisons.c.status).where(comparisons.c.id == row.comparison_id)
            ).scalar_one()
        return row if status == "finished" and row.gate_read_at is not None else None

    row = wait_for(decided_or_gated, timeout=240, what="the retrain and its gate to finish")
    assert row.status == "succeeded" and row.new_version and row.active
    assert row.decision is None  # RETRAIN_AUTO_PROMOTE is off: an admin decides
    assert _app_row(world, user_id) == before

    # The watch reviews the training and reads the gate's comparison instead of paying for
    # its own; the row still on the version before is the wizard's design, not broken.
    def reviewed() -> Any:
        with world.engine.connect() as conn:
            found = conn.execute(
                select(retrain_reviews).where(retrain_reviews.c.training_id == row.training_id)
            ).one_or_none()
        return found if found is not None and found.status == "done" else None

    review = wait_for(reviewed, timeout=120, what="the watch's review of the retrain")
    assert review.comparison_id == row.comparison_id
    assert review.verdict in ("better", "same", "worse"), (review.verdict, review.sentence)
    assert "STALE_VERSION" in review.codes  # found, but not what judges a console retrain
    with world.engine.connect() as conn:
        watch_comparisons = conn.execute(
            select(comparisons.c.id).where(comparisons.c.requested_by == WATCH_ACTOR.email)
        ).all()
    assert watch_comparisons == []
