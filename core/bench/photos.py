"""``photo_measurements``: how often each training photo of one user is measured with dlib
across what reads photos: a scan's dataset facts, a User page visit (which queues, never
measures), a comparison's identity reference and a retrain draft of the same user.

Against a standalone sandbox and an embedded PostgreSQL of their own, with the demo world
seeded (the ``blurry_retrain`` persona: two trainings, two ZIPs). Faces are read by one
counting reader in this process; the draft's own measuring (a pool of processes) is
counted by what it measured. ``per_photo`` is those measurements over the user's photos:
the goal is 1 (each photo decoded and measured once, whoever reads it first).
"""

from __future__ import annotations

import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import func, select

from core.bench.common import standalone_sandbox
from core.compare.photos import read_missing
from core.config import Mode
from core.db import (
    create_app_tables,
    embedded_postgres_url,
    make_engine,
    stop_embedded_postgres,
    upgrade_ops,
)
from core.demo.personas import PERSONAS
from core.gateway.gateway import ReplicateGateway, build_client
from core.gateway.limits import RateLimits
from core.imaging.faces import Face, FaceReader
from core.ledger.datasets import input_images_url
from core.ledger.sync import ledger_for_user, sync_ledger
from core.ledger.tables import training_photos
from core.live_diagnosis import gather_live
from core.repairs.rows import read_row
from core.repairs.values import app_row
from core.retrain.draft import load_previous, measure_draft
from core.retrain.measure import PhotoMeasurer
from core.retrain.plan import RETRAIN_TRAINER, RETRAIN_TRAINER_VERSION, retrain_target
from core.retrain.submit import open_draft
from core.roles import Actor, Role
from core.runtime import BATCH
from core.scan.datasets import ensure_for_users

PERSONA = "blurry_retrain"
ADMIN = Actor("bench@sselfie-console", Role.ADMIN)


class CountingReader(FaceReader):
    """dlib's reader, counting the photos it reads faces in."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self._count_lock = threading.Lock()

    def read_image(self, image: Image.Image, **options: Any) -> list[Face]:
        with self._count_lock:
            self.reads += 1
        return super().read_image(image, **options)


def photo_measurements() -> dict[str, Any]:
    from core.demo import seed_demo_world

    user_id = next(persona.user_id for persona in PERSONAS if persona.key == PERSONA)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        base = stack.enter_context(standalone_sandbox(tmp / "sandbox"))
        stack.callback(stop_embedded_postgres, tmp / "pg")
        url = embedded_postgres_url(tmp / "pg")
        engine = make_engine(url)
        stack.callback(engine.dispose)
        gateway = ReplicateGateway(
            build_client("r8_bench_photos", base, timeout=BATCH.timeout),
            limits=RateLimits.per_minute(600, 3000),
            policy=BATCH.policy,
        )
        stack.callback(gateway.close)
        create_app_tables(engine, mode=Mode.DEMO)
        upgrade_ops(url)
        seed_demo_world(engine=engine, gateway=gateway, sandbox_url=base)
        sync_ledger(ops_engine=engine, app_engine=engine, gateway=gateway)
        reader = CountingReader()
        with engine.connect() as conn:
            row = app_row(read_row(conn, user_id))
            trainings = ledger_for_user(conn, user_id)
        zips = sorted({found for t in trainings if (found := input_images_url(t)) is not None})

        reads: dict[str, int] = {}
        before = reader.reads
        ensure_for_users(engine, gateway, lambda: reader, {user_id: row.replicate_version_id})
        reads["scan"] = reader.reads - before

        before = reader.reads
        gather_live(row, app_engine=engine, ops_engine=engine, gateway=gateway)
        reads["user_page"] = reader.reads - before

        before = reader.reads
        read_missing(engine, gateway, reader, zips)
        reads["comparison_reference"] = reader.reads - before

        target = retrain_target(
            trainings, stored_version=row.replicate_version_id, row_model=row.model_id
        )
        with engine.begin() as conn:
            retrain_id = open_draft(
                conn,
                ADMIN,
                user_id,
                target,
                trainer=RETRAIN_TRAINER,
                trainer_version=RETRAIN_TRAINER_VERSION,
                trainer_schema=None,
            )
        before = reader.reads
        load_previous(engine, gateway, retrain_id, lambda: reader)
        with PhotoMeasurer(processes=1) as measurer:
            measured_by_draft = measure_draft(engine, measurer, retrain_id)
        reads["retrain_draft"] = reader.reads - before + measured_by_draft

        with engine.connect() as conn:
            photos = int(
                conn.execute(
                    select(func.count())
                    .select_from(training_photos)
                    .where(training_photos.c.zip_url.in_(zips), training_photos.c.skipped.is_(None))
                ).scalar_one()
            )
    total = sum(reads.values())
    return {
        "persona": PERSONA,
        "zips": len(zips),
        "photos": photos,
        "measurements": reads,
        "per_photo": round(total / max(photos, 1), 3),
    }
