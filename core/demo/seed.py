"""Seed the demo world: every persona's history on the sandbox, then their app rows (and
a few past retrain reviews, ``core.demo.past_retrains``).

Personas are independent, so a small thread pool plays them side by side (the gateway
is thread-safe; photo work and the sandbox's image work run in C outside the GIL). All
app rows are written in one transaction at the end, so a half-seeded world is never
visible: ``is_seeded`` is either false or the whole world is there. A PostgreSQL
advisory lock keeps two console processes from seeding at once.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, func, select, text

from core.demo import rows
from core.demo.history import PersonaHistory, Stage, TrainingStarts, play
from core.demo.past_retrains import write_past_retrains
from core.demo.personas import CAST, DEMO_EMAIL_DOMAIN, PERSONAS, Cast
from core.errors import ConfigError
from core.gateway.gateway import ReplicateGateway
from core.ledger.reviews import retrain_reviews
from core.ledger.sync import forget_ledger
from core.scan.tables import scans
from core.schema import (
    ai_images,
    credit_transactions,
    feed_posts,
    generated_images,
    selfie_uploads,
    user_models,
    users,
)

# One more worker than the machine's 2 cores, so both stay busy while a worker waits on
# the sandbox; the work is CPU-bound (photos here, ZIP reading and renders there).
SEED_WORKERS = 3
INSTANT_PACE = {"training_start_seconds": 0, "training_seconds": 0, "prediction_seconds": 0}
# Serialises seeding across console processes (arbitrary constant, unlike core.db's).
DEMO_SEED_LOCK_KEY = 7_318_420_002
PROGRESS_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class SeedReport:
    """What a call to ``seed_demo_world`` did."""

    seeded: bool  # False: the world was already there and nothing was done
    personas: int
    trainings: int
    generations: int
    refused_generations: int
    seconds: float


def is_seeded(*, engine: Engine) -> bool:
    """True when every persona's ``users`` row is there (rows are written all at once)."""
    with engine.connect() as conn:
        return _persona_users(conn) == len(PERSONAS)


def seed_demo_world(
    *,
    engine: Engine,
    gateway: ReplicateGateway,
    sandbox_url: str,
    owner: str = "sandrasocial",
    reset: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SeedReport:
    """Make the demo world; does nothing when it is already seeded, unless ``reset``.

    Seeding clears the sandbox first; ``reset`` also replaces every demo row (all users
    @example.com, synthetic ones included, with their rows in the app tables).
    ``progress`` is called in the caller's thread only (Streamlit elements cannot be
    updated from worker threads).
    """
    started = time.monotonic()
    say = progress or (lambda message: None)
    with (
        httpx.Client(base_url=sandbox_url.rstrip("/"), timeout=60.0) as sandbox,
        _seeding_lock(engine),
    ):
        check_is_sandbox(sandbox, sandbox_url)
        if not reset and is_seeded(engine=engine):
            return SeedReport(False, len(PERSONAS), 0, 0, 0, time.monotonic() - started)
        if reset:
            # First, in its own transaction: should seeding then fail, the world reads as
            # not seeded and the next start seeds it, instead of rows pointing at nothing.
            say("Deleting the demo rows")
            with engine.begin() as conn:
                wipe_demo_rows(conn=conn)
        # The sandbox and the demo rows are one world: whatever the sandbox holds without
        # the rows (an interrupted seeding, a lost database) would skew the histories.
        say("Clearing the sandbox")
        sandbox.post("/_sandbox/reset").raise_for_status()
        with _instant_pace(sandbox):
            histories = _play_all(gateway, sandbox, owner, say)
        say("Writing the app's rows")
        with engine.begin() as conn:
            wipe_demo_rows(conn=conn, user_ids=_persona_ids())  # leftovers, if any
            forget_ledger(conn)  # it described the sandbox world that was just cleared
            conn.execute(scans.delete())  # and so did the findings of earlier scans
            # and the reviews of the personas' trainings (ids of the cleared world)
            conn.execute(
                retrain_reviews.delete().where(retrain_reviews.c.user_id.in_(_persona_ids()))
            )
            write_rows(histories, conn=conn)
            write_past_retrains(histories, conn=conn)
    report = SeedReport(
        seeded=True,
        personas=len(histories),
        trainings=sum(len(history.trainings) for history in histories),
        generations=sum(len(history.generations) for history in histories),
        refused_generations=sum(history.refused_generations for history in histories),
        seconds=time.monotonic() - started,
    )
    say(
        f"Demo world ready: {report.personas} users, {report.trainings} trainings, "
        f"{report.generations} images in {report.seconds:.1f} s"
    )
    return report


def write_rows(histories: list[PersonaHistory], *, conn: Connection) -> None:
    """Insert every persona's app rows (the caller owns the transaction)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    conn.execute(users.insert(), [rows.user_row(history, now=now) for history in histories])
    model_rows = [row for history in histories if (row := rows.model_row(history))]
    if model_rows:
        conn.execute(user_models.insert(), model_rows)
    images = [row for history in histories for row in rows.ai_image_rows(history)]
    if images:
        conn.execute(ai_images.insert(), images)
    generated = [row for history in histories for row in rows.generated_image_rows(history)]
    if generated:
        conn.execute(generated_images.insert(), generated)


def wipe_demo_rows(*, conn: Connection, user_ids: Sequence[str] | None = None) -> int:
    """Delete demo users and their rows in every app table; returns how many users went.

    ``user_ids`` None means every demo user (email @example.com: personas and synthetic
    users). Tables without a foreign key to ``users`` are cleared by user id first.
    """
    demo: ColumnElement[bool] = users.c.email.like(f"%@{DEMO_EMAIL_DOMAIN}")
    if user_ids is not None:
        demo = and_(demo, users.c.id.in_(list(user_ids)))
    demo_ids = select(users.c.id).where(demo)
    for table in (generated_images, ai_images, feed_posts, credit_transactions, selfie_uploads):
        conn.execute(delete(table).where(table.c.user_id.in_(demo_ids)))
    conn.execute(delete(user_models).where(user_models.c.user_id.in_(demo_ids)))
    removed = conn.execute(delete(users).where(demo))
    return int(removed.rowcount or 0)


# -- helpers ------------------------------------------------------------------------------


def _persona_ids() -> list[str]:
    return [persona.user_id for persona in PERSONAS]


def _persona_users(conn: Connection) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(users).where(users.c.id.in_(_persona_ids()))
        ).scalar_one()
    )


def _play_all(
    gateway: ReplicateGateway, sandbox: httpx.Client, owner: str, say: Callable[[str], None]
) -> list[PersonaHistory]:
    """Play every persona's script on a few threads; report progress from this thread."""
    messages: queue.SimpleQueue[str] = queue.SimpleQueue()
    stage = Stage(
        gateway=gateway, sandbox=sandbox, owner=owner, starts=TrainingStarts(), report=messages.put
    )
    # Longest scripts first, so the pool does not end waiting on one long persona.
    ordered = sorted(CAST, key=_workload, reverse=True)
    with ThreadPoolExecutor(max_workers=SEED_WORKERS, thread_name_prefix="demo-seed") as pool:
        futures: dict[Future[PersonaHistory], Cast] = {
            pool.submit(play, cast, stage): cast for cast in ordered
        }
        pending: set[Future[PersonaHistory]] = set(futures)
        while pending:
            _, pending = wait(pending, timeout=PROGRESS_POLL_SECONDS, return_when=FIRST_EXCEPTION)
            _drain(messages, say)
            failed = [future for future in futures if future.done() and future.exception()]
            if failed:
                for future in pending:
                    future.cancel()
                failed[0].result()  # raises the worker's error here, in the caller
        _drain(messages, say)
    by_key = {futures_cast.persona.key: future.result() for future, futures_cast in futures.items()}
    return [by_key[cast.persona.key] for cast in CAST]


def _drain(messages: queue.SimpleQueue[str], say: Callable[[str], None]) -> None:
    while True:
        try:
            say(messages.get_nowait())
        except queue.Empty:
            return


def _workload(cast: Cast) -> int:
    return sum(step.upload.count for step in cast.script.steps)


def check_is_sandbox(sandbox: httpx.Client, sandbox_url: str) -> None:
    """The demo world is made (and the demo's retrains run) only in the local sandbox,
    never on api.replicate.com: ``ConfigError`` unless ``/_sandbox/health`` says so."""
    try:
        health = sandbox.get("/_sandbox/health")
        answer: Any = health.json() if health.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        answer = {}
    if not isinstance(answer, dict) or answer.get("sandbox") is not True:
        raise ConfigError(
            f"{sandbox_url} is not the Replicate sandbox (no /_sandbox/health), so nothing "
            "was done there. The demo world lives only in DEMO, on the sandbox the console "
            "started."
        )


@contextmanager
def _instant_pace(sandbox: httpx.Client) -> Iterator[None]:
    """Trainings and predictions finish at once while seeding; the old pace comes back after."""
    before = sandbox.get("/_sandbox/config")
    before.raise_for_status()
    saved = {key: before.json()[key] for key in INSTANT_PACE}
    sandbox.post("/_sandbox/config", json=INSTANT_PACE).raise_for_status()
    try:
        yield
    finally:
        sandbox.post("/_sandbox/config", json=saved).raise_for_status()


@contextmanager
def _seeding_lock(engine: Engine) -> Iterator[None]:
    """A session-level advisory lock, held on its own connection for the whole seeding."""
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": DEMO_SEED_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": DEMO_SEED_LOCK_KEY})
            conn.commit()
