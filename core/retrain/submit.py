"""A retrain from draft to exactly one training on Replicate.

- ``open_draft``: an admin starts a retrain of a user: the destination and trigger word
  come from the ledger (``core.retrain.plan.retrain_target``), the trainer is pinned, and
  the trainer's input schema is read once; all of it is stored on the draft, and every
  later step computes from what is stored.
- ``add_photos``: the previous training's photos and uploads, as given (checked later).
- ``confirm``: the admin's confirmation, in the caller's transaction. Admins only (checked
  here), with a reason. The core decides: the dataset gate is computed again from the
  draft's stored photo facts and the plan from its stored target (a blocked gate needs an
  override reason; unchecked photos are refused), and what the confirmation fixes is
  stored. The retrain becomes the user's one ``active`` retrain: the database's partial
  unique index refuses a second however many tabs, admins or workers confirm at once
  (``Conflict`` names the one running). The same confirmation token again returns the same
  retrain. Audited.
- ``submit``: run by a worker (safe to run twice, or by twenty at once). The ZIP is built
  at full quality and uploaded under a lease, then the create is claimed under a lease
  (``submitting`` -> ``creating``: one winner) before the paid call; the run checks that
  what it would send is what was confirmed. While the lease is live nobody else touches
  the create, however long Replicate takes. When the answer is lost, or the lease lapsed
  (its worker died), the trainings list is searched for it (same trainer version, the
  ZIP's unique URL) before anything else: found, it is followed; not found, the retrain
  ends ``lost`` saying nothing was paid. The console never sends a training create twice.

Every status change is a transition of ``core.retrain.states.RETRAIN`` (compare-and-set).
The app's row is not touched by any of this: the user keeps generating with the current
version until a promotion writes the new one.

Why one long module: the claimed submit is one state machine (draft, confirmation, claim,
upload, the one create, recovery after a lost answer) whose crash reasoning only holds when
its steps are read together.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, func, or_, select, update
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
from core.gateway.lost import find_lost_training
from core.gateway.values import Training
from core.leases import KeepLease, held_by, is_free, lease_values, new_owner, released
from core.redaction import storable, stored_url
from core.retrain.checks import GateResult
from core.retrain.draft import draft_gate
from core.retrain.package import package_photos
from core.retrain.plan import (
    MAX_PHOTO_BYTES,
    MAX_PHOTOS,
    RetrainTarget,
    confirmed_target,
    plan_of_draft,
)
from core.retrain.states import RETRAIN
from core.retrain.tables import retrain_photos, retrains
from core.roles import Actor, Permission, require

log = logging.getLogger(__name__)

SUBMIT_ACTION = "retrain:submit"
# How long a claim on the upload or the create outlives a run that stopped renewing it
# (the workers pass RECOVERY_SECONDS).
DEFAULT_LEASE = timedelta(seconds=60)


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
    trainer_schema: dict[str, Any] | None,
) -> int:
    """A new draft retrain of ``user_id`` into ``target``, with the trainer's input schema
    as read now (None: none given or unreadable); its id."""
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
                trainer_schema=trainer_schema,
                destination=target.destination,
                trigger_word=target.trigger_word,
                previous_training_id=target.previous_training_id,
                previous_version=target.current_version,
                # Kept without secrets: a draft asks each ZIP's source for its full URL.
                previous_zip_url=storable(target.previous_zip_url),
                source_zips=[
                    {"label": label, "url": stored_url(url)} for label, url in target.photo_zips
                ],
                heartbeat_at=func.now(),
            )
            .returning(retrains.c.id)
        ).scalar_one()
    )


def add_photos(
    conn: Connection,
    actor: Actor,
    retrain_id: int,
    photos: Sequence[NewPhoto],
    *,
    on_each: Callable[[int, NewPhoto], None] | None = None,
) -> None:
    """Append photos to a draft (at most ``MAX_PHOTOS`` in all, ``MAX_PHOTO_BYTES`` each),
    all or none (the caller's transaction). ``on_each(done, photo)`` after each one is
    written, for a page to show how far it is."""
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
    for index, photo in enumerate(photos):
        conn.execute(
            pg_insert(retrain_photos).values(
                retrain_id=retrain_id,
                position=count + index,
                name=photo.name,
                source=photo.source,
                content=photo.content,
            )
        )
        if on_each is not None:
            on_each(index + 1, photo)


def upload_label(name: str | None) -> str:
    """An uploaded file's name as the draft keeps it: control characters (a NUL the
    database cannot store, a newline) dropped, at most 200 characters, "photo" when
    nothing is left. Only a label: the photo is judged by its bytes."""
    printable = "".join(ch for ch in (name or "") if ch >= " " and ch != "\x7f")
    return printable.strip()[:200].strip() or "photo"


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)``… when the draft has it already (checks name photos)."""
    clean = upload_label(name)
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


def gate_json(result: GateResult) -> dict[str, Any]:
    """The dataset gate as stored on a confirmed retrain."""
    return {
        "passed": result.passed,
        "blocks": list(result.blocks),
        "warnings": list(result.warnings),
        "figures": result.figures,
    }


def confirm(
    conn: Connection,
    actor: Actor,
    retrain_id: int,
    *,
    confirm_token: str,
    reason: str,
    override_reason: str | None = None,
) -> int:
    """Make the draft the user's active retrain, to be submitted by a worker (the caller
    queues it after commit); the retrain's id. Once per token.

    The gate and the plan are computed here from what the draft stores (its photos' facts,
    its target, its trainer's schema), never taken from the caller: ``DataRejected`` while
    a photo is not checked, when no photo is kept, or when the gate blocks and no override
    reason is given."""
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
    row = _draft(conn, retrain_id)
    counts = conn.execute(
        select(
            func.count().filter(retrain_photos.c.facts.is_(None)).label("unchecked"),
            func.count().filter(retrain_photos.c.kept).label("kept"),
        ).where(retrain_photos.c.retrain_id == retrain_id)
    ).one()
    if counts.unchecked:
        raise DataRejected(
            f"{counts.unchecked} photos of retrain #{retrain_id} are not checked yet: wait for "
            "the checks, then confirm."
        )
    if not counts.kept:
        raise DataRejected(f"Retrain #{retrain_id} keeps no photo: there is nothing to train.")
    dataset_gate = draft_gate(conn, retrain_id)
    blocks = list(dataset_gate.blocks)
    override = (override_reason or "").strip() or None
    if blocks and override is None:
        raise DataRejected(
            "The dataset gate blocks this retrain: " + " ".join(blocks) + " An admin may "
            "submit anyway with a reason for the override."
        )
    plan = plan_of_draft(row, int(counts.kept))
    try:
        with conn.begin_nested():
            RETRAIN.move(
                conn,
                retrain_id,
                "confirm",
                values={
                    "active": True,
                    "confirm_token": token,
                    "reason": reason.strip(),
                    "requested_by": actor.email,
                    "requested_role": actor.role.value,
                    "training_input": dict(plan.training_input),
                    "ignored_inputs": list(plan.ignored),
                    "gate": gate_json(dataset_gate),
                    "override_reason": override if blocks else None,
                    "confirmed": confirmed_target(plan),
                    "heartbeat_at": func.now(),
                },
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
            "override_reason": override if blocks else None,
        },
    )
    return retrain_id


# -- the worker's part -----------------------------------------------------------------------


def submit(
    engine: Engine,
    gateway: ReplicateGateway,
    retrain_id: int,
    *,
    lease: timedelta = DEFAULT_LEASE,
    on_claimed: Callable[[], None] | None = None,
) -> str:
    """Upload the ZIP (once) and create the training (once); the retrain's status after.

    Safe to run any number of times at once: only the run that claims ``submitting`` ->
    ``creating`` sends the create, and it holds a lease while it does. A run that finds
    ``creating`` leaves it alone while the lease is live; once the lease lapsed it takes it
    over and looks for the create on Replicate, never sending it again. ``on_claimed`` is
    called between the claim and the create (tests use it to stop a run right there).
    """
    owner = new_owner()
    row = _read(engine, retrain_id)
    if row.status == "creating":
        return _take_over(engine, gateway, retrain_id, owner, lease)
    if row.status != "submitting":
        return str(row.status)  # submitted already, or ended
    if row.zip_url is None:
        with engine.begin() as conn:
            claimed = RETRAIN.move(
                conn,
                retrain_id,
                "claim_upload",
                where=[retrains.c.zip_url.is_(None), is_free(retrains)],
                values={**lease_values(owner, lease), "heartbeat_at": func.now()},
            )
        if claimed is None:
            return str(_read(engine, retrain_id).status)  # another run builds and uploads it
        with KeepLease(engine, retrains, retrain_id, owner, lease):
            try:
                _upload(engine, gateway, claimed, owner)
            except DashboardError as exc:
                return _end(
                    engine,
                    retrain_id,
                    "upload_failed",
                    f"The ZIP could not be built or uploaded ({exc}); no training was started.",
                    owner=owner,
                )
    with engine.begin() as conn:
        claimed = RETRAIN.move(
            conn,
            retrain_id,
            "claim_create",
            where=[
                retrains.c.zip_url.is_not(None),
                or_(is_free(retrains), held_by(retrains, owner)),
            ],
            values={
                **lease_values(owner, lease),
                "claimed_at": func.now(),
                "heartbeat_at": func.now(),
            },
        )
    if claimed is None:
        return str(_read(engine, retrain_id).status)
    problem = differs_from_confirmed(claimed)
    if problem is not None:
        return _end(engine, retrain_id, "not_sent", problem, owner=owner)
    if on_claimed is not None:
        on_claimed()
    with KeepLease(engine, retrains, retrain_id, owner, lease):
        try:
            training = gateway.create_training(
                claimed.trainer_model,
                claimed.trainer_version,
                claimed.destination,
                {**claimed.training_input, "input_images": claimed.zip_url},
            )
        except CreateOutcomeUnknown as exc:
            return _search(engine, gateway, retrain_id, owner, exc.created_id)
        except ReplicateError as exc:
            return _end(
                engine,
                retrain_id,
                "refused",
                f"Replicate refused the training: {exc}",
                owner=owner,
            )
        return _attach(engine, gateway, retrain_id, owner, training, found_by_listing=False)


def differs_from_confirmed(row: Any) -> str | None:
    """Why what ``row`` would send is not what the admin confirmed, or None (pure)."""
    confirmed = row.confirmed or {}
    sending = {
        "destination": row.destination,
        "trigger_word": (row.training_input or {}).get("trigger_word"),
        "trainer_model": row.trainer_model,
        "trainer_version": row.trainer_version,
    }
    wrong = [
        f"{name} {value!r} (confirmed: {confirmed.get(name)!r})"
        for name, value in sending.items()
        if confirmed.get(name) != value
    ]
    if not wrong:
        return None
    return (
        "Refused to send the training: what it would send is not what was confirmed: "
        + "; ".join(wrong)
        + ". Nothing was sent or paid; start a new retrain."
    )


def _read(engine: Engine, retrain_id: int) -> Any:
    with engine.connect() as conn:
        row = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one_or_none()
    if row is None:
        raise NotFound(f"No retrain #{retrain_id}.")
    return row


def _upload(engine: Engine, gateway: ReplicateGateway, row: Any, owner: str) -> None:
    with engine.connect() as conn:
        photos = conn.execute(
            select(retrain_photos.c.name, retrain_photos.c.content)
            .where(retrain_photos.c.retrain_id == row.id, retrain_photos.c.kept)
            .order_by(retrain_photos.c.position)
        ).all()
    confirmed_photos = (row.confirmed or {}).get("photos")
    if confirmed_photos is not None and len(photos) != confirmed_photos:
        raise DataRejected(
            f"{len(photos)} photos are kept but {confirmed_photos} were confirmed; nothing "
            "was sent."
        )
    packaged = package_photos([(photo.name, bytes(photo.content)) for photo in photos])
    uploaded = gateway.upload_file(
        packaged.content,
        filename=f"retrain-{row.id}-{packaged.sha256[:12]}.zip",
        content_type="application/zip",
        metadata={"retrain_id": row.id, "user_id": row.user_id, "sha256": packaged.sha256},
    )
    with engine.begin() as conn:
        # Only while this run still holds the upload: a run that took it over after a long
        # outage uploads its own (an unused upload is not a second training).
        RETRAIN.move(
            conn,
            row.id,
            "uploaded",
            where=[held_by(retrains, owner), retrains.c.zip_url.is_(None)],
            values={
                "zip_url": uploaded.url,
                "zip_sha256": hashlib.sha256(packaged.content).hexdigest(),
                "zip_bytes": packaged.size,
                "heartbeat_at": func.now(),
            },
        )


def _take_over(
    engine: Engine, gateway: ReplicateGateway, retrain_id: int, owner: str, lease: timedelta
) -> str:
    """A retrain found ``creating``: left alone while its lease is live; else taken over
    and its create searched for."""
    with engine.begin() as conn:
        taken = RETRAIN.move(
            conn,
            retrain_id,
            "take_over",
            where=[is_free(retrains), retrains.c.training_id.is_(None)],
            values={**lease_values(owner, lease), "heartbeat_at": func.now()},
        )
    if taken is None:
        return "creating"  # its run is alive (or it moved on meanwhile)
    log.warning("retrain %s: its create's lease lapsed; searching Replicate for it", retrain_id)
    with KeepLease(engine, retrains, retrain_id, owner, lease):
        return _search(engine, gateway, retrain_id, owner, None)


def _search(
    engine: Engine,
    gateway: ReplicateGateway,
    retrain_id: int,
    owner: str,
    created_id: str | None,
) -> str:
    """The create may have happened: look for it on Replicate (this run holds the lease);
    attach it or end the retrain ``lost``, never both, never resend."""
    row = _read(engine, retrain_id)
    try:
        if created_id:
            found: Training | None = gateway.get_training(created_id)
        else:
            found = find_lost_training(
                gateway,
                claimed_at=row.claimed_at or row.requested_at,
                trainer_version=row.trainer_version,
                zip_url=row.zip_url,
            )
    except ReplicateError as search_failed:
        with engine.begin() as conn:
            # Let the next run take over at once: it searches again, it never resends.
            RETRAIN.move(
                conn,
                retrain_id,
                "take_over",
                where=[held_by(retrains, owner)],
                values={
                    "lease_expires_at": func.now(),
                    "error": "The training create's answer was lost and Replicate could not "
                    f"be searched for it ({search_failed}); it is searched again, never "
                    "resent.",
                },
            )
        raise
    if found is not None:
        return _attach(engine, gateway, retrain_id, owner, found, found_by_listing=True)
    return _end(
        engine,
        retrain_id,
        "not_found",
        "The training create's answer was lost and Replicate lists no training of this ZIP, "
        "so none was started and nothing was paid. Submit the retrain again.",
        owner=owner,
    )


def _attach(
    engine: Engine,
    gateway: ReplicateGateway,
    retrain_id: int,
    owner: str,
    training: Training,
    *,
    found_by_listing: bool,
) -> str:
    """Give the retrain its training, while this run holds the lease. An ended training is
    still ``starting`` here: following it (core.retrain.follow) reads its outcome in one
    place."""
    with engine.begin() as conn:
        row = RETRAIN.move(
            conn,
            retrain_id,
            "found" if found_by_listing else "created",
            where=[held_by(retrains, owner), retrains.c.training_id.is_(None)],
            values={
                "training_id": training.id,
                "submitted_at": func.now(),
                "heartbeat_at": func.now(),
                "error": None,
                **released(),
            },
        )
        if row is not None:
            _record(
                conn,
                row,
                event="submitted",
                training_id=training.id,
                found_by_listing=found_by_listing,
            )
            return str(row.status)
    current = _read(engine, retrain_id)
    if current.training_id == training.id:
        return str(current.status)
    return _orphan(engine, gateway, current, training)


def _orphan(engine: Engine, gateway: ReplicateGateway, current: Any, training: Training) -> str:
    """This run's create answered after its lease was taken over and the retrain moved on
    (a database outage longer than the lease): nobody would follow that training, so it is
    cancelled on Replicate, and the audit log says so."""
    log.error(
        "retrain %s: training %s answered after its lease was taken over (%s); cancelling it",
        current.id,
        training.id,
        current.status,
    )
    try:
        gateway.cancel_training(training.id)
        cancelled = True
    except ReplicateError as exc:
        log.error("retrain %s: cancelling training %s failed: %s", current.id, training.id, exc)
        cancelled = False
    with engine.begin() as conn:
        _record(
            conn,
            current,
            event="orphan_cancelled" if cancelled else "orphan",
            training_id=training.id,
            retrain_status=current.status,
        )
    return str(current.status)


def _end(engine: Engine, retrain_id: int, event: str, reason: str, *, owner: str | None) -> str:
    """End a retrain that never got a training (only while ``owner`` holds it)."""
    where: list[ColumnElement[bool]] = [retrains.c.training_id.is_(None)]
    if owner is not None:
        where.append(held_by(retrains, owner))
    with engine.begin() as conn:
        row = RETRAIN.move(
            conn,
            retrain_id,
            event,
            where=where,
            values={"active": False, "error": reason, "finished_at": func.now(), **released()},
        )
        if row is None:
            current: str = conn.execute(
                select(retrains.c.status).where(retrains.c.id == retrain_id)
            ).scalar_one()
            return current
        _record(conn, row, event=row.status, error=reason)
    return str(row.status)


def _record(conn: Connection, row: Any, *, event: str, **details: Any) -> None:
    """A ``retrain:submit`` record in the name of the admin who confirmed ``row``."""
    audit.record(
        conn,
        actor_email=row.requested_by,
        actor_role=row.requested_role,
        action=SUBMIT_ACTION,
        target_user_id=row.user_id,
        details={"event": event, "retrain_id": row.id, **details},
    )
