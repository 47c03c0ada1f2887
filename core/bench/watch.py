"""Benchmark figure ``watch_latency`` (registered in ``core.bench``; nothing asserts).

Both parts run against a standalone sandbox and an embedded PostgreSQL of their own, with
the demo world seeded and the training ledger synced once (the full listing, as a scan
does) before the watch begins.

- ``calls_per_pass``: Replicate calls of one watch pass (``core.watch.run.run_watch``, in
  this process, as the periodic job runs it), counted by the sandbox: listing calls
  (``GET /v1/trainings``), reads by id (``GET /v1/trainings/{id}``) and every ``/v1``
  call; and the reviews the pass queued. The baseline is a pass with nothing new over the
  demo world alone; then bulk users bring the database to 1,500 (``add_bulk_users``, the
  ledger synced again, as the next scan would) and a pass with nothing new, then one
  after 5 and one after 50 new trainings have ended (personas' earlier trainings started
  again with the same input, into the same model). A pass with nothing new costs the
  same whatever the fleet: ``ratio_calls_1500_to_small_fleet`` should be 1.0. Each new
  page of 100 trainings adds one listing call; each new ended training one review.
- ``latency``: LIVE workers (``python -m core.worker``, WATCH_INTERVAL_SECONDS=10) and a
  new training of a persona trained twice, started once the watch's first pass ran, with
  the app's row written as the app writes it (the training id on submit; version and
  weights once it succeeded): seconds from the training's ``completed_at`` on the
  sandbox to its review's ``reviewed_at`` (the database's clock; both UTC, on one
  machine), and the verdict. The baseline, from the same run: the review's own
  comparison (``ops.comparisons`` ``requested_at`` to ``finished_at``) and the watch
  interval; ``overhead_seconds`` is the latency less the comparison, which should stay
  within two intervals (``ratio_overhead_to_interval`` at most 2).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, func, select, text, update

from core.bench.common import standalone_sandbox
from core.bench.jobs import bench_gateway, temporary_database, worker_processes
from core.bench.page_loads import add_bulk_users
from core.compare.tables import comparisons
from core.demo import PERSONAS, seed_demo_world
from core.gateway.gateway import ReplicateGateway
from core.gateway.values import Training
from core.jobs.app import TaskName
from core.ledger.reviews import retrain_reviews
from core.ledger.store import read_state
from core.ledger.sync import sync_ledger
from core.ledger.tables import trainings
from core.schema import user_models
from core.watch.run import SINCE_KEY, WatchReport, run_watch

FLEET_USERS = 1_500
NEW_TRAININGS = (0, 5, 50)
LISTING = "GET /v1/trainings"
READ_BY_ID = "GET /v1/trainings/{id}"
# The sandbox ends the new trainings of the calls part at once: only their end matters.
INSTANT_TRAININGS = {"training_start_seconds": 0, "training_seconds": 0}
TRAININGS_END_SECONDS = 120.0
POLL_SECONDS = 0.5

WATCH_INTERVAL_SECONDS = 10
# Trained twice, both succeeded: the review has a version before the new one to compare.
LATENCY_PERSONA = "healthy_retrained"
WORKERS = 2
LATENCY_TIMEOUT_SECONDS = 600.0
FIRST_PASS_SECONDS = 120.0

TARGET = (
    "a pass with nothing new makes the same calls at 1,500 users as over the demo world "
    "(ratio 1.0); one review per new ended training; the verdict within two watch "
    "intervals plus the review's comparison (ratio_overhead_to_interval <= 2)"
)


def watch_figures() -> dict[str, Any]:
    return {"calls_per_pass": calls_per_pass(), "latency": latency(), "target": TARGET}


# -- what the benches share -----------------------------------------------------------------


def _counts(base_url: str) -> dict[str, int]:
    response = httpx.get(f"{base_url}/_sandbox/stats")
    response.raise_for_status()
    return {str(key): int(value) for key, value in response.json()["counts"].items()}


def _users(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM users")).scalar_one())


@contextmanager
def _seeded_world() -> Iterator[tuple[Engine, str, str, Path, ReplicateGateway]]:
    """(engine, database URL, sandbox URL, a scratch directory, a gateway): the demo world
    seeded, the ledger synced once."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        standalone_sandbox(Path(tmp) / "sandbox") as base_url,
        temporary_database() as (engine, url),
    ):
        gateway = bench_gateway(base_url)
        try:
            seed_demo_world(engine=engine, gateway=gateway, sandbox_url=base_url)
            sync_ledger(ops_engine=engine, app_engine=engine, gateway=gateway)
            yield engine, url, base_url, Path(tmp), gateway
        finally:
            gateway.close()


def _sources(
    engine: Engine, gateway: ReplicateGateway, user_ids: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """(training id, destination): per model that still exists on Replicate (a persona's
    was deleted), the newest succeeded training the ledger attached to a user (to one of
    ``user_ids`` when given): trainings to start again."""
    query = (
        select(trainings.c.id, trainings.c.destination)
        .where(
            trainings.c.user_id.is_not(None),
            trainings.c.status == "succeeded",
            trainings.c.destination.is_not(None),
        )
        .order_by(trainings.c.created_at.desc(), trainings.c.id)
    )
    if user_ids is not None:
        query = query.where(trainings.c.user_id.in_(list(user_ids)))
    newest: dict[str, str] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            newest.setdefault(row.destination, row.id)
    return [
        (training_id, destination)
        for destination, training_id in newest.items()
        if gateway.get_model(destination) is not None
    ]


def _start_again(gateway: ReplicateGateway, training_id: str, destination: str) -> Training:
    """A new training with an earlier one's trainer and input, into the same model: as the
    app's retrain would start it."""
    earlier = gateway.get_training(training_id)
    return gateway.create_training(
        earlier.trainer_model, earlier.trainer_version, destination, earlier.input
    )


def _wait_ended(
    gateway: ReplicateGateway, ids: Sequence[str], *, timeout: float
) -> dict[str, Training]:
    """Each training as Replicate reports it once ended, within ``timeout`` seconds."""
    ended: dict[str, Training] = {}
    deadline = time.monotonic() + timeout
    while True:
        for training_id in ids:
            if training_id not in ended:
                training = gateway.get_training(training_id)
                if training.is_terminal:
                    ended[training_id] = training
        if len(ended) == len(ids):
            return ended
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(ids) - len(ended)} trainings did not end within {timeout} s")
        time.sleep(POLL_SECONDS)


# -- calls per pass -------------------------------------------------------------------------


def _measured_pass(engine: Engine, gateway: ReplicateGateway, base_url: str) -> dict[str, Any]:
    """One committed pass and what it asked Replicate."""
    before = _counts(base_url)
    report: WatchReport = run_watch(ops_engine=engine, app_engine=engine, gateway=gateway)
    after = _counts(base_url)

    def delta(key: str) -> int:
        return after.get(key, 0) - before.get(key, 0)

    replicate = sum(delta(key) for key in after if key.split(" ", 1)[-1].startswith("/v1/"))
    with engine.connect() as conn:
        known = conn.execute(select(func.count()).select_from(trainings)).scalar_one()
    return {
        "ledger_trainings": int(known),  # after the pass: what a full listing would read
        "listing_calls": delta(LISTING),
        "reads_by_id": delta(READ_BY_ID),
        "replicate_calls": replicate,
        "new_trainings_listed": report.new_trainings,
        "reviews_queued": len(report.queued),
        "errors": len(report.errors),
        "pass_seconds": report.seconds,
    }


def calls_per_pass(
    fleet_users: int = FLEET_USERS, new_trainings: Sequence[int] = NEW_TRAININGS
) -> dict[str, Any]:
    """Replicate calls of a watch pass over the demo world, then at ``fleet_users`` users
    after each count of ``new_trainings`` ended (see the module docstring)."""
    started = time.perf_counter()
    with _seeded_world() as (engine, _, base_url, _, gateway):
        run_watch(ops_engine=engine, app_engine=engine, gateway=gateway)  # the watch begins
        small_users = _users(engine)
        small = _measured_pass(engine, gateway, base_url)

        add_bulk_users(engine, total=fleet_users)
        sync_ledger(ops_engine=engine, app_engine=engine, gateway=gateway)  # the next scan
        users = _users(engine)
        sources = _sources(engine, gateway)
        httpx.post(f"{base_url}/_sandbox/config", json=INSTANT_TRAININGS).raise_for_status()
        passes: dict[str, Any] = {}
        for count in new_trainings:
            made = [
                _start_again(gateway, *sources[index % len(sources)]).id for index in range(count)
            ]
            ended = _wait_ended(gateway, made, timeout=TRAININGS_END_SECONDS)
            passes[f"{count}_new"] = {
                "ended": sorted({training.status for training in ended.values()}),
                **_measured_pass(engine, gateway, base_url),
            }
    nothing_new = passes.get("0_new", {}).get("replicate_calls", 0)
    return {
        "small_fleet_users": small_users,
        "fleet_users": users,
        "small_fleet_0_new": small,
        f"users_{users}": passes,
        "ratio_calls_1500_to_small_fleet": round(nothing_new / max(small["replicate_calls"], 1), 3),
        "total_seconds": round(time.perf_counter() - started, 1),
    }


# -- latency --------------------------------------------------------------------------------


def _user_of(persona_key: str) -> str:
    return next(persona.user_id for persona in PERSONAS if persona.key == persona_key)


def _watch_began(engine: Engine) -> bool:
    with engine.connect() as conn:
        return read_state(conn, SINCE_KEY) is not None


def _wait(condition: Any, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout} s")
        time.sleep(POLL_SECONDS)


def _review_done(engine: Engine, training_id: str) -> bool:
    with engine.connect() as conn:
        status = conn.execute(
            select(retrain_reviews.c.status).where(retrain_reviews.c.training_id == training_id)
        ).scalar_one_or_none()
    return status == "done"


def _review_job_starts(conn: Connection, training_id: str) -> list[datetime]:
    """When each run of the review's ``watch.review`` job started, first first."""
    return list(
        conn.execute(
            text(
                "SELECT event.at FROM ops.procrastinate_events AS event "
                "JOIN ops.procrastinate_jobs AS job ON job.id = event.job_id "
                "WHERE job.task_name = :task AND job.args ->> 'training_id' = :training "
                "AND event.type = 'started' ORDER BY event.at"
            ),
            {"task": TaskName.REVIEW_RETRAIN.value, "training": training_id},
        ).scalars()
    )


def _app_submitted(engine: Engine, user_id: str, training: Training) -> None:
    """What the app writes to the user's row once it started a training (app-facts)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(
            update(user_models)
            .where(user_models.c.user_id == user_id)
            .values(
                training_id=training.id,
                training_status="training",
                replicate_version_id=None,
                lora_weights_url=None,
                training_progress=0,
                started_at=now,
                completed_at=None,
                updated_at=now,
            )
        )


def _app_polled(engine: Engine, user_id: str, training: Training) -> None:
    """What the app's progress poll writes once the training ended."""
    now = datetime.now(UTC).replace(tzinfo=None)
    values: dict[str, Any] = (
        {
            "training_status": "completed",
            "training_progress": 100,
            "replicate_version_id": training.version_hash,
            "lora_weights_url": training.output_weights,
            "completed_at": now,
        }
        if training.status == "succeeded"
        else {"training_status": "failed", "failure_reason": training.error or training.status}
    )
    with engine.begin() as conn:
        conn.execute(
            update(user_models)
            .where(user_models.c.user_id == user_id)
            .values(updated_at=now, **values)
        )


def latency(
    interval_seconds: int = WATCH_INTERVAL_SECONDS, timeout: float = LATENCY_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """Seconds from a training's end on the sandbox to its review's verdict, LIVE workers
    watching every ``interval_seconds`` (see the module docstring)."""
    started = time.perf_counter()
    load = os.getloadavg()[0]  # other work on the shared machine slows the review's steps
    user_id = _user_of(LATENCY_PERSONA)
    with _seeded_world() as (engine, url, base_url, tmp, gateway):
        source, destination = _sources(engine, gateway, [user_id])[0]
        with worker_processes(
            WORKERS,
            database_url=url,
            sandbox_url=base_url,
            data_dir=tmp / "data",
            engine=engine,
            settings={"WATCH_INTERVAL_SECONDS": str(interval_seconds)},
        ):
            _wait(lambda: _watch_began(engine), timeout=FIRST_PASS_SECONDS, what="the first pass")
            new = _start_again(gateway, source, destination)
            _app_submitted(engine, user_id, new)
            ended = _wait_ended(gateway, [new.id], timeout=timeout)[new.id]
            _app_polled(engine, user_id, ended)
            _wait(
                lambda: _review_done(engine, new.id),
                timeout=timeout,
                what=f"the review of training {new.id}",
            )
        with engine.connect() as conn:
            review = conn.execute(
                select(retrain_reviews).where(retrain_reviews.c.training_id == new.id)
            ).one()
            starts = _review_job_starts(conn, new.id)
            compared = (
                conn.execute(
                    select(
                        comparisons.c.status, comparisons.c.requested_at, comparisons.c.finished_at
                    ).where(comparisons.c.id == review.comparison_id)
                ).one_or_none()
                if review.comparison_id is not None
                else None
            )
    if ended.completed_at is None or review.reviewed_at is None:
        raise RuntimeError("the training or its review has no end time")
    seconds = (review.reviewed_at - ended.completed_at).total_seconds()
    comparison_seconds = (
        (compared.finished_at - compared.requested_at).total_seconds()
        if compared is not None and compared.finished_at is not None
        else 0.0
    )
    overhead = seconds - comparison_seconds
    # Where the overhead goes: the watch seeing the end, the review starting its
    # comparison, and the verdict after it.
    steps = {
        "end_to_seen": (review.seen_at - ended.completed_at).total_seconds(),
        **(
            {
                # The review's first step starts a grace after the pass saw the end (the
                # app's row first), then reads the user's facts and photos.
                "seen_to_review_start": (starts[0] - review.seen_at).total_seconds(),
                "review_start_to_comparison": (compared.requested_at - starts[0]).total_seconds(),
                "comparison_to_verdict": (
                    review.reviewed_at - compared.finished_at
                ).total_seconds(),
            }
            if compared is not None and compared.finished_at is not None and starts
            else {"seen_to_verdict": (review.reviewed_at - review.seen_at).total_seconds()}
        ),
    }
    return {
        "persona": LATENCY_PERSONA,
        "training_status": ended.status,
        "verdict": review.verdict,
        "sentence": review.sentence,
        "skipped": review.skipped,
        "comparison_status": compared.status if compared is not None else None,
        "latency_seconds": round(seconds, 1),
        "comparison_seconds": round(comparison_seconds, 1),
        "overhead_seconds": round(overhead, 1),
        "overhead_steps_seconds": {name: round(value, 1) for name, value in steps.items()},
        "watch_interval_seconds": interval_seconds,
        "ratio_overhead_to_interval": round(overhead / interval_seconds, 2),
        "review_job_runs": len(starts),
        "workers": WORKERS,
        "load_average": round(load, 2),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
