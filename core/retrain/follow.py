"""Following a submitted retrain's training until it ends (a job: it keeps polling after
the tab closes, and the page shows the row's live state on any later visit).

Each poll records Replicate's status and the last ``step N/M`` of the logs. When the
training ends:
- succeeded: the new version's bare 64-hex hash (only ever in ``output.version``) and
  ``output.weights`` are recorded, and the hash is checked to be the destination model's
  latest version (a later training into the same model would make it stale at once).
  The retrain stays the user's active one until an admin promotes or keeps it.
- failed, canceled or aborted: the reason is recorded and the user is free for another
  retrain. The app's row is not touched: it was never touched at submit either.
"""

from __future__ import annotations

import logging
import re
import statistics
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from core import audit
from core.errors import Conflict, NotFound, ReplicateError
from core.gateway.gateway import ReplicateGateway
from core.gateway.values import Training
from core.leases import is_free, released
from core.ledger.tables import trainings
from core.retrain.states import ENDED_BY_REPLICATE, RETRAIN
from core.retrain.tables import retrain_photos, retrains
from core.roles import Actor, Permission, require

log = logging.getLogger(__name__)

FINISH_ACTION = "retrain:finish"
CANCEL_ACTION = "retrain:cancel"
POLL_SECONDS = 5.0
ERROR_POLL_SECONDS = 15.0
_STEP = re.compile(r"step (\d+)/(\d+)")


@dataclass(frozen=True)
class Progress:
    step: int
    steps: int


def progress_of(logs: str | None) -> Progress | None:
    """The last ``step N/M`` the trainer printed (None before the first)."""
    found = _STEP.findall(logs or "")
    if not found:
        return None
    step, steps = found[-1]
    return Progress(int(step), int(steps))


def recent_durations(conn: Connection, trainer_version: str, *, sample: int = 50) -> list[float]:
    """How long the account's last ``sample`` succeeded trainings on this trainer version
    took, in seconds, newest first (from the training history; empty: none known)."""
    took = func.extract("epoch", trainings.c.completed_at - trainings.c.created_at)
    return [
        float(value)
        for value in conn.execute(
            select(took)
            .where(
                trainings.c.trainer_version == trainer_version,
                trainings.c.status == "succeeded",
                trainings.c.completed_at.is_not(None),
                trainings.c.created_at.is_not(None),
            )
            .order_by(trainings.c.created_at.desc())
            .limit(sample)
        ).scalars()
        if value is not None and value >= 0
    ]


def expected_seconds(conn: Connection, trainer_version: str, *, sample: int = 50) -> float | None:
    """How long a training on this trainer version usually takes: the median of the
    account's last ``sample`` succeeded ones in the training history (None: none known)."""
    durations = recent_durations(conn, trainer_version, sample=sample)
    return statistics.median(durations) if durations else None


def follow(engine: Engine, gateway: ReplicateGateway, retrain_id: int) -> float | None:
    """Poll the retrain's training once; seconds until the next poll, None when it ended
    (or there is nothing to follow)."""
    with engine.connect() as conn:
        row = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one_or_none()
    if row is None or row.training_id is None or row.status not in ("starting", "processing"):
        return None
    try:
        training = gateway.get_training(row.training_id)
    except ReplicateError as exc:
        log.warning("retrain %s: reading training %s failed: %s", retrain_id, row.training_id, exc)
        return ERROR_POLL_SECONDS
    progress = progress_of(training.logs)
    if not training.is_terminal:
        with engine.begin() as conn:
            RETRAIN.move(
                conn,
                retrain_id,
                "running" if training.status == "processing" else "polled",
                values={
                    "step": progress.step if progress else row.step,
                    "steps": progress.steps if progress else row.steps,
                    "heartbeat_at": func.now(),
                },
            )
        return POLL_SECONDS
    _finish(engine, gateway, row, training, progress)
    return None


def _finish(
    engine: Engine,
    gateway: ReplicateGateway,
    row: Any,
    training: Training,
    progress: Progress | None,
) -> None:
    values: dict[str, object] = {"finished_at": func.now(), "heartbeat_at": func.now()}
    if progress is not None:
        values.update(step=progress.step, steps=progress.steps)
    event = ENDED_BY_REPLICATE.get(training.status, "training_failed")
    if training.status == "succeeded":
        version, problem = _new_version(gateway, training, row.destination)
        values.update(new_version=version, new_weights=training.output_weights, error=problem)
        if version is None:
            values.update(active=False)  # nothing to promote
    else:
        values.update(
            active=False,
            error=training.error or f"The training ended {training.status} on Replicate.",
        )
    with engine.begin() as conn:
        ended = RETRAIN.move(conn, row.id, event, values=values)
        if ended is None:
            return  # another poll finished it
        audit.record(
            conn,
            actor_email=ended.requested_by,
            actor_role=ended.requested_role,
            action=FINISH_ACTION,
            target_user_id=ended.user_id,
            details={
                "retrain_id": row.id,
                "training_id": training.id,
                "status": training.status,
                "new_version": ended.new_version,
                "error": ended.error,
            },
        )


def _new_version(
    gateway: ReplicateGateway, training: Training, destination: str
) -> tuple[str | None, str | None]:
    """The new version's bare hash, and what is wrong with it if anything. The model is
    the retrain's own destination: ``output.version`` may name none (a bare hash)."""
    version = training.version_hash
    if version is None:
        return None, (
            "The training succeeded without a version in output.version "
            f"({training.output_version!r}): there is nothing to promote."
        )
    if training.destination is not None and training.destination != destination:
        return None, (
            f"The training's new version went to {training.destination}, not to "
            f"{destination}: it is not promoted."
        )
    try:
        model = gateway.get_model(destination)
    except ReplicateError as exc:
        return version, f"Whether it is {destination}'s latest version could not be read: {exc}"
    latest = model.latest_version.id if model and model.latest_version else None
    if latest != version:
        return version, (
            f"The new version is not {destination}'s latest (the latest is "
            f"{(latest or 'unknown')[:12]}…): another training went into the model since."
        )
    return version, None


def cancel(
    engine: Engine, gateway: ReplicateGateway, actor: Actor, retrain_id: int, reason: str
) -> None:
    """Cancel the retrain (admins; audited): one not sent yet ends here; a training on
    Replicate is cancelled there and the next poll records the outcome. While its create is
    being sent it cannot be cancelled (``Conflict``: try again in a moment)."""
    require(actor, Permission.RETRAIN)
    with engine.connect() as conn:
        row = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one_or_none()
    if row is None:
        raise NotFound(f"No retrain #{retrain_id}.")
    if row.status == "creating":
        raise Conflict(
            f"Retrain #{retrain_id}'s training is being created right now; cancel it again in "
            "a few seconds, once it is on Replicate."
        )
    if row.status not in ("submitting", "starting", "processing"):
        raise Conflict(f"Retrain #{retrain_id} is {row.status}: there is nothing to cancel.")
    if row.training_id is not None:
        gateway.cancel_training(row.training_id)
    with engine.begin() as conn:
        if row.training_id is None:
            ended = RETRAIN.move(
                conn,
                retrain_id,
                "cancel_unsent",
                values={
                    "active": False,
                    "finished_at": func.now(),
                    "error": "cancelled before it was sent",
                    **released(),
                },
            )
            if ended is None:
                raise Conflict(
                    f"Retrain #{retrain_id} was sent just now; cancel it again to stop it."
                )
        audit.record(
            conn,
            actor_email=actor.email,
            actor_role=actor.role,
            action=CANCEL_ACTION,
            target_user_id=row.user_id,
            reason=reason,
            details={
                "retrain_id": retrain_id,
                "training_id": row.training_id,
                "status": row.status,
            },
        )


def open_steps(conn: Connection) -> list[tuple[str, int]]:
    """(step, retrain id) for every retrain a worker must still move on (not one waiting
    for a person): ``check`` for a draft with photos not measured yet, ``submit`` for one
    confirmed and not created (a create under a live lease is its run's; one whose lease
    lapsed is searched for, never sent again), ``follow`` for one training, or succeeded
    and its promotion gate not read yet. The maintenance job queues each of these that no
    job holds (``core.maintenance``)."""
    unmeasured = (
        select(retrain_photos.c.retrain_id)
        .where(retrain_photos.c.facts.is_(None))
        .distinct()
        .scalar_subquery()
    )
    rows = conn.execute(
        select(retrains.c.id, retrains.c.status).where(
            ((retrains.c.status == "draft") & retrains.c.id.in_(unmeasured))
            | (retrains.c.status == "submitting")
            | ((retrains.c.status == "creating") & is_free(retrains))
            | retrains.c.status.in_(("starting", "processing"))
            | (
                (retrains.c.status == "succeeded")
                & retrains.c.decision.is_(None)
                & retrains.c.new_version.is_not(None)
                & retrains.c.gate_read_at.is_(None)
            )
        )
    ).all()
    step = {"draft": "check", "submitting": "submit", "creating": "submit"}
    return [(step.get(row.status, "follow"), int(row.id)) for row in rows]
