"""One user's facts for the drift engine: Replicate's answers and the ledger, as stored.

``gather_facts`` reads, for one ``user_models`` row, what ``diagnose`` needs: the row's
model and ALL its versions (404 → ``found=False``), the ledger's trainings of the user
(``ledger_for_user``, with their cached dataset facts), the decisions taken about them and
every other model those trainings went to, and the watch's review of the latest retrain.
It raises the gateway's errors
(``ReplicateError``, ``DataRejected`` for a model id that is not ``owner/name``); the scan
turns them into that user's SCAN_ERROR. It never syncs the ledger: ``core.facts.user``
decides that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

from sqlalchemy import Connection

from core.decisions import decisions_for
from core.drift.facts import AppRow, ModelFacts, UserFacts
from core.errors import ReplicateNotFound
from core.gateway.gateway import ReplicateGateway
from core.gateway.values import is_version_hash
from core.ledger.reviews import latest_verdict
from core.ledger.sync import ledger_for_user, version_owner
from core.versions import normalise_version

ConnectionFactory = Callable[[], AbstractContextManager[Connection]]


def model_facts(gateway: ReplicateGateway, model_id: str) -> ModelFacts:
    """Replicate's answer for one model: 404, or the model with every version."""
    model = gateway.get_model(model_id)
    if model is None:
        return ModelFacts(model_id, found=False)
    if model.latest_version is None:
        return ModelFacts(model_id, found=True)  # no version yet: nothing to list
    try:
        versions = gateway.list_versions(model_id)
    except ReplicateNotFound:  # deleted between the two calls
        return ModelFacts(model_id, found=False)
    return ModelFacts(model_id, found=True, versions=tuple(versions))


def gather_facts(
    user_row: AppRow,
    *,
    ops_conn_factory: ConnectionFactory,
    gateway: ReplicateGateway,
    known_models: Mapping[str, ModelFacts] | None = None,
) -> UserFacts:
    """Everything ``diagnose`` needs about one user (see the module docstring).

    ``ops_conn_factory`` opens a connection to schema ``ops`` (``ops_engine.connect``):
    this runs on the scan's worker threads, each of which needs its own connection.
    ``known_models``: models read moments ago (gathering again after the user's trainings
    were refreshed), not asked again.
    """
    with ops_conn_factory() as conn:
        ledger = ledger_for_user(conn, user_row.user_id)
        decided = decisions_for(conn, [user_row.user_id]).get(user_row.user_id, ())
        retrain = latest_verdict(conn, user_row.user_id)
    known = dict(known_models or {})

    def read(model_id: str) -> ModelFacts:
        if model_id not in known:
            known[model_id] = model_facts(gateway, model_id)
        return known[model_id]

    model_id = user_row.model_id
    model = read(model_id) if model_id is not None else None
    others: dict[str, ModelFacts] = {}
    for record in ledger:
        destination = record.destination
        if destination and destination != model_id and destination not in others:
            others[destination] = read(destination)
    owner = None
    stored = normalise_version(user_row.replicate_version_id)
    if (
        stored is not None
        and is_version_hash(stored)
        and not (model is not None and model.has_version(stored))
        and not any(record.version_hash == stored for record in ledger)
    ):
        with ops_conn_factory() as conn:  # whose is it, then? (rare: an indexed lookup)
            owner = version_owner(conn, stored)
    return UserFacts(
        row=user_row,
        model=model,
        trainings=ledger,
        models_by_id=others,
        stored_owner=owner,
        decisions=decided,
        retrain=retrain,
    )
