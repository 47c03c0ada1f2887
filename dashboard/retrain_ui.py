"""The Retrain page's reads and writes. Every write is checked again in core (admins only,
one active retrain per user, one submit per confirmation) and audited there; long work
(checking photos, the upload and the training create, following it, the gate) is queued
for the workers, and the page reads its progress from the database."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.facts import History
from core.gateway.values import ModelVersion
from core.jobs.app import TaskName
from core.redaction import with_urls_redacted
from core.repairs.rows import read_row
from core.repairs.values import RepairPlan
from core.retrain import estimate, follow, promote, submit
from core.retrain.checks import gate_limit
from core.retrain.draft import rejudge
from core.retrain.opening import open_retrain, read_target
from core.retrain.plan import RetrainTarget, TrainingPlan, plan_of_draft
from core.retrain.submit import NewPhoto
from core.retrain.tasks import defer_retrain
from core.retrain.views import (
    RetrainState,
    current_retrain,
    latest_retrain,
    read_retrain,
    retrain_state,
    submitted_retrains,
)
from core.roles import Actor
from core.versions import version_name
from dashboard.history import fresh_within, history_kept_fresh, refresh_user
from dashboard.resources import read_only, runtime, writing

SCHEMA_TTL_SECONDS = 600


def target(user_id: str, into: str | None = None) -> tuple[RetrainTarget, History, str | None]:
    """Where a retrain of the user would go (before a draft exists: a draft stores its
    own), how fresh the training history behind it is, and a problem reading the user's
    trainings. The page never lists the fleet: a history older than
    ``HISTORY_FRESH_SECONDS`` is handed to the workers (one queued sync), and a draft
    opens only once it is fresh. ``into``: another of the user's models, chosen by the
    admin (the core checks it is one of theirs)."""
    live = runtime()
    problem = refresh_user(user_id)
    with read_only(live.engine) as app, read_only(live.ops_engine) as ops:
        found = read_target(app, ops, user_id, into=into)
    return found, history_kept_fresh(), problem


def plan(row: Any, image_count: int) -> TrainingPlan:
    """What the draft would send with ``image_count`` photos (the core's one plan)."""
    return plan_of_draft(row, image_count)


def current(user_id: str, actor: Actor) -> RetrainState | None:
    """The user's active retrain, else this admin's open draft of them, else None."""
    with read_only(runtime().ops_engine) as conn:
        return current_retrain(conn, user_id, requested_by=actor.email)


def latest(user_id: str) -> RetrainState | None:
    """The user's newest submitted retrain (ended or decided), if any."""
    with read_only(runtime().ops_engine) as conn:
        return latest_retrain(conn, user_id)


def load(retrain_id: int) -> RetrainState | None:
    with read_only(runtime().ops_engine) as conn:
        return retrain_state(conn, retrain_id)


@st.cache_data(ttl=SCHEMA_TTL_SECONDS, max_entries=16, show_spinner=False)
def usual_duration(trainer_version: str) -> str:
    """How long a training on this trainer usually takes, in words (or that it is not
    known yet): from the account's recent trainings in the history."""
    with read_only(runtime().ops_engine) as conn:
        return estimate.usual_duration(follow.recent_durations(conn, trainer_version))


def history(user_id: str) -> list[Any]:
    with read_only(runtime().ops_engine) as conn:
        return submitted_retrains(conn, user_id)


def gate_frame(figures: Mapping[str, Any]) -> pd.DataFrame:
    """The dataset gate's figures in words: this retrain's against the training behind the
    current version, and the rule each one is held to (values as text: columns mix px,
    counts and distances)."""

    def shown(value: Any, unit: str = "") -> str:
        return "—" if value is None else f"{value}{unit}"

    percentile = gate_limit("identity_spread_percentile")
    rows = [
        ("photos kept", shown(figures.get("count")), shown(figures.get("previous_count")), ""),
        (
            "usable (not rejected)",
            shown(figures.get("usable")),
            shown(figures.get("previous_usable")),
            f"blocks under {gate_limit('min_usable_photos'):g} or under before",
        ),
        (
            "median short side",
            shown(figures.get("median_short_side"), " px"),
            shown(figures.get("previous_median_short_side"), " px"),
            f"blocks when down {gate_limit('short_side_drop_fraction'):.0%} or more",
        ),
        ("rejected photos kept", shown(figures.get("rejected")), "", "blocks when any"),
        (
            "photos with a warning",
            shown(figures.get("warned")),
            "",
            f"warns at {gate_limit('many_warned_fraction'):.0%} of the kept photos",
        ),
        (
            "identity spread",
            shown(figures.get("identity_spread")),
            "",
            f"{percentile:g}th percentile of the faces' distances to the usual face; blocks "
            f"over {gate_limit('max_identity_spread'):g}",
        ),
    ]
    return pd.DataFrame(rows, columns=["figure", "this retrain", "before", "rule"])


def history_frame(rows: Sequence[Any], versions: Sequence[ModelVersion] = ()) -> pd.DataFrame:
    """One row per retrain: who, why, photos, the gate, the training and the decision; its
    new version named as staff call it (``versions``: the model's, for the number)."""
    return pd.DataFrame(
        [
            {
                "#": item.id,
                "asked": item.requested_at,
                "by": item.requested_by,
                "why": item.reason,
                "status": item.status,
                "photos": (item.gate or {}).get("figures", {}).get("count"),
                "gate": (
                    "passed"
                    if (item.gate or {}).get("passed")
                    else f"overridden: {item.override_reason}"
                    if item.override_reason
                    else "—"
                ),
                "new version": version_name(item.new_version, versions) if item.new_version else "",
                "decision": (
                    f"{item.decision} by {item.decided_by}"
                    if item.decision
                    else "not yet"
                    if item.status == "succeeded"
                    else ""
                ),
                "error": with_urls_redacted(item.error or ""),
            }
            for item in rows
        ]
    )


def start(actor: Actor, user_id: str, into: str | None = None) -> int:
    """Open a draft (the core decides where it goes; ``into``: the admin's choice among
    the user's models) and queue its checks."""
    live = runtime()
    opened = open_retrain(
        app_engine=live.engine,
        ops_engine=live.ops_engine,
        gateway=live.gateway,
        actor=actor,
        user_id=user_id,
        refresh_ledger=False,  # the workers keep it; the core checks it is fresh
        history_fresh_within=fresh_within(),
        then=lambda conn, retrain_id: defer_retrain(conn, TaskName.CHECK_RETRAIN, retrain_id),
        into=into,
    )
    return opened.retrain_id


def add_uploads(
    actor: Actor,
    retrain_id: int,
    uploads: Sequence[tuple[str, bytes]],
    on_each: Callable[[int, NewPhoto], None] | None = None,
) -> None:
    """Add the uploads to the draft (all or none) and queue their checks for a worker;
    ``on_each`` after each photo is written (the page's progress)."""
    with writing(runtime().ops_engine) as conn, conn.begin():
        submit.add_photos(
            conn,
            actor,
            retrain_id,
            [NewPhoto(name, "upload", data) for name, data in uploads],
            on_each=on_each,
        )
        defer_retrain(conn, TaskName.CHECK_RETRAIN, retrain_id)


def set_kept(actor: Actor, retrain_id: int, position: int, kept: bool) -> None:
    with writing(runtime().ops_engine) as conn, conn.begin():
        submit.keep_photo(conn, actor, retrain_id, position, kept)
        rejudge(conn, retrain_id)


def confirm(
    actor: Actor,
    retrain_id: int,
    *,
    token: str,
    reason: str,
    override_reason: str | None,
) -> int:
    """Confirm the draft (the core computes the gate and the plan again) and queue its
    submit in the same transaction."""
    with writing(runtime().ops_engine) as conn, conn.begin():
        confirmed = submit.confirm(
            conn,
            actor,
            retrain_id,
            confirm_token=token,
            reason=reason,
            override_reason=override_reason,
        )
        defer_retrain(conn, TaskName.SUBMIT_RETRAIN, confirmed)
    return confirmed


def cancel(actor: Actor, retrain_id: int, reason: str) -> None:
    live = runtime()
    follow.cancel(live.ops_engine, live.gateway, actor, retrain_id, reason)


def promotion_preview(retrain_id: int) -> RepairPlan:
    """What promoting writes, against the user's row as it is now (shown to the admin,
    then applied exactly)."""
    live = runtime()
    with read_only(live.engine) as app, read_only(live.ops_engine) as ops:
        return promote.promotion_preview(app, ops, retrain_id)


def promote_now(
    actor: Actor, retrain_id: int, shown: RepairPlan, reason: str, without_gate: str | None
) -> int:
    live = runtime()
    with writing(live.engine) as conn, conn.begin():
        return promote.promote(
            conn, actor, retrain_id, shown=shown, reason=reason, without_gate_reason=without_gate
        )


def keep_current(actor: Actor, retrain_id: int, reason: str, without_gate: str | None) -> int:
    live = runtime()
    with read_only(live.ops_engine) as ops:
        user_id = read_retrain(ops, retrain_id).user_id
    with read_only(live.engine) as app:
        row = read_row(app, user_id)
    with writing(live.ops_engine) as conn, conn.begin():
        return promote.keep(
            conn,
            actor,
            retrain_id,
            reason=reason,
            app_row=row,
            without_gate_reason=without_gate,
        )


def drop_draft(actor: Actor, retrain_id: int) -> None:
    with writing(runtime().ops_engine) as conn, conn.begin():
        submit.discard_draft(conn, actor, retrain_id)
