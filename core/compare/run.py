"""The steps of a comparison, each safe to run twice, each saying what comes next.

A step reads and writes schema ops in short transactions and never holds a connection
across Replicate or dlib. It returns its follow-ups (``Next``): the worker's task layer
defers them as jobs (``core.compare.tasks``), the foreground CLI runs them in-process.

- ``start``: the comparison is running; every image's create is queued, and the user's
  training photos are read as the identity reference (cached by ZIP URL and member).
- ``predict``: one image. A database claim first (``pending`` -> ``creating``, one
  winner however many jobs run it), then the paid create. When the answer is lost the
  account's predictions are searched for it (same version, seed and prompt, created since
  the claim) before anything else happens; not found, the image fails with the reason and
  can be retried alone by a person. Never sent twice by the console itself.
- ``follow``: polls the prediction until it ends (cancelled on Replicate after the
  timeout); on success downloads the image, keeps a preview in the database (Replicate
  deletes outputs an hour later) and scores the same decoded copy with dlib against the
  reference.
- ``score``: scores an image later when the reference was not read yet, from its output
  (or from its preview once Replicate has deleted the output).
- ``cancel``: cancels on Replicate what a cancelled comparison still runs.

When every image has ended and every succeeded image is scored, the comparison finishes
once (a guarded update): per-column statistics paired by seed, the noise floor from the
repeat of column A, the verdict, the actual cost from ``metrics.predict_time``, and the
``compare:run`` outcome record.

Why one long module: the comparison's steps form one state machine (start, the claimed paid
create, follow, score, finish) whose crash and recovery reasoning holds only when the steps
are read together.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from core import audit
from core.compare.pairs import build_pairs
from core.compare.photos import read_missing, reference_of
from core.compare.plan import REPEAT
from core.compare.request import RUN_ACTION, release_unspent
from core.compare.scores import (
    ComparisonStats,
    ImageScore,
    Reference,
    column_stats,
    noise_floor,
    score_photo,
    verdict,
)
from core.compare.states import COMPARISON, ENDED_BY_REPLICATE, IMAGE
from core.compare.tables import IMAGE_ENDED, comparison_images, comparisons
from core.errors import CreateOutcomeUnknown, DashboardError, DataRejected, ReplicateError
from core.gateway.lost import find_lost_predictions
from core.imaging import SkippedMember, ZipPhoto, decode_photo
from core.imaging.measure import jpeg_within
from core.jobs.app import TaskName
from core.jobs.context import JobServices
from core.leases import KeepLease, held_by, is_free, lease_values, new_owner, released

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 40 * 1024 * 1024
PREVIEW_LONG_SIDE = 512
PREVIEW_QUALITY = 85
FIRST_POLL_SECONDS = 1.0
# A finished image waits at most this long to be noticed (one cheap GET per image).
POLL_SECONDS = 1.0
REFERENCE_WAIT_SECONDS = 3.0


@dataclass(frozen=True)
class CompareSettings:
    price_per_second_usd: float
    prediction_timeout_seconds: float
    # How long a claim on a create outlives a run that stopped renewing it
    # (RECOVERY_SECONDS).
    lease: timedelta = timedelta(seconds=60)


@dataclass(frozen=True)
class Next:
    """A follow-up step: run ``task`` on ``argument`` (a comparison or image id), after
    ``after_seconds`` when given."""

    task: TaskName
    argument: int
    after_seconds: float | None = None

    @property
    def argument_name(self) -> str:
        return "comparison_id" if self.task in COMPARISON_TASKS else "image_id"


COMPARISON_TASKS = frozenset({TaskName.START_COMPARISON, TaskName.CANCEL_COMPARISON})


def _beat(conn: Connection, comparison_id: int) -> None:
    COMPARISON.move(conn, comparison_id, "beat", values={"heartbeat_at": func.now()})


# -- start -------------------------------------------------------------------------------------


def start(services: JobServices, comparison_id: int) -> list[Next]:
    """Start the comparison: every pending image's create queued, and the user's training
    photos read as the identity reference. Run again on a comparison already running
    without its reference (its first run died half-way), it reads the reference and queues
    the images still pending."""
    with services.ops_engine.begin() as conn:
        row = COMPARISON.move(conn, comparison_id, "start", values={"heartbeat_at": func.now()})
        if row is None:
            row = conn.execute(
                select(comparisons).where(comparisons.c.id == comparison_id)
            ).one_or_none()
            if row is None or row.status != "running" or row.reference is not None:
                return []  # ran already, or cancelled
        pending = conn.execute(
            select(comparison_images.c.id)
            .where(
                comparison_images.c.comparison_id == comparison_id,
                comparison_images.c.status == "pending",
            )
            .order_by(comparison_images.c.id)
        ).scalars()
        steps = [Next(TaskName.PREDICT_IMAGE, int(image_id)) for image_id in pending]
    reference = read_reference(services, list(row.reference_zips))
    with services.ops_engine.begin() as conn:
        COMPARISON.move(
            conn,
            comparison_id,
            "beat",
            where=[comparisons.c.reference.is_(None)],
            values={"reference": reference, "heartbeat_at": func.now()},
        )
    return steps


def read_reference(services: JobServices, zip_urls: list[str]) -> dict[str, Any]:
    """Read (or find already read) the user's training photos; what they gave."""
    problems = read_missing(services.ops_engine, services.gateway, services.face_reader(), zip_urls)
    reference, photos = load_reference(services, zip_urls)
    return {
        "photos": photos,
        "faces": len(reference.names) if reference is not None else 0,
        "problem": "; ".join(problems) or None,
    }


def load_reference(services: JobServices, zip_urls: list[str]) -> tuple[Reference | None, int]:
    """The identity reference from the photos read (and how many photos were read)."""
    with services.ops_engine.connect() as conn:
        return reference_of(conn, zip_urls)


# -- predict -----------------------------------------------------------------------------------


def predict(services: JobServices, settings: CompareSettings, image_id: int) -> list[Next]:
    """Claim one image and send its create, once. An image found ``creating`` or ``lost``
    is left to the run holding its lease; once that lease lapsed it is taken over and its
    create searched for (never resent)."""
    owner = new_owner()
    with services.ops_engine.begin() as conn:
        claimed = IMAGE.move(
            conn,
            image_id,
            "claim",
            where=[
                comparison_images.c.comparison_id.in_(
                    select(comparisons.c.id).where(comparisons.c.status == "running")
                )
            ],
            values={
                **lease_values(owner, settings.lease),
                "claimed_at": func.now(),
                "updated_at": func.now(),
            },
        )
        if claimed is not None:
            _beat(conn, claimed.comparison_id)
    if claimed is None:
        return _take_over(services, settings, image_id, owner)
    with KeepLease(services.ops_engine, comparison_images, image_id, owner, settings.lease):
        try:
            prediction = services.gateway.create_prediction(claimed.version_id, claimed.input)
        except CreateOutcomeUnknown as exc:
            return _search(services, settings, image_id, owner, exc, "answer_lost")
        except ReplicateError as exc:
            _fail(
                services,
                settings,
                image_id,
                "refused",
                f"Replicate refused the prediction (nothing was paid): {exc}",
                owner=owner,
            )
            return []
        attached = _attach(services, image_id, owner, prediction.id, "created")
        if attached is None:
            # Another image with the very same version, seed and prompt (column A and its
            # repeat) lost its answer and took this prediction: take its twin, ours now.
            return _search(services, settings, image_id, owner, None, "answer_lost")
        if not attached:
            return _orphan(services, image_id, prediction.id)
    return [Next(TaskName.FOLLOW_IMAGE, image_id, FIRST_POLL_SECONDS)]


def _take_over(
    services: JobServices, settings: CompareSettings, image_id: int, owner: str
) -> list[Next]:
    """An image another run claimed: nothing to do while its lease is live; after it
    lapsed, this run takes the claim over and looks for the create on Replicate."""
    with services.ops_engine.begin() as conn:
        taken = IMAGE.move(
            conn,
            image_id,
            "take_over",
            where=[is_free(comparison_images)],
            values={**lease_values(owner, settings.lease), "updated_at": func.now()},
        )
    if taken is None:
        return []  # ended, claimed by a live run, or not pending
    log.warning("image %s: its create's lease lapsed; searching Replicate for it", image_id)
    with KeepLease(services.ops_engine, comparison_images, image_id, owner, settings.lease):
        return _search(services, settings, image_id, owner, None, None)


def _search(
    services: JobServices,
    settings: CompareSettings,
    image_id: int,
    owner: str,
    exc: CreateOutcomeUnknown | None,
    event: str | None,
) -> list[Next]:
    """The create was sent but its answer is lost (or its id went to a twin, or its run
    died): find the prediction on Replicate while holding the lease; never send it again.
    ``event`` moves the image to ``lost`` first (None: it is there already)."""
    if event is not None:
        with services.ops_engine.begin() as conn:
            IMAGE.move(
                conn,
                image_id,
                event,
                where=[held_by(comparison_images, owner)],
                values={
                    "error": f"the create's answer was lost: {exc}" if exc else None,
                    "updated_at": func.now(),
                },
            )
    with services.ops_engine.connect() as conn:
        claimed = conn.execute(
            select(comparison_images).where(comparison_images.c.id == image_id)
        ).one()
    for _ in range(3):  # a twin may take a candidate between the search and the attach
        try:
            found = (exc.created_id if exc is not None else None) or _unattached_twin(
                services, claimed
            )
        except ReplicateError as search_failed:
            # A person decides (Replicate's page shows whether it ran): retrying could pay
            # twice.
            log.warning(
                "image %s: searching for its prediction failed: %s", image_id, search_failed
            )
            _fail(
                services,
                settings,
                image_id,
                "not_found",
                "The create's answer was lost and Replicate could not be searched for it "
                f"({search_failed}). Check Replicate's predictions page before retrying.",
                owner=owner,
            )
            return []
        if found is None:
            _fail(
                services,
                settings,
                image_id,
                "not_found",
                "The create's answer was lost and no such prediction is on Replicate, so "
                "nothing was paid for; retry this image.",
                owner=owner,
            )
            return []
        attached = _attach(services, image_id, owner, found, "found")
        if attached:
            return [Next(TaskName.FOLLOW_IMAGE, image_id, FIRST_POLL_SECONDS)]
        if attached is False:
            return []  # the image moved on without this run (its lease was taken over)
        exc = None  # that id is another image's: look again
    _fail(
        services,
        settings,
        image_id,
        "not_found",
        "The create's answer was lost; retry this image.",
        owner=owner,
    )
    return []


def _unattached_twin(services: JobServices, claimed: Any) -> str | None:
    """The newest prediction on Replicate with this image's version, seed and prompt,
    created since its claim, that no comparison image holds yet."""
    candidates = find_lost_predictions(
        services.gateway,
        claimed_at=claimed.claimed_at,
        version_id=claimed.version_id,
        prediction_input=claimed.input,
    )
    if not candidates:
        return None
    with services.ops_engine.connect() as conn:
        held = set(
            conn.execute(
                select(comparison_images.c.prediction_id).where(
                    comparison_images.c.prediction_id.in_(
                        [candidate.id for candidate in candidates]
                    )
                )
            ).scalars()
        )
    return next((candidate.id for candidate in candidates if candidate.id not in held), None)


def _attach(
    services: JobServices, image_id: int, owner: str, prediction_id: str, event: str
) -> bool | None:
    """Give the image its prediction while this run holds the lease: True when it did;
    None when another image holds that id; False when the image moved on without this run
    (its lease was taken over)."""
    try:
        with services.ops_engine.begin() as conn:
            attached = IMAGE.move(
                conn,
                image_id,
                event,
                where=[held_by(comparison_images, owner)],
                values={
                    "prediction_id": prediction_id,
                    "error": None,
                    "updated_at": func.now(),
                    **released(),
                },
            )
    except IntegrityError:
        return None
    if attached is not None:
        return True
    with services.ops_engine.connect() as conn:
        holder = conn.execute(
            select(comparison_images.c.prediction_id).where(comparison_images.c.id == image_id)
        ).scalar_one()
    return bool(holder == prediction_id)


def _orphan(services: JobServices, image_id: int, prediction_id: str) -> list[Next]:
    """This run's create answered after its claim was taken over and the image moved on:
    nobody follows that prediction, so it is cancelled rather than left to run."""
    log.error(
        "image %s: prediction %s answered after its lease was taken over; cancelling it",
        image_id,
        prediction_id,
    )
    try:
        services.gateway.cancel_prediction(prediction_id)
    except ReplicateError as exc:
        log.error("cancelling prediction %s failed: %s", prediction_id, exc)
    return []


def _fail(
    services: JobServices,
    settings: CompareSettings,
    image_id: int,
    event: str,
    reason: str,
    *,
    owner: str | None = None,
    predict_time: float | None = None,
) -> None:
    """End an image with ``event`` and the reason (only while ``owner`` holds it, when
    given), and finish its comparison if that was the last."""
    where = [held_by(comparison_images, owner)] if owner is not None else []
    with services.ops_engine.begin() as conn:
        comparison_id = _lock_comparison_of(conn, image_id)
        IMAGE.move(
            conn,
            image_id,
            event,
            where=where,
            values={
                "error": reason,
                "predict_time": predict_time,
                "updated_at": func.now(),
                **released(),
            },
        )
        _maybe_finish(conn, comparison_id, settings)


def _lock_comparison_of(conn: Connection, image_id: int) -> int:
    """Lock the image's comparison row (always before its images: one order everywhere, so
    an image ending and a cancel or a finish never deadlock); its id."""
    comparison_id = int(
        conn.execute(
            select(comparison_images.c.comparison_id).where(comparison_images.c.id == image_id)
        ).scalar_one()
    )
    conn.execute(
        select(comparisons.c.id).where(comparisons.c.id == comparison_id).with_for_update()
    )
    return comparison_id


# -- follow ------------------------------------------------------------------------------------


def follow(services: JobServices, settings: CompareSettings, image_id: int) -> list[Next]:
    """Poll one image's prediction; keep its image when it succeeds and score it. An image
    already kept but not scored (its run died in between) is handed to ``score``."""
    with services.ops_engine.connect() as conn:
        row = conn.execute(
            select(comparison_images, comparisons.c.status.label("c_status"))
            .join(comparisons, comparisons.c.id == comparison_images.c.comparison_id)
            .where(comparison_images.c.id == image_id)
        ).one_or_none()
    if row is None or row.prediction_id is None:
        return []
    if row.status == "succeeded" and row.scores is None:
        return [Next(TaskName.SCORE_IMAGE, image_id)]
    if row.status not in ("starting", "processing"):
        return []
    try:
        prediction = services.gateway.get_prediction(row.prediction_id)
    except ReplicateError as exc:
        log.warning("image %s: reading prediction %s failed: %s", image_id, row.prediction_id, exc)
        return [Next(TaskName.FOLLOW_IMAGE, image_id, POLL_SECONDS * 2)]
    if not prediction.is_terminal:
        age = datetime.now(UTC) - (row.claimed_at or datetime.now(UTC))
        if row.c_status == "cancelled" or age.total_seconds() > settings.prediction_timeout_seconds:
            try:
                services.gateway.cancel_prediction(prediction.id)
            except ReplicateError as exc:
                log.warning("cancelling prediction %s failed: %s", prediction.id, exc)
            reason = (
                "cancelled with its comparison"
                if row.c_status == "cancelled"
                else f"not finished after {settings.prediction_timeout_seconds:.0f} s: "
                "cancelled on Replicate"
            )
            _fail(services, settings, image_id, "prediction_canceled", reason)
            return []
        with services.ops_engine.begin() as conn:
            IMAGE.move(
                conn,
                image_id,
                "running" if prediction.status == "processing" else "polled",
                values={"updated_at": func.now()},
            )
            _beat(conn, row.comparison_id)
        return [Next(TaskName.FOLLOW_IMAGE, image_id, POLL_SECONDS)]
    if prediction.status != "succeeded":
        reason = prediction.error or f"the prediction ended {prediction.status}"
        event = ENDED_BY_REPLICATE.get(prediction.status, "prediction_failed")
        _fail(services, settings, image_id, event, reason, predict_time=prediction.predict_time)
        return []
    if not prediction.output:
        _fail(
            services,
            settings,
            image_id,
            "prediction_failed",
            "succeeded without an image",
            predict_time=prediction.predict_time,
        )
        return []
    try:
        body = services.gateway.download(prediction.output[0], max_bytes=MAX_IMAGE_BYTES)
        decoded = decode_output(body)
        preview = make_preview(decoded)
    except DashboardError as exc:
        _fail(
            services,
            settings,
            image_id,
            "prediction_failed",
            f"its image could not be read: {exc}",
            predict_time=prediction.predict_time,
        )
        return []
    with services.ops_engine.begin() as conn:
        kept = IMAGE.move(
            conn,
            image_id,
            "image_kept",
            values={
                "output_url": prediction.output[0],
                "preview": preview,
                "predict_time": prediction.predict_time,
                "error": None,
                "updated_at": func.now(),
            },
        )
        _beat(conn, row.comparison_id)
    if kept is None:
        return []  # another run kept it (and scores it)
    # The preview is on the page now; the image is scored from the same decoded copy (one
    # download and one decode per image: scoring is the tail every comparison waits for).
    return _score_decoded(services, settings, image_id, decoded)


def decode_output(body: bytes) -> ZipPhoto:
    """An output image decoded as training photos are (bounded: an output is untrusted
    bytes too); ``DataRejected`` says why it cannot be read."""
    decoded = decode_photo("output", io.BytesIO(body), byte_size=len(body))
    if isinstance(decoded, SkippedMember):
        raise DataRejected(decoded.reason)
    return decoded


def make_preview(decoded: ZipPhoto) -> bytes:
    """A JPEG of at most ``PREVIEW_LONG_SIDE`` px."""
    return jpeg_within(decoded.image, PREVIEW_LONG_SIDE, PREVIEW_QUALITY)


# -- score -------------------------------------------------------------------------------------


def score(services: JobServices, settings: CompareSettings, image_id: int) -> list[Next]:
    """Score an image whose scoring could not run when it was downloaded (the reference was
    still being read), or was retried."""
    with services.ops_engine.connect() as conn:
        row = conn.execute(
            select(comparison_images.c.status, comparison_images.c.output_url).where(
                comparison_images.c.id == image_id
            )
        ).one_or_none()
    if row is None or row.status != "succeeded":
        return []
    try:
        body = services.gateway.download(row.output_url, max_bytes=MAX_IMAGE_BYTES)
        decoded: ZipPhoto | DashboardError = decode_output(body)
    except DashboardError as exc:
        decoded = exc  # outputs are deleted an hour after they end: the preview is scored
    return _score_decoded(services, settings, image_id, decoded)


def _score_decoded(
    services: JobServices,
    settings: CompareSettings,
    image_id: int,
    decoded: ZipPhoto | DashboardError,
) -> list[Next]:
    with services.ops_engine.connect() as conn:
        row = conn.execute(
            select(
                comparison_images.c.comparison_id,
                comparison_images.c.status,
                comparison_images.c.scores,
                comparisons.c.reference,
                comparisons.c.reference_zips,
            )
            .join(comparisons, comparisons.c.id == comparison_images.c.comparison_id)
            .where(comparison_images.c.id == image_id)
        ).one_or_none()
    if row is None or row.status != "succeeded" or row.scores is not None:
        return []
    if row.reference is None:
        return [Next(TaskName.SCORE_IMAGE, image_id, REFERENCE_WAIT_SECONDS)]
    reference, _ = load_reference(services, list(row.reference_zips))
    if isinstance(decoded, DashboardError):
        measured = _score_preview(services, image_id, reference, decoded)
    else:
        measured = score_photo(decoded, services.face_reader(), reference).to_dict()
    with services.ops_engine.begin() as conn:
        _lock_comparison_of(conn, image_id)
        IMAGE.move(
            conn,
            image_id,
            "scored",
            where=[comparison_images.c.scores.is_(None)],
            values={"scores": measured, "updated_at": func.now()},
        )
        _maybe_finish(conn, int(row.comparison_id), settings)
    return []


def _score_preview(
    services: JobServices, image_id: int, reference: Reference | None, exc: Exception
) -> dict[str, Any]:
    with services.ops_engine.connect() as conn:
        preview = conn.execute(
            select(comparison_images.c.preview).where(comparison_images.c.id == image_id)
        ).scalar_one()
    decoded = decode_photo("preview", io.BytesIO(preview), byte_size=len(preview))
    if isinstance(decoded, SkippedMember):
        return {"face_found": False, "sharpness": 0.0, "error": f"{exc}; {decoded.reason}"}
    measured = score_photo(decoded, services.face_reader(), reference).to_dict()
    measured["from_preview"] = True
    return measured


# -- cancel ------------------------------------------------------------------------------------


def cancel(services: JobServices, comparison_id: int) -> list[Next]:
    """Cancel on Replicate what a cancelled comparison still runs. An image whose create is
    claimed but not attached yet is left to the run holding it (or to recovery, which finds
    the prediction): it is cancelled when it is followed, so nothing sent runs on unseen."""
    with services.ops_engine.connect() as conn:
        running = conn.execute(
            select(comparison_images.c.id, comparison_images.c.prediction_id).where(
                comparison_images.c.comparison_id == comparison_id,
                comparison_images.c.status.in_(("starting", "processing")),
            )
        ).all()
    for image_id, prediction_id in running:
        try:
            services.gateway.cancel_prediction(prediction_id)
        except ReplicateError as exc:
            log.warning("cancelling prediction %s failed: %s", prediction_id, exc)
        with services.ops_engine.begin() as conn:
            _lock_comparison_of(conn, image_id)
            IMAGE.move(
                conn,
                image_id,
                "cancel_sent",
                values={"error": "cancelled with its comparison", "updated_at": func.now()},
            )
            release_unspent(conn, comparison_id)
    return []


# -- finish ------------------------------------------------------------------------------------

# Run in the transaction that finishes a comparison, with its id and confirmation token:
# DEMO's reviewers vote there (``core.demo.comparisons`` registers them), so the domain
# needs no knowledge of the demo.
FinishHook = Callable[[Connection, int, str], None]
_FINISH_HOOKS: list[FinishHook] = []


def on_finish(hook: FinishHook) -> FinishHook:
    """Register ``hook`` (once) to run whenever a comparison finishes."""
    if hook not in _FINISH_HOOKS:
        _FINISH_HOOKS.append(hook)
    return hook


def _maybe_finish(conn: Connection, comparison_id: int, settings: CompareSettings) -> None:
    """Finish the comparison when nothing is left to run or score (once: guarded).

    The comparison's row is locked before its images are read: two images scored at the
    same moment each wait for the other's commit in turn, so the second sees both scores
    (read without the lock, each saw the other unscored and neither finished it).
    """
    header = conn.execute(
        select(comparisons).where(comparisons.c.id == comparison_id).with_for_update()
    ).one()
    if header.status != "running":
        if header.status == "cancelled":
            release_unspent(conn, comparison_id)
        return
    images = conn.execute(
        select(comparison_images).where(comparison_images.c.comparison_id == comparison_id)
    ).all()
    if any(
        image.status not in IMAGE_ENDED or (image.status == "succeeded" and image.scores is None)
        for image in images
    ):
        return
    stats, lines = summarise(header.columns, images)
    seconds = sum(image.predict_time or 0.0 for image in images)
    actual = (Decimal(str(settings.price_per_second_usd)) * Decimal(str(seconds))).quantize(
        Decimal("0.0001")
    )
    failed = sum(1 for image in images if image.status != "succeeded")
    finished = COMPARISON.move(
        conn,
        comparison_id,
        "finish",
        values={
            "finished_at": func.now(),
            "stats": stats,
            "verdict": list(lines),
            "actual_usd": actual,
        },
    )
    if finished is None:
        return
    release_unspent(conn, comparison_id)
    pairs = build_pairs(conn, comparison_id)  # blind review gets this comparison's images
    for hook in _FINISH_HOOKS:
        hook(conn, comparison_id, header.confirm_token)
    audit.record(
        conn,
        actor_email=header.requested_by,
        actor_role=header.requested_role,
        action=RUN_ACTION,
        target_user_id=header.user_id,
        details={
            "event": "finished",
            "comparison_id": comparison_id,
            "images": len(images),
            "images_failed": failed,
            "predict_seconds": round(seconds, 1),
            "actual_usd": str(actual),
            "verdict": list(lines),
            "review_pairs": pairs,
        },
    )


def finish_if_done(services: JobServices, settings: CompareSettings, comparison_id: int) -> None:
    """Finish a running comparison whose images all ended and are scored (the job that
    ended its last image died before it could); nothing otherwise."""
    with services.ops_engine.begin() as conn:
        _maybe_finish(conn, comparison_id, settings)


def short_label(column: Mapping[str, Any]) -> str:
    """``A (stored)``, ``C (site, the site's way)``: how the verdict names a column."""
    how = (
        ", the site's way" if column.get("style") == "site" and column.get("name") != "site" else ""
    )
    return f"{column['letter']} ({column['name']}{how})"


def summarise(
    columns: Sequence[Mapping[str, Any]], images: Any
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Per-column statistics and the verdict from the images' scores (pure)."""
    by_letter: dict[str, dict[int, ImageScore]] = {}
    for image in images:
        if image.status == "succeeded" and image.scores is not None:
            by_letter.setdefault(image.letter, {})[image.seed] = ImageScore.from_dict(image.scores)
    letters = [str(column["letter"]) for column in columns]
    names = {str(column["letter"]): short_label(column) for column in columns}
    baseline = by_letter.get(letters[0], {}) if letters else {}
    stats = [
        column_stats(letter, by_letter.get(letter, {}), None if index == 0 else baseline)
        for index, letter in enumerate(letters)
    ]
    floor = noise_floor(baseline, by_letter.get(REPEAT, {}))
    lines = verdict(names, stats, floor)
    repeat = (
        column_stats(REPEAT, by_letter.get(REPEAT, {}), baseline) if REPEAT in by_letter else None
    )
    return ComparisonStats(floor, tuple(stats), repeat).to_json(), lines
