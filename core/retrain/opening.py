"""Opening a retrain: where it goes is decided here, once, and stored on the draft.

The page and the command line both call ``open_retrain`` with a user id and the person
acting: the core reads the user's row (through the app's connection) and their training
history, decides the destination and trigger word (``core.retrain.plan.retrain_target``),
reads the pinned trainer's input schema, and stores all of it on the draft. Every later
step (the plan shown, the confirmation, the worker's send) computes from what the draft
stores, so the three can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, Engine

from core.errors import Conflict, ReplicateError
from core.facts.history import read_history
from core.facts.stored import read_stored_user
from core.gateway.gateway import ReplicateGateway
from core.ledger.sync import sync_ledger
from core.retrain.plan import RETRAIN_TRAINER, RETRAIN_TRAINER_VERSION, RetrainTarget
from core.retrain.plan import retrain_target as decide_target
from core.retrain.submit import NewPhoto, add_photos, open_draft
from core.roles import Actor, Permission, require


@dataclass(frozen=True)
class Opened:
    retrain_id: int
    target: RetrainTarget
    notes: tuple[str, ...]  # what the person should know (the ledger or schema unread…)


def read_target(
    app: Connection, ops: Connection, user_id: str, *, into: str | None = None
) -> RetrainTarget:
    """Where a retrain of ``user_id`` would go, from their row (``app``) and the training
    history (``ops``): ``NotFound`` for an unknown user, ``DataRejected`` for one without
    a succeeded training. ``into``: another of the user's models, chosen by the admin."""
    stored = read_stored_user(app, ops, user_id)
    return decide_target(
        stored.trainings,
        stored_version=stored.model_row.get("replicate_version_id"),
        row_model=stored.model_row.get("replicate_model_id"),
        into=into,
    )


def open_retrain(
    *,
    app_engine: Engine,
    ops_engine: Engine,
    gateway: ReplicateGateway,
    actor: Actor,
    user_id: str,
    photos: Sequence[NewPhoto] = (),
    refresh_ledger: bool = True,
    history_fresh_within: timedelta | None = None,
    then: Callable[[Connection, int], None] | None = None,
    into: str | None = None,
) -> Opened:
    """A new draft retrain of ``user_id`` (admins only), with ``photos`` added; ``then``
    runs in the same transaction (the page queues the draft's checks there). Network
    first, with no connection held; then one short transaction.

    ``refresh_ledger``: sync the ledger here first (the command line). A page does not
    list the fleet: it passes ``history_fresh_within``, and a history older than that is
    refused (``Conflict``), since a draft opened on it could miss the user's newest
    training and start from fewer photos.

    ``into``: the admin's choice among the user's models (default: the one the row's
    current version was trained into); the core checks it is one of theirs."""
    require(actor, Permission.RETRAIN)
    notes: list[str] = []
    if history_fresh_within is not None and not refresh_ledger:
        with ops_engine.connect() as conn:
            history = read_history(conn, fresh_within=history_fresh_within)
        if not history.fresh:
            raise Conflict(
                f"The training history is not fresh ({history.describe()}): a retrain "
                "opened now could miss the user's newest training. Try again when the "
                "workers have read it."
            )
    if refresh_ledger:
        try:
            sync_ledger(ops_engine=ops_engine, app_engine=app_engine, gateway=gateway)
        except ReplicateError as exc:
            notes.append(
                f"The training history could not be refreshed ({exc}); using what is stored."
            )
    with app_engine.connect() as app, ops_engine.connect() as ops:
        target = read_target(app, ops, user_id, into=into)
    notes += target.notes
    try:
        schema = gateway.trainer_input_schema(RETRAIN_TRAINER, RETRAIN_TRAINER_VERSION)
    except ReplicateError as exc:
        schema = None
        notes.append(
            f"The trainer's inputs could not be read ({exc}): which it ignores is unknown."
        )
    with ops_engine.begin() as conn:
        retrain_id = open_draft(
            conn,
            actor,
            user_id,
            target,
            trainer=RETRAIN_TRAINER,
            trainer_version=RETRAIN_TRAINER_VERSION,
            trainer_schema=schema,
        )
        if photos:
            add_photos(conn, actor, retrain_id, photos)
        if then is not None:
            then(conn, retrain_id)
    return Opened(retrain_id, target, tuple(notes))
