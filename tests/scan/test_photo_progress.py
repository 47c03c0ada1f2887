"""A scan's progress moves while its photos are read, not only when a whole ZIP is done.

Measured before: the first fleet scan's caption said "photos of 0 of 24 trainings read"
for about four minutes while workers were reading photos: a training counted only once
every photo of its ZIP was measured. Now each photo measured counts, in the scan's row,
as it is measured, and the caption says how many so far.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert, select

from core.db import make_engine
from core.gateway.gateway import ReplicateGateway
from core.imaging.faces import FaceReader
from core.ledger.datasets import ensure_dataset_facts, zip_trainings
from core.ledger.tables import dataset_facts
from core.sandbox.server import RunningSandbox
from core.scan.progress import scan_progress
from core.scan.tables import scan_zips, scans
from core.scan.values import ScanSummary
from core.scan.zips import count_photo
from tests.photos import selfie_zip

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _running(*, zips_total: int, zips_done: int, photos_read: int = 0) -> ScanSummary:
    return ScanSummary(
        id=1,
        started_at=NOW,
        finished_at=None,
        status="running",
        users_total=40,
        users_scanned=0,
        requested_by="ada@example.test",
        phase="check",
        heartbeat_at=NOW,
        picked_up_at=NOW,
        planned=True,
        zips_total=zips_total,
        zips_done=zips_done,
        photos_read=photos_read,
    )


def test_the_words_move_with_each_photo_read() -> None:
    def words(**counts: int) -> str:
        summary = _running(zips_total=24, **counts)
        return scan_progress(summary, now=NOW, stale_after=timedelta(seconds=120)).words

    before = words(zips_done=0)
    assert before == "checking users; photos of 0 of 24 trainings read; 0 of 40 users checked"
    one = words(zips_done=0, photos_read=1)
    later = words(zips_done=0, photos_read=37)
    assert "photos of 0 of 24 trainings read (1 photo so far)" in one
    assert "photos of 0 of 24 trainings read (37 photos so far)" in later
    assert len({before, one, later}) == 3
    # Every training read: the count of photos says nothing more.
    assert "so far" not in words(zips_done=24, photos_read=300)


@pytest.mark.timeout(120)
def test_reading_a_zip_counts_each_photo_in_the_waiting_scan_as_it_is_measured(
    console_database_url: str,
    sandbox: RunningSandbox,
    gateway: ReplicateGateway,
    face_reader: FaceReader,
) -> None:
    engine = make_engine(console_database_url)
    try:
        path = "training/progress/1767225600000-images.zip"
        httpx.put(
            f"{sandbox.base_url}/_blob/{path}", content=selfie_zip(4, long_side=300)
        ).raise_for_status()
        url = f"{sandbox.base_url}/_blob/{path}"
        with engine.begin() as conn:
            scan_id = conn.execute(
                insert(scans)
                .values(status="running", scope="users", users_total=1, zips_total=1)
                .returning(scans.c.id)
            ).scalar_one()
            conn.execute(insert(scan_zips).values(scan_id=scan_id, url=url, state="pending"))
        seen: list[tuple[int, bool]] = []

        def counted(read: str) -> None:
            count_photo(engine, read)
            with engine.connect() as conn:  # what a page sees now, from another connection
                read_so_far = conn.execute(
                    select(scans.c.photos_read).where(scans.c.id == scan_id)
                ).scalar_one()
                zip_done = conn.execute(select(dataset_facts.c.url)).first() is not None
            seen.append((read_so_far, zip_done))

        done = ensure_dataset_facts(
            engine, gateway, face_reader, zip_trainings(url), on_photo=counted
        )
        assert done.computed == (url,)
        assert seen == [(1, False), (2, False), (3, False), (4, False)]
    finally:
        engine.dispose()
