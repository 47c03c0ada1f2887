"""Reading retrains back, for the command line (and the Retrain page): one retrain and
its photos, the user's retrains, and the ones the commands act on when none is named (the
actor's newest draft, the one in flight, the one awaiting a decision).

Plain values out; the caller owns the connection (a read-only one is enough). Rows of
``ops.retrains`` are handed back as read: the plan and the promotion rules take them so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, null, select

from core.errors import DataRejected, NotFound
from core.retrain.tables import RETRAIN_RUNNING, retrain_photos, retrains


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
