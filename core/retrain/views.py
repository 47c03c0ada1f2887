"""Reading retrains back, for the Retrain page and the command line: one retrain with its
photos and both gates, the user's current, latest and past retrains, and the ones the
commands act on when none is named (the actor's newest draft, the one in flight, the one
awaiting a decision).

Plain values out; the caller owns the connection (a read-only one is enough). Rows of
``ops.retrains`` are handed back as read: the plan and the promotion rules take them so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, null, select

from core.compare.tables import comparisons
from core.errors import DataRejected, NotFound
from core.retrain.checks import GateResult
from core.retrain.draft import draft_gate
from core.retrain.gate import GateReading, read_gate
from core.retrain.tables import RETRAIN_RUNNING, retrain_photos, retrains

HISTORY_LIMIT = 50  # the page's table of past retrains


@dataclass(frozen=True)
class RetrainPhoto:
    """One photo of a retrain and its checks, without the file itself."""

    position: int
    name: str
    source: str  # "previous" (an earlier training's ZIP) or "upload"
    verdict: str | None  # ok, warn or reject; None until checked
    reasons: tuple[str, ...]
    kept: bool
    measured: bool  # checked: its facts are stored (an unreadable photo's too)
    thumbnail: bytes | None  # JPEG; None until checked, or when not asked for


@dataclass(frozen=True)
class RetrainState:
    """A retrain as the page shows it."""

    row: Row[Any]  # the retrains row
    photos: tuple[RetrainPhoto, ...]
    gate: GateResult | None  # the dataset gate as the photos stand: drafts only
    comparison_status: str | None  # the promotion gate's comparison, once it has one
    reading: GateReading | None  # what that comparison says, once it finished


def find_retrain(conn: Connection, retrain_id: int) -> Row[Any] | None:
    return conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one_or_none()


def read_retrain(conn: Connection, retrain_id: int) -> Row[Any]:
    """Retrain ``retrain_id``; ``NotFound`` when there is none."""
    row = find_retrain(conn, retrain_id)
    if row is None:
        raise NotFound(f"No retrain #{retrain_id}.")
    return row


def retrain_of_user(conn: Connection, user_id: str, retrain_id: int) -> Row[Any]:
    """Retrain ``retrain_id``, refused unless it is ``user_id``'s."""
    row = read_retrain(conn, retrain_id)
    if row.user_id != user_id:
        raise DataRejected(f"Retrain #{retrain_id} is user {row.user_id}'s, not {user_id}'s.")
    return row


def newest_draft(conn: Connection, user_id: str, requested_by: str) -> Row[Any] | None:
    """The newest draft retrain of the user that ``requested_by`` opened."""
    return conn.execute(
        select(retrains)
        .where(
            retrains.c.user_id == user_id,
            retrains.c.status == "draft",
            retrains.c.requested_by == requested_by,
        )
        .order_by(retrains.c.id.desc())
        .limit(1)
    ).one_or_none()


def retrain_in_flight(conn: Connection, user_id: str) -> Row[Any] | None:
    """The user's active retrain while it is being submitted or trained (at most one: the
    database allows one active retrain per user)."""
    return conn.execute(
        select(retrains).where(
            retrains.c.user_id == user_id,
            retrains.c.active,
            retrains.c.status.in_(RETRAIN_RUNNING),
        )
    ).one_or_none()


def awaiting_decision(conn: Connection, user_id: str) -> int | None:
    """The id of the user's newest succeeded retrain with a new version and no decision."""
    found = conn.execute(
        select(retrains.c.id)
        .where(
            retrains.c.user_id == user_id,
            retrains.c.status == "succeeded",
            retrains.c.decision.is_(None),
            retrains.c.new_version.is_not(None),
        )
        .order_by(retrains.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return None if found is None else int(found)


def retrains_of_user(conn: Connection, user_id: str) -> list[Row[Any]]:
    """Every retrain of the user, drafts included, newest first."""
    return list(
        conn.execute(
            select(retrains).where(retrains.c.user_id == user_id).order_by(retrains.c.id.desc())
        ).all()
    )


def submitted_retrains(
    conn: Connection, user_id: str, *, limit: int = HISTORY_LIMIT
) -> list[Row[Any]]:
    """The user's retrains past their draft (running, ended or decided), newest first."""
    return list(
        conn.execute(
            select(retrains)
            .where(retrains.c.user_id == user_id, retrains.c.status != "draft")
            .order_by(retrains.c.id.desc())
            .limit(limit)
        ).all()
    )


def retrain_photos_of(
    conn: Connection, retrain_id: int, *, thumbnails: bool = True
) -> tuple[RetrainPhoto, ...]:
    """The retrain's photos in order (``thumbnails=False``: without them, for a report
    that shows none)."""
    thumbnail = retrain_photos.c.thumbnail if thumbnails else null().label("thumbnail")
    rows = conn.execute(
        select(
            retrain_photos.c.position,
            retrain_photos.c.name,
            retrain_photos.c.source,
            retrain_photos.c.verdict,
            retrain_photos.c.reasons,
            retrain_photos.c.kept,
            retrain_photos.c.facts.is_not(None).label("measured"),
            thumbnail,
        )
        .where(retrain_photos.c.retrain_id == retrain_id)
        .order_by(retrain_photos.c.position)
    ).all()
    return tuple(
        RetrainPhoto(
            position=row.position,
            name=row.name,
            source=row.source,
            verdict=row.verdict,
            reasons=tuple(row.reasons),
            kept=row.kept,
            measured=row.measured,
            thumbnail=None if row.thumbnail is None else bytes(row.thumbnail),
        )
        for row in rows
    )


def state_of(conn: Connection, row: Row[Any]) -> RetrainState:
    """The retrain ``row`` with its photos, its dataset gate (a draft's) and its promotion
    gate's comparison."""
    comparison_status, reading = None, None
    if row.comparison_id is not None:
        found = conn.execute(
            select(comparisons.c.status, comparisons.c.stats).where(
                comparisons.c.id == row.comparison_id
            )
        ).one_or_none()
        if found is not None:
            comparison_status = str(found.status)
            reading = read_gate(found.stats) if found.status == "finished" else None
    return RetrainState(
        row=row,
        photos=retrain_photos_of(conn, row.id),
        gate=draft_gate(conn, row.id) if row.status == "draft" else None,
        comparison_status=comparison_status,
        reading=reading,
    )


def retrain_state(conn: Connection, retrain_id: int) -> RetrainState | None:
    row = find_retrain(conn, retrain_id)
    return None if row is None else state_of(conn, row)


def current_retrain(conn: Connection, user_id: str, requested_by: str) -> RetrainState | None:
    """The user's active retrain, else the open draft of them ``requested_by`` started,
    else None."""
    row = conn.execute(
        select(retrains)
        .where(
            retrains.c.user_id == user_id,
            retrains.c.active
            | ((retrains.c.status == "draft") & (retrains.c.requested_by == requested_by)),
        )
        .order_by(retrains.c.active.desc(), retrains.c.id.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else state_of(conn, row)


def latest_retrain(conn: Connection, user_id: str) -> RetrainState | None:
    """The user's newest submitted retrain (running, ended or decided), if any."""
    rows = submitted_retrains(conn, user_id, limit=1)
    return state_of(conn, rows[0]) if rows else None
