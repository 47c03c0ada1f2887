"""Blind review's rows: the next pair for a voter, one vote per voter per pair, and the
votes back as ``stats.Vote`` for the results.

A pair is two images of the same user, prompt and seed made by two different versions,
built in the transaction that finishes a comparison (``core.compare.pairs``). The voter
sees the two images in an order chosen at random per pair and recorded with the vote; the
vote names the images, never the screen sides.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from core.compare.tables import (
    VOTE_CHOICES,
    comparison_images,
    comparisons,
    review_pairs,
    review_votes,
)
from core.drift.facts import TrainingRecord
from core.errors import Conflict, DataRejected, NotFound
from core.ledger.reads import record_of
from core.ledger.tables import trainings
from core.review.names import column_words
from core.review.stats import Choice, Vote
from core.roles import Actor, Permission, require

_CHOICE_OF = {"x": "left", "y": "right", "tie": "tie", "both_bad": "both_bad"}


@dataclass(frozen=True)
class PairToVote:
    pair_id: int
    user_id: str
    prompt: str
    seed: int
    left_image: int
    right_image: int
    left_preview: bytes
    right_preview: bytes
    x_on_left: bool
    remaining: int  # pairs this voter has not voted on (this one included)


def next_pair(
    conn: Connection, voter: str, *, user_id: str | None = None, rng: random.Random | None = None
) -> PairToVote | None:
    """A pair ``voter`` has not voted on (at random), its sides in a random order."""
    chooser = rng or random.SystemRandom()
    not_voted = (
        ~select(review_votes.c.id)
        .where(review_votes.c.pair_id == review_pairs.c.id, review_votes.c.voter == voter)
        .exists()
    )
    condition = and_(not_voted, review_pairs.c.user_id == user_id) if user_id else not_voted
    remaining = conn.execute(
        select(func.count()).select_from(review_pairs).where(condition)
    ).scalar_one()
    if not remaining:
        return None
    offset = chooser.randrange(remaining)
    pair = conn.execute(
        select(review_pairs, comparisons.c.prompt)
        .join(comparisons, comparisons.c.id == review_pairs.c.comparison_id)
        .where(condition)
        .order_by(review_pairs.c.id)
        .offset(offset)
        .limit(1)
    ).one()
    previews: dict[int, bytes] = {
        int(row.id): bytes(row.preview)
        for row in conn.execute(
            select(comparison_images.c.id, comparison_images.c.preview).where(
                comparison_images.c.id.in_((pair.image_x, pair.image_y))
            )
        )
    }
    seed = conn.execute(
        select(comparison_images.c.seed).where(comparison_images.c.id == pair.image_x)
    ).scalar_one()
    x_on_left = chooser.random() < 0.5
    left, right = (pair.image_x, pair.image_y) if x_on_left else (pair.image_y, pair.image_x)
    return PairToVote(
        pair_id=pair.id,
        user_id=pair.user_id,
        prompt=pair.prompt,
        seed=seed,
        left_image=left,
        right_image=right,
        left_preview=previews[left],
        right_preview=previews[right],
        x_on_left=x_on_left,
        remaining=int(remaining),
    )


@dataclass(frozen=True)
class Revealed:
    """What the voter may see once they voted: the versions on each side, and the
    comparison column each image came from (``names.column_words``; None when the
    comparison did not record its columns)."""

    left_version: str
    right_version: str
    choice: str
    user_id: str = ""
    left_column: str | None = None
    right_column: str | None = None


def record_vote(
    conn: Connection, actor: Actor, pair_id: int, side: str, *, x_on_left: bool
) -> Revealed:
    """Record ``actor``'s vote on a pair: ``side`` is what they chose on screen ("left",
    "right", "tie", "both_bad"); stored as the image it names. Once per voter per pair."""
    require(actor, Permission.REVIEW_VOTE)
    if side not in ("left", "right", "tie", "both_bad"):
        raise DataRejected(f"A vote is left, right, tie or both_bad, not {side!r}.")
    pair = conn.execute(select(review_pairs).where(review_pairs.c.id == pair_id)).one_or_none()
    if pair is None:
        raise NotFound(f"There is no review pair #{pair_id}.")
    if side in ("tie", "both_bad"):
        choice = side
    else:
        chose_x = (side == "left") == x_on_left
        choice = "x" if chose_x else "y"
    assert choice in VOTE_CHOICES
    try:
        with conn.begin_nested():
            conn.execute(
                pg_insert(review_votes).values(
                    pair_id=pair_id, voter=actor.email, choice=choice, x_on_left=x_on_left
                )
            )
    except IntegrityError:
        raise Conflict("You already voted on this pair; here is the next one.") from None
    x_column, y_column = _columns_of(conn, pair.comparison_id, pair.image_x, pair.image_y)
    if x_on_left:
        return Revealed(pair.version_x, pair.version_y, choice, pair.user_id, x_column, y_column)
    return Revealed(pair.version_y, pair.version_x, choice, pair.user_id, y_column, x_column)


def _columns_of(
    conn: Connection, comparison_id: int, image_x: int, image_y: int
) -> tuple[str | None, str | None]:
    """The comparison columns two images came from, in words."""
    letters = {
        int(image_id): letter
        for image_id, letter in conn.execute(
            select(comparison_images.c.id, comparison_images.c.letter).where(
                comparison_images.c.id.in_((image_x, image_y))
            )
        )
    }
    columns = conn.execute(
        select(comparisons.c.columns).where(comparisons.c.id == comparison_id)
    ).scalar_one_or_none()
    return column_words(letters.get(image_x), columns), column_words(letters.get(image_y), columns)


def votes(conn: Connection, *, user_id: str | None = None) -> list[Vote]:
    """Every vote as ``stats.Vote`` (versions, not sides), optionally for one user."""
    query = select(review_pairs.c.version_x, review_pairs.c.version_y, review_votes.c.choice).join(
        review_pairs, review_pairs.c.id == review_votes.c.pair_id
    )
    if user_id:
        query = query.where(review_pairs.c.user_id == user_id)
    found = []
    for version_x, version_y, choice in conn.execute(query):
        mapped: Choice = _CHOICE_OF[choice]  # type: ignore[assignment]
        found.append(Vote(version_x, version_y, mapped))
    return found


def votes_by_user(conn: Connection) -> dict[str, list[Vote]]:
    """Every vote as ``stats.Vote``, grouped by the user whose images they judged."""
    query = (
        select(
            review_pairs.c.user_id,
            review_pairs.c.version_x,
            review_pairs.c.version_y,
            review_votes.c.choice,
        )
        .join(review_pairs, review_pairs.c.id == review_votes.c.pair_id)
        .order_by(review_pairs.c.user_id, review_votes.c.pair_id)
    )
    grouped: dict[str, list[Vote]] = {}
    for user_id, version_x, version_y, choice in conn.execute(query):
        mapped: Choice = _CHOICE_OF[choice]  # type: ignore[assignment]
        grouped.setdefault(user_id, []).append(Vote(version_x, version_y, mapped))
    return grouped


def trained_at(conn: Connection, versions: Iterable[str]) -> dict[str, datetime]:
    """When each version's training ended (from the ledger), by bare version hash."""
    wanted = sorted(set(versions))
    if not wanted:
        return {}
    version_hash = func.right(trainings.c.output_version, 64)
    rows = conn.execute(
        select(version_hash, func.max(trainings.c.completed_at))
        .where(version_hash.in_(wanted), trainings.c.completed_at.is_not(None))
        .group_by(version_hash)
    ).all()
    return {str(version): at for version, at in rows}


def trainings_of(
    conn: Connection, user_ids: Iterable[str]
) -> dict[str, tuple[TrainingRecord, ...]]:
    """Each user's trainings in the ledger, oldest first (as ``ledger_for_user`` orders
    them, without the dataset facts), in one query for every reviewed user."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    rows = conn.execute(
        select(trainings)
        .where(trainings.c.user_id.in_(wanted))
        .order_by(trainings.c.user_id, trainings.c.created_at.asc().nulls_first(), trainings.c.id)
    )
    found: dict[str, list[TrainingRecord]] = {}
    for row in rows:
        found.setdefault(row.user_id, []).append(record_of(row._mapping))
    return {user_id: tuple(records) for user_id, records in found.items()}
