"""A retrain from draft to exactly one training on Replicate.

- ``open_draft``: an admin starts a retrain of a user: the destination and trigger word
  come from the ledger (``core.retrain.plan.retrain_target``), the trainer is pinned.
- ``add_photos``: the previous training's photos and uploads, as given (checked later).
- ``confirm``: the admin's confirmation, in the caller's transaction. Admins only (checked
  here), with a reason; a blocked dataset gate needs an override reason. The retrain
  becomes the user's one ``active`` retrain: the database's partial unique index refuses a
  second however many tabs, admins or workers confirm at once (``Conflict`` names the one
  running). The same confirmation token again returns the same retrain. Audited.
- ``submit``: run by a worker (safe to run twice, or by twenty at once). The ZIP is built
  at full quality and uploaded (no connection held), then the create is claimed in the
  database (``submitting`` -> ``creating``: one winner) before the paid call. When the
  create's answer is lost, or a worker died after claiming it, the trainings list is
  searched for it (same trainer version, the ZIP's unique URL) before anything else: found,
  it is followed; not found, the retrain ends ``lost`` saying nothing was paid. The console
  never sends a training create twice.

The app's row is not touched by any of this: the user keeps generating with the current
version until a promotion writes the new one.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from core import audit
from core.errors import (
    Conflict,
    CreateOutcomeUnknown,
    DashboardError,
    DataRejected,
    NotFound,
    ReplicateError,
)
from core.gateway.gateway import ReplicateGateway
from core.gateway.values import Training
from core.retrain.package import package_photos
from core.retrain.plan import RetrainTarget, TrainingPlan
from core.retrain.tables import retrain_photos, retrains
from core.roles import Actor, Permission, require

log = logging.getLogger(__name__)

SUBMIT_ACTION = "retrain:submit"
# A lost create is looked for among trainings created this long before its claim too
# (the database's clock and Replicate's differ).
CLOCK_SLACK = timedelta(minutes=2)
MAX_PHOTOS = 40
UPLOAD_CLAIM_TIMEOUT = timedelta(minutes=5)
MAX_PHOTO_BYTES = 15 * 1024 * 1024


@dataclass(frozen=True)
class NewPhoto:
    name: str
    source: str  # "previous" or "upload"
    content: bytes


def open_draft(
    conn: Connection,
    actor: Actor,
    user_id: str,
    target: RetrainTarget,
    *,
    trainer: str,
    trainer_version: str,
) -> int:
    """A new draft retrain of ``user_id`` into ``target``; its id."""
    require(actor, Permission.RETRAIN)
    return int(
        conn.execute(
            retrains.insert()
            .values(
                user_id=user_id,
                requested_by=actor.email,
                requested_role=actor.role.value,
                trainer_model=trainer,
                trainer_version=trainer_version,
                destination=target.destination,
                trigger_word=target.trigger_word,
                previous_training_id=target.previous_training_id,
                previous_version=target.current_version,
                previous_zip_url=target.previous_zip_url,
                source_zips=[{"label": label, "url": url} for label, url in target.photo_zips],
            )
            .returning(retrains.c.id)
        ).scalar_one()
    )


def add_photos(conn: Connection, actor: Actor, retrain_id: int, photos: Sequence[NewPhoto]) -> None:
    """Append photos to a draft (at most ``MAX_PHOTOS`` in all, ``MAX_PHOTO_BYTES`` each)."""
    require(actor, Permission.RETRAIN)
    _draft(conn, retrain_id)
    count = int(
        conn.execute(
            select(func.count())
            .select_from(retrain_photos)
            .where(retrain_photos.c.retrain_id == retrain_id)
        ).scalar_one()
    )
    if count + len(photos) > MAX_PHOTOS:
        raise DataRejected(
            f"A retrain takes at most {MAX_PHOTOS} photos; this one has {count} and "
            f"{len(photos)} more were added."
        )
    for photo in photos:
        if len(photo.content) > MAX_PHOTO_BYTES:
            raise DataRejected(
                f"{photo.name} is {len(photo.content) / 2**20:.1f} MB; photos may be at most "
                f"{MAX_PHOTO_BYTES // 2**20} MB each."
            )
    taken = set(
        conn.execute(
            select(retrain_photos.c.name).where(retrain_photos.c.retrain_id == retrain_id)
        ).scalars()
    )
    photos = [replace(photo, name=_unique(photo.name, taken)) for photo in photos]
    if photos:
        conn.execute(
            pg_insert(retrain_photos).values(
                [
                    {
                        "retrain_id": retrain_id,
                        "position": count + index,
                        "name": photo.name,
                        "source": photo.source,
                        "content": photo.content,
                    }
                    for index, photo in enumerate(photos)
                ]
            )
        )


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)``… when the draft has it already (checks name photos)."""
    clean = (name or "photo").strip()[:200] or "photo"
    chosen, number = clean, 1
    while chosen in taken:
        number += 1
        chosen = f"{clean} ({number})"
    taken.add(chosen)
    return chosen


def keep_photo(conn: Connection, actor: Actor, retrain_id: int, position: int, kept: bool) -> None:
    """Keep or drop one photo of a draft."""
    require(actor, Permission.RETRAIN)
    _draft(conn, retrain_id)
    conn.execute(
        update(retrain_photos)
        .where(retrain_photos.c.retrain_id == retrain_id, retrain_photos.c.position == position)
        .values(kept=kept)
    )


def discard_draft(conn: Connection, actor: Actor, retrain_id: int) -> None:
    """Throw a draft away (its photos with it); submitted retrains are kept forever."""
    require(actor, Permission.RETRAIN)
    _draft(conn, retrain_id)
    conn.execute(retrains.delete().where(retrains.c.id == retrain_id))


def _draft(conn: Connection, retrain_id: int) -> Any:
    row = conn.execute(
        select(retrains).where(retrains.c.id == retrain_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound(f"No retrain #{retrain_id}.")
    if row.status != "draft":
        raise Conflict(f"Retrain #{retrain_id} was already submitted ({row.status}).")
    return row


def confirm(
    conn: Connection,
    actor: Actor,
    retrain_id: int,
    plan: TrainingPlan,
    *,
    confirm_token: str,
    reason: str,
    gate: Mapping[str, Any],
    override_reason: str | None = None,
) -> int:
    """Make the draft the user's active retrain, to be submitted by a worker (the caller
    queues it after commit); the retrain's id. Once per token."""
    require(actor, Permission.RETRAIN)
    token = confirm_token.strip()
    if not token:
        raise DataRejected("A confirmation needs its token.")
    done = conn.execute(
        select(retrains.c.id).where(retrains.c.confirm_token == token)
    ).scalar_one_or_none()
    if done is not None:
        return int(done)
    if not reason.strip():
        raise DataRejected("Say why this user is retrained (it is kept in the audit log).")
    blocks = list(gate.get("blocks") or [])
    if blocks and not (override_reason and override_reason.strip()):
        raise DataRejected(
            "The dataset gate blocks this retrain: " + " ".join(blocks) + " An admin may "
            "submit anyway with a reason for the override."
        )
    row = _draft(conn, retrain_id)
    kept = int(
        conn.execute(
            select(func.count())
            .select_from(retrain_photos)
            .where(retrain_photos.c.retrain_id == retrain_id, retrain_photos.c.kept)
        ).scalar_one()
    )
    if kept != plan.image_count:
        raise Conflict(
            f"The plan is for {plan.image_count} photos but {kept} are kept: check again."
        )
    try:
        with conn.begin_nested():
            conn.execute(
                update(retrains)
                .where(retrains.c.id == retrain_id)
                .values(
                    status="submitting",
                    active=True,
                    confirm_token=token,
                    reason=reason.strip(),
                    requested_by=actor.email,
                    requested_role=actor.role.value,
                    training_input=dict(plan.training_input),
                    ignored_inputs=list(plan.ignored),
                    gate=dict(gate),
                    override_reason=override_reason.strip() if blocks and override_reason else None,
                    heartbeat_at=func.now(),
                )
            )
    except IntegrityError as exc:
        running = conn.execute(
            select(retrains.c.id, retrains.c.status, retrains.c.requested_by).where(
                retrains.c.user_id == row.user_id, retrains.c.active
            )
        ).one_or_none()
        if running is None:
            raise
        raise Conflict(
            f"Retrain #{running.id} of this user ({running.status}, by {running.requested_by}) "
            "is still in flight: one retrain per user at a time."
        ) from exc
    audit.record(
        conn,
        actor_email=actor.email,
        actor_role=actor.role,
        action=SUBMIT_ACTION,
        target_user_id=row.user_id,
        reason=reason.strip(),
        details={
            "event": "confirmed",
            "retrain_id": retrain_id,
            "photos": plan.image_count,
            "destination": plan.destination,
            "trigger_word": plan.trigger_word,
            "trainer": f"{plan.trainer}:{plan.trainer_version}",
            "ignored_inputs": list(plan.ignored),
            "gate_blocks": blocks,
            "override_reason": override_reason if blocks else None,
        },
    )
    return retrain_id


# -- the worker's part -----------------------------------------------------------------------


def submit(engine: Engine, gateway: ReplicateGateway, retrain_id: int) -> str:
    """Upload the ZIP (once) and create the training (once); the retrain's status after.

    Safe to run any number of times at once: only the run that claims ``submitting`` ->
    ``creating`` sends the create; a run that finds ``creating`` without a training looks
    for it on Replicate (a worker died, or the answer was lost) and never sends it again.
    """
    with engine.connect() as conn:
        row = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one_or_none()
    if row is None:
        raise NotFound(f"No retrain #{retrain_id}.")
    if row.status == "creating" and row.training_id is None:
        return _find_lost(engine, gateway, retrain_id, None)
    if row.status != "submitting":
        return str(row.status)  # submitted already, or ended
    if row.zip_url is None:
        if not _claim_upload(engine, retrain_id):
            return "submitting"  # another run is building and uploading the ZIP
        try:
            _upload(engine, gateway, row)
        except DashboardError as exc:
            return _end(
                engine,
                retrain_id,
                "failed",
                f"The ZIP could not be built or uploaded ({exc}); no training was started.",
            )
    with engine.begin() as conn:
        claimed = conn.execute(
            update(retrains)
            .where(
                retrains.c.id == retrain_id,
                retrains.c.status == "submitting",
                retrains.c.zip_url.is_not(None),
            )
            .values(status="creating", claimed_at=func.now(), heartbeat_at=func.now())
            .returning(retrains)
        ).one_or_none()
    if claimed is None:
        with engine.connect() as conn:
            return str(
                conn.execute(
                    select(retrains.c.status).where(retrains.c.id == retrain_id)
                ).scalar_one()
            )
    training_input = {**claimed.training_input, "input_images": claimed.zip_url}
    try:
        training = gateway.create_training(
            claimed.trainer_model, claimed.trainer_version, claimed.destination, training_input
        )
    except CreateOutcomeUnknown as exc:
        return _find_lost(engine, gateway, retrain_id, exc)
    except ReplicateError as exc:
        return _end(engine, retrain_id, "failed", f"Replicate refused the training: {exc}")
    return _attach(engine, retrain_id, training, found_by_listing=False)


def _claim_upload(engine: Engine, retrain_id: int) -> bool:
    """Whether this run builds and uploads the ZIP: one run at a time (a run that died
    is taken over after ``UPLOAD_CLAIM_TIMEOUT``). Re-encoding 40 photos and uploading them
    is the slow part of a submit; racing runs need not all do it."""
    with engine.begin() as conn:
        return (
            conn.execute(
                update(retrains)
                .where(
                    retrains.c.id == retrain_id,
                    retrains.c.status == "submitting",
                    retrains.c.zip_url.is_(None),
                    retrains.c.upload_claimed_at.is_(None)
                    | (retrains.c.upload_claimed_at < func.now() - UPLOAD_CLAIM_TIMEOUT),
                )
                .values(upload_claimed_at=func.now(), heartbeat_at=func.now())
                .returning(retrains.c.id)
            ).one_or_none()
            is not None
        )


def _upload(engine: Engine, gateway: ReplicateGateway, row: Any) -> None:
    with engine.connect() as conn:
        photos = conn.execute(
            select(retrain_photos.c.name, retrain_photos.c.content)
            .where(retrain_photos.c.retrain_id == row.id, retrain_photos.c.kept)
            .order_by(retrain_photos.c.position)
        ).all()
    packaged = package_photos([(photo.name, bytes(photo.content)) for photo in photos])
    uploaded = gateway.upload_file(
        packaged.content,
        filename=f"retrain-{row.id}-{packaged.sha256[:12]}.zip",
        content_type="application/zip",
        metadata={"retrain_id": row.id, "user_id": row.user_id, "sha256": packaged.sha256},
    )
    with engine.begin() as conn:
        # Two runs may both upload; the first URL written is the one trained on (the other
        # file is an unused upload, not a second training).
        conn.execute(
            update(retrains)
            .where(retrains.c.id == row.id, retrains.c.zip_url.is_(None))
            .values(
                zip_url=uploaded.url,
                zip_sha256=hashlib.sha256(packaged.content).hexdigest(),
                zip_bytes=packaged.size,
                heartbeat_at=func.now(),
            )
        )


def _attach(engine: Engine, retrain_id: int, training: Training, *, found_by_listing: bool) -> str:
    # An ended training is still "processing" here: following it (core.retrain.follow)
    # reads its outcome, verifies the new version and records it, in one place.
    status = training.status if training.status in ("starting", "processing") else "processing"
    with engine.begin() as conn:
        row = conn.execute(
            update(retrains)
            .where(retrains.c.id == retrain_id, retrains.c.training_id.is_(None))
            .values(
                training_id=training.id,
                status=status,
                submitted_at=func.now(),
                heartbeat_at=func.now(),
                error=None,
            )
            .returning(retrains.c.user_id, retrains.c.requested_by, retrains.c.requested_role)
        ).one_or_none()
        if row is None:
            return "creating"
        audit.record(
            conn,
            actor_email=row.requested_by,
            actor_role=row.requested_role,
            action=SUBMIT_ACTION,
            target_user_id=row.user_id,
            details={
                "event": "submitted",
                "retrain_id": retrain_id,
                "training_id": training.id,
                "found_by_listing": found_by_listing,
            },
        )
    return status


def _find_lost(
    engine: Engine, gateway: ReplicateGateway, retrain_id: int, exc: CreateOutcomeUnknown | None
) -> str:
    """The create may have happened: look for it on Replicate; never send it again."""
    with engine.connect() as conn:
        row = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one()
    if exc is not None and exc.created_id:
        return _attach(
            engine, retrain_id, gateway.get_training(exc.created_id), found_by_listing=False
        )
    since = (row.claimed_at or row.requested_at) - CLOCK_SLACK
    try:
        candidates = gateway.list_trainings(created_after=since)
    except ReplicateError as search_failed:
        with engine.begin() as conn:
            conn.execute(
                update(retrains)
                .where(retrains.c.id == retrain_id)
                .values(
                    error="The training create's answer was lost and Replicate could not be "
                    f"searched for it ({search_failed}); it is searched again, never resent."
                )
            )
        raise
    found = next(
        (
            training
            for training in candidates
            if training.trainer_version == row.trainer_version
            and training.input.get("input_images") == row.zip_url
        ),
        None,
    )
    if found is not None:
        return _attach(engine, retrain_id, found, found_by_listing=True)
    return _end(
        engine,
        retrain_id,
        "lost",
        "The training create's answer was lost and Replicate lists no training of this ZIP, "
        "so none was started and nothing was paid. Submit the retrain again.",
    )


def _end(engine: Engine, retrain_id: int, status: str, reason: str) -> str:
    """End a retrain that never got a training (only then: another run may have one)."""
    with engine.begin() as conn:
        row = conn.execute(
            update(retrains)
            .where(
                retrains.c.id == retrain_id,
                retrains.c.status.in_(("submitting", "creating")),
                retrains.c.training_id.is_(None),
            )
            .values(status=status, active=False, error=reason, finished_at=func.now())
            .returning(retrains.c.user_id, retrains.c.requested_by, retrains.c.requested_role)
        ).one_or_none()
        if row is None:
            return str(
                conn.execute(
                    select(retrains.c.status).where(retrains.c.id == retrain_id)
                ).scalar_one()
            )
        audit.record(
            conn,
            actor_email=row.requested_by,
            actor_role=row.requested_role,
            action=SUBMIT_ACTION,
            target_user_id=row.user_id,
            details={"event": status, "retrain_id": retrain_id, "error": reason},
        )
    return status
