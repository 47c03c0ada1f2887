"""``cancel``: cancel the user's retrain in flight (the one named, or the one running)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row

from core.errors import DataRejected, NotFound
from core.retrain import follow
from core.retrain.cli.common import Outcome, retrain_json, retrain_lines, stored_retrain
from core.retrain.tables import RETRAIN_RUNNING
from core.retrain.views import retrain_in_flight, retrain_of_user
from core.roles import Actor
from core.runtime import Runtime


def cancel_command(
    runtime: Runtime, actor: Actor, user_id: str, retrain_id: int | None, reason: str
) -> Outcome:
    with runtime.ops_engine.connect() as conn:
        row = _chosen_retrain(conn, user_id, retrain_id)
    if row.status not in RETRAIN_RUNNING:
        raise DataRejected(f"Retrain #{row.id} is {row.status}: only one in flight is cancelled.")
    follow.cancel(runtime.ops_engine, runtime.gateway, actor, row.id, reason)
    # One poll records what Replicate made of it (the workers' polls would as well).
    follow.follow(runtime.ops_engine, runtime.gateway, row.id)
    result = retrain_json(stored_retrain(runtime, row.id))
    return Outcome(result, [f"cancel asked for retrain #{row.id}", *retrain_lines(result)])


def _chosen_retrain(conn: Connection, user_id: str, retrain_id: int | None) -> Row[Any]:
    """The retrain named (the user's), else the user's retrain in flight."""
    if retrain_id is not None:
        return retrain_of_user(conn, user_id, retrain_id)
    row = retrain_in_flight(conn, user_id)
    if row is None:
        raise NotFound(f"User {user_id} has no retrain in flight: nothing to cancel.")
    return row
