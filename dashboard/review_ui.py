"""Blind review's reads and writes, for the Review page (votes are checked in core)."""

from __future__ import annotations

from core.review.stats import ReviewSummary, summarise
from core.review.store import (
    PairToVote,
    Revealed,
    next_pair,
    record_vote,
    reviewed_users,
    votes,
)
from core.roles import Actor
from dashboard.resources import read_only, runtime, writing


def pair_for(voter: str, user_id: str | None) -> PairToVote | None:
    with read_only(runtime().ops_engine) as conn:
        return next_pair(conn, voter, user_id=user_id)


def vote(actor: Actor, pair_id: int, side: str, *, x_on_left: bool) -> Revealed:
    with writing(runtime().ops_engine) as conn, conn.begin():
        return record_vote(conn, actor, pair_id, side, x_on_left=x_on_left)


def results(user_id: str | None) -> ReviewSummary:
    with read_only(runtime().ops_engine) as conn:
        found = votes(conn, user_id=user_id)
    return summarise(found)


def users_with_votes() -> list[str]:
    with read_only(runtime().ops_engine) as conn:
        return reviewed_users(conn)
