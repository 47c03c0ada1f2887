"""Blind review's reads and writes, for the Review page (votes are checked in core)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import streamlit as st

from core.errors import DashboardError
from core.gateway.values import ModelVersion
from core.review.names import NamedVersion, ledger_versions, named
from core.review.people import Person, emails_of, find_user
from core.review.stats import ReviewSummary, by_age, summarise, summarise_per_user
from core.review.store import (
    PairToVote,
    next_pair,
    record_vote,
    trained_at,
    trainings_of,
    votes,
    votes_by_user,
)
from core.roles import Actor
from dashboard.resources import read_only, runtime, writing

# Emails change rarely; a filter is looked up again on every vote's rerun.
PEOPLE_TTL_SECONDS = 60


def pair_for(voter: str, user_id: str | None) -> PairToVote | None:
    with read_only(runtime().ops_engine) as conn:
        return next_pair(conn, voter, user_id=user_id)


@dataclass(frozen=True)
class Reveal:
    """What a voter is shown once their vote is recorded: each side's version by name."""

    side: str  # what they chose on screen: left, right, tie or both_bad
    left: NamedVersion
    right: NamedVersion


def vote(actor: Actor, pair_id: int, side: str, *, x_on_left: bool) -> Reveal:
    with writing(runtime().ops_engine) as conn, conn.begin():
        revealed = record_vote(conn, actor, pair_id, side, x_on_left=x_on_left)
    try:
        versions = versions_of([revealed.user_id]).get(revealed.user_id, ())
    except DashboardError:
        versions = ()  # the vote is recorded: its versions are then shown by hash
    return Reveal(
        side,
        named(revealed.left_version, revealed.left_column, versions),
        named(revealed.right_version, revealed.right_column, versions),
    )


def versions_of(user_ids: Iterable[str]) -> dict[str, tuple[ModelVersion, ...]]:
    """Each user's versions from their trainings in the ledger (what names them)."""
    with read_only(runtime().ops_engine) as conn:
        found = trainings_of(conn, user_ids)
    return {user_id: ledger_versions(records) for user_id, records in found.items()}


def _app_database_key() -> str:
    return runtime().engine.url.render_as_string(hide_password=True)


@st.cache_data(ttl=PEOPLE_TTL_SECONDS, max_entries=64, show_spinner=False)
def _found_user(app_database: str, text: str) -> Person:
    with read_only(runtime().engine) as conn:
        return find_user(conn, text)


def user_named(text: str) -> Person:
    """The user the filter names: an exact user id or email (cached a minute)."""
    return _found_user(_app_database_key(), text.strip())


@st.cache_data(ttl=PEOPLE_TTL_SECONDS, max_entries=64, show_spinner=False)
def _emails(app_database: str, user_ids: tuple[str, ...]) -> dict[str, str | None]:
    with read_only(runtime().engine) as conn:
        return emails_of(conn, user_ids)


def emails(user_ids: Iterable[str]) -> dict[str, str | None]:
    """Each user's email (cached a minute); users the app does not hold are left out."""
    return _emails(_app_database_key(), tuple(sorted(set(user_ids))))


@dataclass(frozen=True)
class UserResults:
    """One user's votes summarised, and their versions (to name them)."""

    summary: ReviewSummary
    versions: tuple[ModelVersion, ...]


def results(user_id: str) -> UserResults:
    with read_only(runtime().ops_engine) as conn:
        found = votes(conn, user_id=user_id)
        records = trainings_of(conn, [user_id]).get(user_id, ())
    return UserResults(summarise(found), ledger_versions(records))


@dataclass(frozen=True)
class Overview:
    """Every reviewed user's summary, and all their votes pooled as earlier vs later."""

    per_user: dict[str, ReviewSummary]
    by_age: ReviewSummary
    unknown_age: int  # votes left out of ``by_age``: a version the ledger has no date for
    versions: dict[str, tuple[ModelVersion, ...]]  # each user's, to name them
    emails: dict[str, str | None]


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
        records = trainings_of(conn, grouped)
    pooled, unknown = by_age(grouped, dates)
    return Overview(
        summarise_per_user(grouped),
        summarise(pooled),
        unknown,
        {user_id: ledger_versions(found) for user_id, found in records.items()},
        emails(grouped),
    )
