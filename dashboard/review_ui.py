"""Blind review's reads and writes, for the Review page (votes are checked in core)."""

from __future__ import annotations

from dataclasses import dataclass

from core.review.stats import ReviewSummary, by_age, summarise, summarise_per_user
from core.review.store import (
    PairToVote,
    Revealed,
    next_pair,
    record_vote,
    trained_at,
    votes,
    votes_by_user,
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


@dataclass(frozen=True)
class Overview:
    """Every reviewed user's summary, and all their votes pooled as earlier vs later."""

    per_user: dict[str, ReviewSummary]
    by_age: ReviewSummary
    unknown_age: int  # votes left out of ``by_age``: a version the ledger has no date for


def overview() -> Overview:
    with read_only(runtime().ops_engine) as conn:
        grouped = votes_by_user(conn)
        versions = {
            version
            for user_votes in grouped.values()
            for vote in user_votes
            for version in (vote.left_version, vote.right_version)
        }
        dates = trained_at(conn, versions)
    pooled, unknown = by_age(grouped, dates)
    return Overview(summarise_per_user(grouped), summarise(pooled), unknown)
