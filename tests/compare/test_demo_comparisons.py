"""DEMO's comparisons and votes: queued once on the first start (linked to the seeded past
retrain reviews of the versions they compare), and voted on by the demo reviewers when
they finish, so History and Review are never empty."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.compare.foreground import run_here
from core.compare.plan import read_compare_facts
from core.compare.tables import comparisons
from core.demo.comparisons import REVIEWERS, TOKEN_PREFIX, queue_demo_comparisons
from core.demo.past_retrains import PAST_RETRAINS
from core.imaging.faces import FaceReader
from core.jobs.context import JobServices
from core.ledger.reviews import retrain_reviews
from core.review.stats import summarise
from core.review.store import votes
from core.roles import Actor, Role
from tests.compare.conftest import SETTINGS, USER_OF
from tests.demo_world import DemoWorld

pytestmark = pytest.mark.timeout(300)
FIRST_START = Actor("first-start@sselfie-console", Role.ADMIN)


def test_demo_comparisons_are_queued_once_then_voted_on(
    synced_world: DemoWorld, face_reader: FaceReader
) -> None:
    said: list[str] = []
    assert (
        queue_demo_comparisons(synced_world.engine, synced_world.gateway, FIRST_START, said.append)
        == 4
    )
    assert (
        queue_demo_comparisons(synced_world.engine, synced_world.gateway, FIRST_START, said.append)
        == 0
    )
    with synced_world.engine.connect() as conn:
        queued = conn.execute(
            select(comparisons.c.id, comparisons.c.user_id, comparisons.c.status).where(
                comparisons.c.confirm_token.startswith(TOKEN_PREFIX)
            )
        ).all()
    assert {row.status for row in queued} == {"queued"}
    # The seeded past reviews of the retrains these compare are linked to them.
    comparison_of = {row.user_id: row.id for row in queued}
    compared = {USER_OF[key] for key in ("blurry_retrain", "squeezed_retrain", "stale_version")}
    with synced_world.engine.connect() as conn:
        reviews = conn.execute(
            select(retrain_reviews.c.user_id, retrain_reviews.c.comparison_id)
        ).all()
    assert len(reviews) == len(PAST_RETRAINS)
    for review in reviews:
        expected = comparison_of[review.user_id] if review.user_id in compared else None
        assert review.comparison_id == expected, review.user_id
    assert sum(review.comparison_id is not None for review in reviews) == 4  # stale twice
    services = JobServices(
        synced_world.engine, synced_world.engine, synced_world.gateway, lambda: face_reader
    )
    for row in queued:
        run_here(services, SETTINGS, row.id, deadline_seconds=240)
    with synced_world.engine.connect() as conn:
        blurry = votes(conn, user_id=USER_OF["blurry_retrain"])
        trigger = votes(conn, user_id=USER_OF["trigger_overwritten"])
    with synced_world.engine.connect() as conn:
        first_version = read_compare_facts(conn, conn, USER_OF["blurry_retrain"]).versions[0]
    assert len(blurry) == 4 * len(REVIEWERS)  # one pair per seed, each reviewer once
    duel = summarise(blurry).head_to_head
    assert duel is not None and duel.decisive == 8
    winner = duel.first if duel.first_wins > duel.second_wins else duel.second
    assert winner == first_version.version_id  # the sharp first version beats the blurry one
    # The trigger persona's columns all run one version (stored is the latest): a pair
    # needs two versions, so there is nothing to vote on there.
    assert trigger == []
