"""A retrain review: what one ended training of a user did to them, judged at once.

A review (``ops.retrain_reviews``, queued by a watch pass) moves on in steps, each a run
of the ``watch.review`` job, each safe to run twice:

1. **queued**: the user's facts are read afresh (their trainings, the model's versions,
   the photos of both datasets, measured once and kept); for a succeeded training with a
   version before it, the automatic comparison of that version against the new one is
   asked for (the app's own input, the seeds and preset of every judging comparison,
   column A again for the noise floor), within WATCH_DAILY_BUDGET_USD for all reviews of a UTC day.
   Its confirmation token is the training's, so a step run twice asks once. Over the
   budget, or with nothing to compare, the review says why (``skipped``) and goes on.
2. **comparing**: the job looks again every ``COMPARING_POLL_SECONDS`` (our database only)
   until the comparison ended.
3. **done**: the facts are read again (the app has had the comparison's time to write
   its row), the drift engine judges the row and the datasets, the verdict is taken
   (``judge``), and in one transaction: the verdict, the user's findings as a one-user
   check (so the Users filter and Fleet see RETRAIN_REGRESSED at once), the audit record
   and, for worse or broken, the alert (``core.watch.alerts.queue_alert``).

A training the console's own Retrain wizard made (``ops.retrains``) is judged by its
promotion gate's comparison, which compares the same versions with the same seeds, so
nothing is paid twice; its row still holding the version before is the wizard's design
(the row changes on Promote), not a broken row.

No connection is held while Replicate is read; a step that cannot read Replicate is
tried again later (``RETRY_SECONDS``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from core import audit
from core.compare.bottom_line import Dataset, bottom_line, sides_of
from core.compare.plan import JUDGING_PRESET, JUDGING_SEEDS, plan_comparison, read_compare_facts
from core.compare.request import request_comparison
from core.compare.scores import ComparisonStats, Tone
from core.compare.tables import comparisons
from core.drift import Finding, Severity, diagnose
from core.drift.facts import AppRow, RetrainReview, TrainingRecord, UserFacts
from core.drift.words import Namer, evidence_sentence
from core.errors import DashboardError, PermissionDenied, ReplicateError
from core.gateway.values import ModelVersion
from core.jobs.app import Priority
from core.jobs.context import JobServices
from core.ledger.reads import app_rows
from core.ledger.reviews import retrain_reviews
from core.live_diagnosis import gather_live
from core.retrain.tables import retrains
from core.scan.record import finish_scan, record_users, start_scan
from core.scan.values import UserScan
from core.schema import user_models
from core.users import emails_of
from core.watch.alerts import queue_alert
from core.watch.decisions import (
    BROKEN_CODES,
    CONSOLE_HOLDS_ROW,
    WATCH_ACTOR,
    judge,
    review_sentence,
)

log = logging.getLogger(__name__)

REVIEW_ACTION = "watch:review"
REVIEW_TOKEN_PREFIX = "retrain-review:"
# The comparison's progress is in our own database: looking often costs nothing.
COMPARING_POLL_SECONDS = 3.0
# Replicate or the database could not be read: the step runs again after this.
RETRY_SECONDS = 15.0
# A retrain made by the console's wizard has its promotion gate compare the same two
# versions with the same seeds: the review waits this long between looks for the gate's
# comparison, and at most GATE_WAIT_LIMIT after the training ended before comparing itself.
GATE_POLL_SECONDS = 10.0
GATE_WAIT_LIMIT = timedelta(minutes=15)
# What the review's comparison columns are to staff.
REVIEW_ROLES: Mapping[str, str] = {"A": "previous", "B": "new"}


@dataclass(frozen=True)
class ReviewRow:
    training_id: str
    user_id: str
    training_status: str
    status: str
    comparison_id: int | None
    skipped: str | None
    seen_at: datetime | None = None


@dataclass(frozen=True)
class ConsoleRetrain:
    """The console's own retrain that made the training (the Retrain wizard), if any: its
    gate compares the same versions, and the app's row changes only when an admin (or
    the gate) promotes the new version."""

    retrain_id: int
    comparison_id: int | None  # the promotion gate's comparison
    gate_read: bool  # the gate was read, with or without a comparison


def review_token(training_id: str) -> str:
    """The review comparison's confirmation token: one comparison per training however
    often the step runs."""
    return f"{REVIEW_TOKEN_PREFIX}{training_id}"


@dataclass(frozen=True)
class ReviewSettings:
    daily_budget_usd: float  # WATCH_DAILY_BUDGET_USD
    price_per_image_usd: float  # COMPARE_PRICE_PER_IMAGE_USD
    webhook_set: bool  # ALERT_WEBHOOK_URL is set: worse and broken retrains alert


def advance_review(
    services: JobServices, settings: ReviewSettings, training_id: str
) -> float | None:
    """One step of the review of ``training_id`` (see the module docstring); seconds until
    the next step, or None once the review is done (or there is none)."""
    review = _read(services.ops_engine, training_id)
    if review is None or review.status == "done":
        return None
    try:
        if review.status == "queued":
            return _start(services, settings, review)
        if review.comparison_id is not None and _comparison_running(
            services.ops_engine, review.comparison_id
        ):
            return COMPARING_POLL_SECONDS
        _finish(services, settings, review)
    except ReplicateError as exc:
        log.warning("review of %s waits for Replicate: %s", training_id, exc)
        return RETRY_SECONDS
    return None


def _read(engine: Engine, training_id: str) -> ReviewRow | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(retrain_reviews).where(retrain_reviews.c.training_id == training_id)
        ).one_or_none()
    if row is None:
        return None
    return ReviewRow(
        row.training_id,
        row.user_id,
        row.training_status,
        row.status,
        int(row.comparison_id) if row.comparison_id is not None else None,
        row.skipped,
        row.seen_at,
    )


def console_retrain(engine: Engine, training_id: str) -> ConsoleRetrain | None:
    """The console's retrain that created ``training_id`` (one indexed query), if any."""
    with engine.connect() as conn:
        row = conn.execute(
            select(retrains.c.id, retrains.c.comparison_id, retrains.c.gate_read_at).where(
                retrains.c.training_id == training_id
            )
        ).one_or_none()
    if row is None:
        return None
    return ConsoleRetrain(
        int(row.id),
        int(row.comparison_id) if row.comparison_id is not None else None,
        row.gate_read_at is not None,
    )


def _app_row(engine: Engine, user_id: str) -> AppRow | None:
    with engine.connect() as conn:
        rows = app_rows(conn, where=user_models.c.user_id == user_id)
    return rows[0] if rows else None


def _facts(services: JobServices, row: AppRow, *, photos: bool) -> UserFacts:
    """The user's facts read afresh: the row's model and versions, the ledger (the user's
    trainings read again by id where it has a gap; a worker may list), and, with
    ``photos``, the datasets measured where the cache lacks them."""
    live = gather_live(
        row,
        app_engine=services.app_engine,
        ops_engine=services.ops_engine,
        gateway=services.gateway,
        face_reader=services.face_reader if photos else None,
        list_here=True,
    )
    return live.facts


def trained_pair(
    trainings: Sequence[TrainingRecord], training_id: str
) -> tuple[TrainingRecord | None, TrainingRecord | None]:
    """The reviewed training and the succeeded training with a version just before it
    (the version the user had before this retrain), from the ledger oldest first."""
    index = next((n for n, record in enumerate(trainings) if record.id == training_id), None)
    if index is None:
        return None, None
    before = [record for record in trainings[:index] if record.succeeded and record.version_hash]
    return trainings[index], (before[-1] if before else None)


def _photos(record: TrainingRecord | None) -> int | None:
    if record is None or record.dataset is None or not record.dataset.readable:
        return None
    return record.dataset.image_count


def _start(services: JobServices, settings: ReviewSettings, review: ReviewRow) -> float | None:
    console = console_retrain(services.ops_engine, review.training_id)
    waiting = _gate_pending(console, review)
    if waiting:
        return GATE_POLL_SECONDS
    row = _app_row(services.app_engine, review.user_id)
    if row is None:  # the user's row is gone: nothing the app generates with to judge
        _finish(services, settings, review, row_gone=True)
        return None
    facts = _facts(services, row, photos=True)
    training, previous = trained_pair(facts.trainings, review.training_id)
    new_version = training.version_hash if training is not None and training.succeeded else None
    previous_version = previous.version_hash if previous is not None else None
    values: dict[str, Any] = {
        "previous_version": previous_version,
        "new_version": new_version,
        "photos_before": _photos(previous),
        "photos_after": _photos(training),
    }
    skipped = _why_not_compared(review, new_version, previous_version, settings.daily_budget_usd)
    comparison_id: int | None = None
    if skipped is None and console is not None and console.comparison_id is not None:
        # The console's gate compared these versions already: read its comparison, pay
        # for none.
        with services.ops_engine.begin() as conn:
            _move(conn, review, "comparing", {**values, "comparison_id": console.comparison_id})
        return COMPARING_POLL_SECONDS
    if skipped is None and new_version and previous_version:
        try:
            with (
                services.app_engine.connect() as app,
                services.ops_engine.connect() as ops,
            ):
                compare_facts = read_compare_facts(app, ops, review.user_id)
            plan = plan_comparison(
                services.gateway,
                compare_facts,
                columns=[previous_version, new_version],
                preset=JUDGING_PRESET,
                seeds=JUDGING_SEEDS,
                repeat=True,
            )
            with services.ops_engine.begin() as conn:
                comparison_id = request_comparison(
                    conn,
                    WATCH_ACTOR,
                    plan,
                    confirm_token=review_token(review.training_id),
                    price_per_image_usd=settings.price_per_image_usd,
                    daily_budget_usd=settings.daily_budget_usd,
                    priority=Priority.WATCH,
                )
                _move(conn, review, "comparing", {**values, "comparison_id": comparison_id})
            return COMPARING_POLL_SECONDS
        except PermissionDenied as exc:  # over today's budget for the watch's comparisons
            skipped = f"Not compared: {exc}"
        except ReplicateError:
            raise
        except DashboardError as exc:  # a version gone, a plan that cannot run
            skipped = f"Not compared: {exc}"
    with services.ops_engine.begin() as conn:
        _move(conn, review, "comparing", {**values, "skipped": skipped})
    _finish(services, settings, replace(review, status="comparing", skipped=skipped))
    return None


def _gate_pending(console: ConsoleRetrain | None, review: ReviewRow) -> bool:
    """Whether to wait for a console retrain's gate to ask for its comparison: the
    training succeeded, the gate has neither a comparison nor a reading yet, and the
    training ended less than GATE_WAIT_LIMIT ago (a gate that never runs is not waited
    for forever)."""
    if console is None or review.training_status != "succeeded":
        return False
    if console.comparison_id is not None or console.gate_read:
        return False
    return review.seen_at is None or datetime.now(UTC) - review.seen_at < GATE_WAIT_LIMIT


def _why_not_compared(
    review: ReviewRow, new_version: str | None, previous_version: str | None, budget: float
) -> str | None:
    if review.training_status != "succeeded":
        return None  # nothing new to compare; the row checks say the rest
    if new_version is None:
        return "Not compared: the training's new version is not known."
    if previous_version is None:
        return "Not compared: this is the user's first version, so there is nothing before it."
    if budget <= 0:
        return "Not compared: automatic comparisons are off (WATCH_DAILY_BUDGET_USD is 0)."
    return None


def _move(conn: Connection, review: ReviewRow, status: str, values: Mapping[str, Any]) -> bool:
    """Move the review from the status it was read in to ``status``: a compare-and-set, so
    of two runs of one step only one moves it."""
    moved = conn.execute(
        update(retrain_reviews)
        .where(
            retrain_reviews.c.training_id == review.training_id,
            retrain_reviews.c.status == review.status,
        )
        .values(status=status, **values)
    ).rowcount
    return bool(moved)


def _comparison_running(engine: Engine, comparison_id: int) -> bool:
    with engine.connect() as conn:
        status = conn.execute(
            select(comparisons.c.status).where(comparisons.c.id == comparison_id)
        ).scalar_one_or_none()
    return status in ("queued", "running")


def _datasets(facts: UserFacts | None) -> dict[str, Dataset]:
    """What each of the user's versions was trained on, as measured, by version id."""
    if facts is None:
        return {}
    return {
        record.version_hash: Dataset(record.dataset.image_count, record.dataset.median_short_side)
        for record in facts.trainings
        if record.version_hash and record.dataset is not None and record.dataset.readable
    }


def _comparison_line(
    ops: Connection,
    comparison_id: int,
    versions: Sequence[ModelVersion],
    datasets: Mapping[str, Dataset],
    email: str | None,
) -> tuple[Tone | None, str | None, dict[str, Any]]:
    """What the finished comparison says of the new version (column B) against the one
    before (A): the bottom line's tone and sentence, and the figures behind them."""
    found = ops.execute(
        select(comparisons.c.status, comparisons.c.stats, comparisons.c.columns).where(
            comparisons.c.id == comparison_id
        )
    ).one_or_none()
    if found is None or not found.stats:
        status = found.status if found is not None else "gone"
        return None, f"The comparison ended {status} without figures.", {}
    stats = ComparisonStats.from_json(found.stats)
    sides = sides_of(found.columns or [], versions, roles=REVIEW_ROLES, datasets=datasets)
    line = bottom_line(sides, stats, email or "this user")
    new = stats.column("B")
    reading = {
        "change": new.identity_vs_a if new is not None else None,
        "noise_floor": stats.noise_floor,
        "sentence": line.sentence if line is not None else None,
    }
    if line is None:
        return None, "The comparison has no figures to read.", reading
    return line.tone, line.sentence, reading


def _finish(
    services: JobServices, settings: ReviewSettings, review: ReviewRow, *, row_gone: bool = False
) -> None:
    row = None if row_gone else _app_row(services.app_engine, review.user_id)
    facts = _facts(services, row, photos=False) if row is not None else None
    findings: tuple[Finding, ...] = diagnose(facts) if facts is not None else ()
    versions = facts.model.versions if facts is not None and facts.model is not None else ()
    with services.app_engine.connect() as app:
        email = emails_of(app, [review.user_id]).get(review.user_id)
    tone: Tone | None = None
    comparison_sentence: str | None = None
    reading: dict[str, Any] = {}
    if review.comparison_id is not None:
        with services.ops_engine.connect() as ops:
            tone, comparison_sentence, reading = _comparison_line(
                ops, review.comparison_id, versions, _datasets(facts), email
            )
    console = console_retrain(services.ops_engine, review.training_id)
    row_findings = [
        finding
        for finding in findings
        if finding.code in BROKEN_CODES
        # An admin's decision (Keep, leave as is) brings a finding to info: not broken.
        and finding.severity is not Severity.INFO
        # The console's own retrain changes the row only when it is promoted: until then
        # the row still holding the version before it is the wizard's design.
        and not (console is not None and finding.code in CONSOLE_HOLDS_ROW)
    ]
    row_codes = tuple(finding.code for finding in row_findings)
    verdict = judge(
        training_status=review.training_status,
        row_codes=row_codes,
        tone=tone.value if tone is not None else None,
        row_gone=row_gone,
    )
    codes = tuple(finding.code for finding in findings if finding.code != "RETRAIN_REGRESSED")
    sentence = review_sentence(
        verdict=verdict,
        training_status=review.training_status,
        row_sentences=[evidence_sentence(finding, Namer(versions)) for finding in row_findings],
        comparison=comparison_sentence,
        skipped=review.skipped,
        row_gone=row_gone,
    )
    judged = RetrainReview(
        training_id=review.training_id,
        verdict=verdict.value if verdict is not None else None,
        sentence=sentence,
        comparison_id=review.comparison_id,
        previous_version=None,
        new_version=None,
        reading=reading,
    )
    with services.ops_engine.begin() as conn:
        stored = conn.execute(
            update(retrain_reviews)
            .where(
                retrain_reviews.c.training_id == review.training_id,
                retrain_reviews.c.status != "done",
            )
            .values(
                status="done",
                verdict=judged.verdict,
                sentence=sentence,
                codes=list(codes),
                reading=reading or None,
                reviewed_at=func.now(),
            )
            .returning(retrain_reviews.c.previous_version, retrain_reviews.c.new_version)
        ).one_or_none()
        if stored is None:  # another run of this step finished it first
            return
        if facts is not None:
            judged = replace(
                judged,
                previous_version=stored.previous_version,
                new_version=stored.new_version,
            )
            _record_check(conn, review.user_id, diagnose(replace(facts, retrain=judged)))
        audit.record(
            conn,
            actor_email=WATCH_ACTOR.email,
            actor_role=WATCH_ACTOR.role,
            action=REVIEW_ACTION,
            target_user_id=review.user_id,
            details={
                "event": "reviewed",
                "training_id": review.training_id,
                "training_status": review.training_status,
                "verdict": judged.verdict,
                "codes": list(codes),
                "comparison_id": review.comparison_id,
                "skipped": review.skipped,
            },
        )
        if verdict is not None and verdict.alerts:
            queue_alert(conn, review.training_id, webhook_set=settings.webhook_set)


def _record_check(conn: Connection, user_id: str, findings: tuple[Finding, ...]) -> None:
    """The user's findings as a finished one-user check by the watch: the Users page and
    Fleet read each user's latest check, so they show the retrain's findings at once."""
    options = {"scope": "users", "user_ids": [user_id], "user_count": 1, "with_datasets": True}
    scan_id, _ = start_scan(conn, users_total=1, requested_by=WATCH_ACTOR.email, options=options)
    record_users(conn, scan_id, [UserScan(user_id, findings)])
    finish_scan(conn, scan_id)
