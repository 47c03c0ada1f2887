"""A draft's earlier photos are measured once: a ZIP nobody read yet is read the way the
scan reads it (and kept for the scan and comparisons), and one already read comes with
its facts and thumbnail from ``ops.training_photos``, so the draft's own measuring skips
them and a later scan does not read the ZIP again."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, func, select

from core.bench.photos import CountingReader
from core.imaging.measure import PhotoFacts
from core.ledger.tables import dataset_facts, training_photos
from core.retrain.draft import load_previous, measure_draft
from core.retrain.measure import PhotoMeasurer
from core.retrain.opening import open_retrain
from core.retrain.tables import retrain_photos, retrains
from core.scan.datasets import ensure_for_users
from tests.conftest import quick_gateway
from tests.jobs.conftest import World
from tests.retrain.drafts import ADMINS

pytestmark = pytest.mark.timeout(240)


def _previous(world: World, retrain_id: int) -> list[tuple[str, dict[str, object] | None, bool]]:
    with world.engine.connect() as conn:
        rows = conn.execute(
            select(retrain_photos.c.name, retrain_photos.c.facts, retrain_photos.c.thumbnail)
            .where(retrain_photos.c.retrain_id == retrain_id, retrain_photos.c.source == "previous")
            .order_by(retrain_photos.c.position)
        ).all()
    return [(row.name, row.facts, row.thumbnail is not None) for row in rows]


def _measured(conn: Connection, urls: list[str]) -> int:
    return int(
        conn.execute(
            select(func.count()).where(
                training_photos.c.zip_url.in_(urls), training_photos.c.facts.is_not(None)
            )
        ).scalar_one()
    )


def test_earlier_photos_are_measured_once_whoever_reads_them_first(
    world: World, photo_measurer: PhotoMeasurer
) -> None:
    gateway = quick_gateway(world.sandbox_url)
    reader = CountingReader()
    try:
        first = open_retrain(
            app_engine=world.engine,
            ops_engine=world.engine,
            gateway=gateway,
            actor=ADMINS[0],
            user_id=world.users.stale_user,
        ).retrain_id
        with world.engine.connect() as conn:
            sources = conn.execute(
                select(retrains.c.source_zips).where(retrains.c.id == first)
            ).scalar_one()
            urls = sorted({str(source["url"]) for source in sources})
            assert urls and _measured(conn, urls) == 0  # nobody has read these ZIPs yet

        assert load_previous(world.engine, gateway, first, lambda: reader) is None
        loaded = _previous(world, first)
        assert loaded and all(facts is not None and thumb for _, facts, thumb in loaded)
        with world.engine.connect() as conn:
            assert reader.reads == _measured(conn, urls) > 0  # each photo read once, kept
            # The scan's dataset facts came with them.
            assert conn.execute(
                select(func.count()).where(dataset_facts.c.url.in_(urls))
            ).scalar_one() == len(urls)
        reads_after_first = reader.reads
        # The draft measures none of them again.
        assert measure_draft(world.engine, photo_measurer, first) == 0
        for name, facts, _ in loaded:
            assert facts is not None and PhotoFacts.from_dict(facts).name == name

        # A second admin's draft of the same user, and a scan's dataset checks: no reading.
        second = open_retrain(
            app_engine=world.engine,
            ops_engine=world.engine,
            gateway=gateway,
            actor=ADMINS[1],
            user_id=world.users.stale_user,
        ).retrain_id
        assert load_previous(world.engine, gateway, second, lambda: reader) is None
        assert measure_draft(world.engine, photo_measurer, second) == 0
        assert [facts for _, facts, _ in _previous(world, second)] == [
            facts for _, facts, _ in loaded
        ]
        ensure_for_users(world.engine, gateway, lambda: reader, {world.users.stale_user: None})
        assert reader.reads == reads_after_first
    finally:
        gateway.close()
