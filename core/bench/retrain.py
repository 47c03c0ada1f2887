"""Benchmark figures for the retrain wizard (registered in ``core.bench``; nothing asserts).

- ``photo_checks``: the wizard's per-photo checks of 25 JPEG selfies of 12 MP and more
  (``core.demo.photos.face_photo`` at a 4000 px long side, JPEG quality 92: real faces),
  run as the worker runs them (``core.retrain.measure.PhotoMeasurer``: one process per
  core, each decoding at the checks' size, measuring with its own dlib reader and making
  the thumbnail; then ``judge_for_retrain`` over the set); against a bare decode of the
  same 25 files (``Image.open(...).load()``, one after another). Goal <= 1.5x. The photos
  are rendered and the processes started (readers loaded) before the clock starts.
  ``checks_seconds_one_process`` is the same on one process, so the speed-up from the
  cores shows (``load_average``: other work on the machine takes cores too), and
  ``one_core_ms_per_photo`` splits one photo's time between decoding, dlib's faces and
  the rest (sharpness, exposure, perceptual hash).
- ``concurrent_submits``: against a standalone sandbox and an embedded PostgreSQL of
  their own, with the demo world seeded into them, a draft retrain of the
  ``blurry_retrain`` persona (12 good 1280 px photos) confirmed and submitted by 20
  threads released at once by a barrier (each an admin with a confirmation token of
  its own, then ``submit`` as a worker runs it): exactly one confirmation (the other 19
  get ``Conflict``) and exactly one training create on the sandbox. ``wall_seconds`` is
  the 20 threads' wall time from the barrier to the last one done, against one confirm
  and submit of a second retrain (another persona) alone: what 20 racing callers cost
  over one. ``zips_uploaded`` counts the ZIPs the racers built and uploaded (only the
  first one written is trained on).
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import Engine, select

from core.config import Mode
from core.db import (
    create_app_tables,
    embedded_postgres_url,
    make_engine,
    stop_embedded_postgres,
    upgrade_ops,
)
from core.demo.personas import PERSONAS
from core.demo.photos import face_photo
from core.errors import Conflict
from core.gateway.gateway import ReplicateGateway, build_client
from core.gateway.limits import RateLimits
from core.imaging import SkippedMember, decode_photo
from core.imaging.faces import FaceReader
from core.ledger.photo_facts import photo_check
from core.ledger.sync import ledger_for_user, sync_ledger
from core.retrain.checks import PhotoFacts, judge_for_retrain, measure_for_retrain
from core.retrain.draft import measure_draft, rejudge
from core.retrain.measure import CHECK_LONG_SIDE, PhotoMeasurer, default_processes
from core.retrain.plan import RETRAIN_TRAINER, RETRAIN_TRAINER_VERSION, retrain_target
from core.retrain.submit import NewPhoto, add_photos, confirm, open_draft, submit
from core.retrain.tables import retrains
from core.roles import Actor, Role
from core.runtime import BATCH
from core.schema import user_models

PHOTOS = 25
PHOTO_LONG_SIDE = 4000  # a 12 MP phone photo's long side (4000x3000)
PHOTO_JPEG_QUALITY = 92
BARE_DECODE_REPEATS = 3  # the baseline is cheap: its median over a few runs
SPLIT_PHOTOS = 5  # photos timed step by step, for where the time goes

THREADS = 20
DRAFT_PHOTOS = 12
DRAFT_LONG_SIDE = 1280
RACED_PERSONA = "blurry_retrain"
ALONE_PERSONA = "healthy_retrained"
REASON = "bench: images got worse after the last retrain"
ADMINS = [Actor(f"bench{index}@sselfie-console", Role.ADMIN) for index in range(THREADS)]
USER_OF = {persona.key: persona.user_id for persona in PERSONAS}


def retrain_figures() -> dict[str, Any]:
    return {"photo_checks": photo_checks(), "concurrent_submits": concurrent_submits()}


# -- photo checks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ChecksRun:
    seconds: float
    facts: tuple[PhotoFacts | None, ...]
    verdicts: dict[str, int]


def photo_checks() -> dict[str, Any]:
    cores = default_processes()
    with ThreadPoolExecutor(max_workers=cores) as pool:  # rendering is slow: both cores
        contents = list(
            pool.map(
                lambda index: face_photo(
                    index, long_side=PHOTO_LONG_SIDE, jpeg_quality=PHOTO_JPEG_QUALITY
                ),
                range(PHOTOS),
            )
        )
    files = [(f"photo-{index:02d}.jpg", content) for index, content in enumerate(contents)]
    pixels = []
    for _, content in files:
        with Image.open(io.BytesIO(content)) as image:
            pixels.append(image.width * image.height)

    _bare_decode(files[:2])  # warm up Pillow's decoder
    load = os.getloadavg()[0]
    bare = statistics.median(_bare_decode(files) for _ in range(BARE_DECODE_REPEATS))
    every_core = _checks(files, cores)
    one_core = _checks(files, 1)
    decode_ms, measure_ms = _split(files[:SPLIT_PHOTOS])
    return {
        "photos": len(files),
        "megapixels": round(statistics.mean(pixels) / 1e6, 1),  # per photo, on average
        "file_megabytes": round(sum(len(content) for _, content in files) / 2**20, 1),
        "bare_decode_seconds": round(bare, 3),
        "checks_seconds": round(every_core.seconds, 3),
        "checks_vs_bare_decode": round(every_core.seconds / max(bare, 1e-9), 2),
        "processes": cores,
        "load_average": round(load, 2),  # other work on the machine takes cores too
        "checks_seconds_one_process": round(one_core.seconds, 3),
        "speedup_from_cores": round(one_core.seconds / max(every_core.seconds, 1e-9), 2),
        "one_core_ms_per_photo": {
            "bare_decode": round(1000 * bare / len(files), 1),
            "decode_photo": round(decode_ms, 1),
            "faces": round(measure_ms["faces"], 1),
            "rest_of_measure": round(measure_ms["rest"], 1),
        },
        "verdicts": every_core.verdicts,
        "same_facts_on_one_process": every_core.facts == one_core.facts,
    }


def _bare_decode(files: Sequence[tuple[str, bytes]]) -> float:
    started = time.perf_counter()
    for _, content in files:
        with Image.open(io.BytesIO(content)) as image:
            image.load()
    return time.perf_counter() - started


def _checks(files: Sequence[tuple[str, bytes]], processes: int) -> _ChecksRun:
    """The checks as a worker runs them (``measure_draft``'s measurer, then the set
    judged), with the processes started and their readers loaded before the clock."""
    with PhotoMeasurer(processes) as measurer:
        measurer.start()
        started = time.perf_counter()
        measured = dict(
            measurer.measure((index, name, content) for index, (name, content) in enumerate(files))
        )
        facts = tuple(measured[index].facts for index in range(len(files)))
        judgements = judge_for_retrain([fact for fact in facts if fact is not None])
        seconds = time.perf_counter() - started
    verdicts: Counter[str] = Counter(judgement.verdict for judgement in judgements)
    verdicts["unreadable"] += sum(1 for fact in facts if fact is None)
    return _ChecksRun(seconds=seconds, facts=facts, verdicts=dict(+verdicts))


def _split(files: Sequence[tuple[str, bytes]]) -> tuple[float, dict[str, float]]:
    """Where one photo's time goes, in this process on one core (medians, ms): decoding at
    the checks' size, dlib's faces (detector, landmarks, descriptor), and the rest."""
    reader = FaceReader()
    decoding, faces, rest = [], [], []
    for name, content in files:
        started = time.perf_counter()
        decoded = decode_photo(
            name, io.BytesIO(content), byte_size=len(content), long_side=CHECK_LONG_SIDE
        )
        decoded_at = time.perf_counter()
        if isinstance(decoded, SkippedMember):
            raise RuntimeError(f"{name} did not decode: {decoded.reason}")
        reader.read_image(decoded.image, min_score=photo_check("min_face_score"))
        faces_at = time.perf_counter()
        measure_for_retrain(decoded, reader)
        measured_at = time.perf_counter()
        decoded.image.close()
        decoding.append(decoded_at - started)
        faces.append(faces_at - decoded_at)
        rest.append(max(0.0, (measured_at - faces_at) - (faces_at - decoded_at)))
    return 1000 * statistics.median(decoding), {
        "faces": 1000 * statistics.median(faces),
        "rest": 1000 * statistics.median(rest),
    }


# -- concurrent submits ------------------------------------------------------------------------


def _gateway(base_url: str) -> ReplicateGateway:
    return ReplicateGateway(
        build_client("r8_bench_retrain", base_url, timeout=BATCH.timeout),
        limits=RateLimits.per_minute(600, 3000),
        policy=BATCH.policy,
    )


def _sandbox_counts(base_url: str) -> dict[str, int]:
    response = httpx.get(f"{base_url}/_sandbox/stats")
    response.raise_for_status()
    return {str(key): int(value) for key, value in response.json()["counts"].items()}


def _draft(engine: Engine, gateway: ReplicateGateway, persona: str, measurer: PhotoMeasurer) -> int:
    """A draft retrain of the persona's user with 12 good photos, checked (a confirmation
    needs every photo checked)."""
    user_id = USER_OF[persona]
    with engine.connect() as conn:
        row = conn.execute(
            select(user_models.c.replicate_version_id, user_models.c.replicate_model_id).where(
                user_models.c.user_id == user_id
            )
        ).one()
        trainings = ledger_for_user(conn, user_id)
    target = retrain_target(
        trainings, stored_version=row.replicate_version_id, row_model=row.replicate_model_id
    )
    schema = gateway.trainer_input_schema(RETRAIN_TRAINER, RETRAIN_TRAINER_VERSION)
    photos = [
        NewPhoto(f"selfie-{index}.jpg", "upload", face_photo(index, long_side=DRAFT_LONG_SIDE))
        for index in range(DRAFT_PHOTOS)
    ]
    with engine.begin() as conn:
        retrain_id = open_draft(
            conn,
            ADMINS[0],
            user_id,
            target,
            trainer=RETRAIN_TRAINER,
            trainer_version=RETRAIN_TRAINER_VERSION,
            trainer_schema=schema,
        )
        add_photos(conn, ADMINS[0], retrain_id, photos)
    measure_draft(engine, measurer, retrain_id)
    with engine.begin() as conn:
        rejudge(conn, retrain_id)
    return retrain_id


def _confirm_and_submit(
    engine: Engine, gateway: ReplicateGateway, actor: Actor, retrain_id: int
) -> tuple[bool, str]:
    """One admin's confirmation (True when it was this one's), then the worker's submit;
    the retrain's status after."""
    try:
        with engine.begin() as conn:
            confirm(
                conn,
                actor,
                retrain_id,
                confirm_token=uuid.uuid4().hex,
                reason=REASON,
            )
        confirmed = True
    except Conflict:
        confirmed = False
    return confirmed, submit(engine, gateway, retrain_id)


def _race(
    engine: Engine, gateways: Sequence[ReplicateGateway], retrain_id: int
) -> tuple[list[tuple[bool, str] | Exception], float]:
    """Every thread's outcome (or what it raised) and the wall time from the barrier's
    release to the last thread done."""
    outcomes: list[tuple[bool, str] | Exception] = [RuntimeError("not run")] * len(gateways)
    start = threading.Barrier(len(gateways) + 1)

    def one(index: int) -> None:
        start.wait(timeout=60)
        try:
            outcomes[index] = _confirm_and_submit(
                engine, gateways[index], ADMINS[index], retrain_id
            )
        except Exception as exc:  # reported, not raised: the figure shows it
            outcomes[index] = exc

    threads = [threading.Thread(target=one, args=(index,)) for index in range(len(gateways))]
    for thread in threads:
        thread.start()
    start.wait(timeout=60)
    started = time.perf_counter()
    for thread in threads:
        thread.join(timeout=300)
    return outcomes, time.perf_counter() - started


def _timed(action: Callable[[], tuple[bool, str]]) -> tuple[tuple[bool, str], float]:
    started = time.perf_counter()
    outcome = action()
    return outcome, time.perf_counter() - started


def concurrent_submits() -> dict[str, Any]:
    from core.bench.common import standalone_sandbox
    from core.demo import seed_demo_world

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        base = stack.enter_context(standalone_sandbox(tmp / "sandbox"))
        stack.callback(stop_embedded_postgres, tmp / "pg")
        url = embedded_postgres_url(tmp / "pg")
        # A connection for every racer: 20 workers would each have their own pool.
        engine = make_engine(url, pool_size=THREADS + 2)
        stack.callback(engine.dispose)
        gateway = _gateway(base)
        stack.callback(gateway.close)
        racers = [_gateway(base) for _ in range(THREADS)]
        for racer in racers:
            stack.callback(racer.close)

        create_app_tables(engine, mode=Mode.DEMO)
        upgrade_ops(url)
        seed_demo_world(engine=engine, gateway=gateway, sandbox_url=base)
        sync_ledger(ops_engine=engine, app_engine=engine, gateway=gateway)

        with PhotoMeasurer() as measurer:
            raced_id = _draft(engine, gateway, RACED_PERSONA, measurer)
            alone_id = _draft(engine, gateway, ALONE_PERSONA, measurer)
        before = _sandbox_counts(base)
        outcomes, wall = _race(engine, racers, raced_id)
        after = _sandbox_counts(base)

        alone_before = _sandbox_counts(base)
        (alone_confirmed, alone_status), alone_wall = _timed(
            lambda: _confirm_and_submit(engine, gateway, ADMINS[0], alone_id)
        )
        alone_after = _sandbox_counts(base)

        with engine.connect() as conn:
            rows = {
                row.id: row
                for row in conn.execute(
                    select(retrains.c.id, retrains.c.status, retrains.c.training_id).where(
                        retrains.c.id.in_((raced_id, alone_id))
                    )
                )
            }

    def delta(key: str, first: dict[str, int], second: dict[str, int]) -> int:
        return second.get(key, 0) - first.get(key, 0)

    finished = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
    errors = [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, Exception)]
    return {
        "threads": len(racers),
        "trainings_created": delta("trainings.create", before, after),
        "confirmed": sum(1 for confirmed, _ in finished if confirmed),
        "refused_with_conflict": sum(1 for confirmed, _ in finished if not confirmed),
        "errors": len(errors),
        **({"first_error": errors[0]} if errors else {}),
        "statuses_returned": dict(Counter(status for _, status in finished)),
        "zips_uploaded": delta("files.create", before, after),
        "retrain_status": rows[raced_id].status,
        "has_training": rows[raced_id].training_id is not None,
        "wall_seconds": round(wall, 3),
        "one_submit_seconds": round(alone_wall, 3),
        "one_submit_trainings_created": delta("trainings.create", alone_before, alone_after),
        "one_submit_confirmed": alone_confirmed,
        "one_submit_status": alone_status,
        "wall_vs_one_submit": round(wall / max(alone_wall, 1e-9), 2),
    }
