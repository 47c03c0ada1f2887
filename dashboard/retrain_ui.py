"""The Retrain page's reads and writes. Every write is checked again in core (admins only,
one active retrain per user, one submit per confirmation) and audited there; long work
(checking photos, the upload and the training create, following it, the gate) is queued
for the workers, and the page reads its progress from the database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import Connection, select

from core.compare.tables import comparisons
from core.errors import ReplicateError
from core.jobs.app import TaskName
from core.ledger.sync import sync_ledger
from core.repairs.rows import read_row
from core.repairs.values import RepairPlan
from core.retrain import follow, promote, submit
from core.retrain.checks import GateResult, gate_limit
from core.retrain.draft import draft_gate, rejudge
from core.retrain.gate import GateReading, read_gate
from core.retrain.opening import open_retrain, read_target
from core.retrain.plan import RetrainTarget, TrainingPlan, plan_of_draft
from core.retrain.submit import NewPhoto
from core.retrain.tables import retrain_photos, retrains
from core.retrain.tasks import defer_retrain
from core.roles import Actor
from core.versions import short_version
from dashboard.resources import read_only, runtime, writing

SCHEMA_TTL_SECONDS = 600


def target(user_id: str) -> tuple[RetrainTarget, str | None]:
    """Where a retrain of the user would go (before a draft exists: a draft stores its
    own), and a problem refreshing the training history."""
    live = runtime()
    problem = None
    try:
        sync_ledger(ops_engine=live.ops_engine, app_engine=live.engine, gateway=live.gateway)
    except ReplicateError as exc:
        problem = f"The training history could not be refreshed ({exc}); using what is stored."
    with read_only(live.engine) as app, read_only(live.ops_engine) as ops:
        return read_target(app, ops, user_id), problem


def plan(row: Any, image_count: int) -> TrainingPlan:
    """What the draft would send with ``image_count`` photos (the core's one plan)."""
    return plan_of_draft(row, image_count)


@dataclass(frozen=True)
class RetrainState:
    row: Any  # the retrains row
    photos: tuple[Any, ...]  # its photos, without their bytes
    gate: GateResult | None  # drafts only
    comparison_status: str | None
    reading: GateReading | None


def current(user_id: str, actor: Actor) -> RetrainState | None:
    """The user's active retrain, else this admin's open draft of them, else None."""
    with read_only(runtime().ops_engine) as conn:
        row = conn.execute(
            select(retrains)
            .where(
                retrains.c.user_id == user_id,
                retrains.c.active
                | ((retrains.c.status == "draft") & (retrains.c.requested_by == actor.email)),
            )
            .order_by(retrains.c.active.desc(), retrains.c.id.desc())
            .limit(1)
        ).one_or_none()
        return None if row is None else _state(conn, row)


def latest(user_id: str) -> RetrainState | None:
    """The user's newest submitted retrain (ended or decided), if any."""
    with read_only(runtime().ops_engine) as conn:
        row = conn.execute(
            select(retrains)
            .where(retrains.c.user_id == user_id, retrains.c.status != "draft")
            .order_by(retrains.c.id.desc())
            .limit(1)
        ).one_or_none()
        return None if row is None else _state(conn, row)


def load(retrain_id: int) -> RetrainState | None:
    with read_only(runtime().ops_engine) as conn:
        row = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one_or_none()
        return None if row is None else _state(conn, row)


def _state(conn: Connection, row: Any) -> RetrainState:
    photos = conn.execute(
        select(
            retrain_photos.c.position,
            retrain_photos.c.name,
            retrain_photos.c.source,
            retrain_photos.c.thumbnail,
            retrain_photos.c.verdict,
            retrain_photos.c.reasons,
            retrain_photos.c.kept,
            retrain_photos.c.facts.is_not(None).label("measured"),
        )
        .where(retrain_photos.c.retrain_id == row.id)
        .order_by(retrain_photos.c.position)
    ).all()
    status, reading = None, None
    if row.comparison_id is not None:
        found = conn.execute(
            select(comparisons.c.status, comparisons.c.stats).where(
                comparisons.c.id == row.comparison_id
            )
        ).one_or_none()
        if found is not None:
            status = str(found.status)
            reading = read_gate(found.stats) if found.status == "finished" else None
    return RetrainState(
        row=row,
        photos=tuple(photos),
        gate=draft_gate(conn, row.id) if row.status == "draft" else None,
        comparison_status=status,
        reading=reading,
    )


@st.cache_data(ttl=SCHEMA_TTL_SECONDS, show_spinner=False)
def expected_seconds(trainer_version: str) -> float | None:
    with read_only(runtime().ops_engine) as conn:
        return follow.expected_seconds(conn, trainer_version)


def history(user_id: str) -> list[Any]:
    with read_only(runtime().ops_engine) as conn:
        return list(
            conn.execute(
                select(retrains)
                .where(retrains.c.user_id == user_id, retrains.c.status != "draft")
                .order_by(retrains.c.id.desc())
                .limit(50)
            ).all()
        )


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


def history_frame(rows: Sequence[Any]) -> pd.DataFrame:
    """One row per retrain: who, why, photos, the gate, the training and the decision."""
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
                "new version": short_version(item.new_version) if item.new_version else "",
                "decision": (
                    f"{item.decision} by {item.decided_by}"
                    if item.decision
                    else "not yet"
                    if item.status == "succeeded"
                    else ""
                ),
                "error": item.error or "",
            }
            for item in rows
        ]
    )


def start(actor: Actor, user_id: str) -> int:
    """Open a draft (the core decides where it goes) and queue its checks."""
    live = runtime()
    opened = open_retrain(
        app_engine=live.engine,
        ops_engine=live.ops_engine,
        gateway=live.gateway,
        actor=actor,
        user_id=user_id,
        refresh_ledger=False,  # the page refreshed it to show the target
        then=lambda conn, retrain_id: defer_retrain(conn, TaskName.CHECK_RETRAIN, retrain_id),
    )
    return opened.retrain_id


def add_uploads(actor: Actor, retrain_id: int, uploads: Sequence[tuple[str, bytes]]) -> None:
    with writing(runtime().ops_engine) as conn, conn.begin():
        submit.add_photos(
            conn, actor, retrain_id, [NewPhoto(name, "upload", data) for name, data in uploads]
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
        user_id = ops.execute(
            select(retrains.c.user_id).where(retrains.c.id == retrain_id)
        ).scalar_one()
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
