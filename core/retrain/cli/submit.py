"""``submit``: confirm a draft and start exactly one training, here (followed to its end
or its deadline, then left to the workers) or queued for the workers (``--background``).
The app's row is not touched."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import Connection, Row

from core.cli import Note, note
from core.errors import NotFound, ReplicateError
from core.jobs.app import TaskName
from core.retrain import follow, submit
from core.retrain.cli.common import PROG, Outcome, retrain_json, retrain_lines, stored_retrain
from core.retrain.tables import RETRAIN_RUNNING
from core.retrain.tasks import defer_retrain
from core.retrain.views import newest_draft, retrain_of_user
from core.roles import Actor
from core.runtime import Runtime

DEFAULT_DEADLINE_SECONDS = 3600.0


def submit_command(
    runtime: Runtime,
    actor: Actor,
    user_id: str,
    *,
    retrain_id: int | None,
    reason: str,
    override_reason: str | None,
    background: bool,
    deadline_seconds: float,
) -> Outcome:
    with runtime.ops_engine.connect() as conn:
        row = _chosen_draft(conn, user_id, actor.email, retrain_id)
    # The core computes the gate and the plan again from what the draft stores.
    with runtime.ops_engine.begin() as conn:
        confirmed = submit.confirm(
            conn,
            actor,
            row.id,
            confirm_token=uuid.uuid4().hex,
            reason=reason,
            override_reason=override_reason,
        )
        if background:
            defer_retrain(conn, TaskName.SUBMIT_RETRAIN, confirmed)
    if background:
        result = {
            **retrain_json(stored_retrain(runtime, confirmed)),
            "queued": True,
            "promotion_gate_queued": False,
        }
        return Outcome(
            result,
            [f"retrain #{confirmed} confirmed and queued for the workers ({result['status']})"],
        )
    note(f"retrain #{confirmed}: building and uploading the ZIP, then the one training create")
    try:
        submit.submit(runtime.ops_engine, runtime.gateway, confirmed)
    except ReplicateError as exc:
        # Only the search for a lost create raises: the workers search again; never resend.
        _hand_over(runtime, TaskName.SUBMIT_RETRAIN, confirmed)
        raise ReplicateError(
            f"retrain #{confirmed}: the training create's answer was lost and Replicate could "
            f"not be searched for it ({exc}); the workers search again (it is never resent)."
        ) from exc
    ended = follow_until_ended(runtime, confirmed, deadline_seconds, note)
    row = stored_retrain(runtime, confirmed)
    gate_queued = bool(ended and row.status == "succeeded" and row.new_version)
    result = {**retrain_json(row), "queued": False, "promotion_gate_queued": gate_queued}
    lines = retrain_lines(result)
    if not ended:
        # Past the deadline, or the create is another run's: the workers carry on (a
        # create without its training is searched for, never resent).
        task = TaskName.FOLLOW_RETRAIN if row.training_id else TaskName.SUBMIT_RETRAIN
        _hand_over(runtime, task, confirmed)
        return Outcome(
            result,
            lines,
            failure=f"retrain #{confirmed} is still {row.status}; the workers follow it from "
            f"here ({PROG} status --user {user_id}).",
        )
    if row.status != "succeeded":
        return Outcome(
            result,
            lines,
            failure=f"retrain #{confirmed} ended {row.status}: {row.error or 'no reason given'} "
            "(the app's row was not touched).",
        )
    if gate_queued:
        # The workers run the promotion gate's comparison (as after a page's submit).
        _hand_over(runtime, TaskName.FOLLOW_RETRAIN, confirmed)
        lines.append(
            "the promotion gate's comparison is queued for the workers; then "
            f'{PROG} promote|keep --user {user_id} --actor {actor.email} --reason "…"'
        )
    return Outcome(result, lines)


def _chosen_draft(conn: Connection, user_id: str, email: str, retrain_id: int | None) -> Row[Any]:
    """The retrain named (the user's), else ``email``'s newest draft of the user."""
    if retrain_id is not None:
        return retrain_of_user(conn, user_id, retrain_id)
    row = newest_draft(conn, user_id, email)
    if row is None:
        raise NotFound(
            f"{email} has no draft retrain of user {user_id}: open one with "
            f"`{PROG} check --user {user_id} --actor {email}`, or name one with --retrain."
        )
    return row


def follow_until_ended(
    runtime: Runtime, retrain_id: int, deadline_seconds: float, note: Note
) -> bool:
    """Poll the training until it ends (True), noting each change of status or step; False
    at the deadline, on Ctrl-C (it stops the watching, not the training), or when there is
    no training to follow yet (another run holds its create)."""
    deadline = time.monotonic() + deadline_seconds
    try:
        return _poll(runtime, retrain_id, deadline, note)
    except KeyboardInterrupt:
        note(f"retrain #{retrain_id}: stopped watching (the training carries on)")
        return False


def _poll(runtime: Runtime, retrain_id: int, deadline: float, note: Note) -> bool:
    shown = ""
    while True:
        wait = follow.follow(runtime.ops_engine, runtime.gateway, retrain_id)
        row = stored_retrain(runtime, retrain_id)
        progress = f"step {row.step}/{row.steps}" if row.steps else "no step yet"
        now = f"retrain #{retrain_id}: {row.status}, {progress}"
        if now != shown:
            note(now)
            shown = now
        if wait is None:
            return row.status not in RETRAIN_RUNNING
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(wait, left))


def _hand_over(runtime: Runtime, task: TaskName, retrain_id: int) -> None:
    with runtime.ops_engine.begin() as conn:
        defer_retrain(conn, task, retrain_id)
