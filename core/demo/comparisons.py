"""DEMO's saved comparisons and blind votes, so History and Review are never empty.

On the first start (after the first scan is queued) four comparisons are queued for the
workers, to start once the first scan has had the machine to itself for a while
(``START_AFTER_SECONDS``; without the repeat of column A, to stay light): the
trigger-overwritten persona as stored / latest / the site's way, the blurry and the
squeezed retrains' versions against each other, and the stale persona's three versions.
Queueing them links the seeded past retrain reviews (``core.demo.past_retrains``) to the
comparison of the version their training made. When one finishes, two demo reviewers
(not the demo staff, who keep every pair to vote on themselves) cast their votes on its
pairs the way a person would from the pictures: the image whose face is closer to the
user's photos wins, a face beats no face, differences within the noise floor are ties,
two face-less images are "both bad".
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sqlalchemy import Connection, Engine, func, literal, select, update
from sqlalchemy import column as sql_column
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from core.compare.plan import plan_comparison, read_compare_facts
from core.compare.request import request_comparison
from core.compare.run import on_finish
from core.compare.scores import MIN_NOISE_FLOOR
from core.compare.tables import comparison_images, comparisons, review_pairs, review_votes
from core.demo.personas import PERSONAS
from core.errors import DashboardError
from core.gateway.gateway import ReplicateGateway
from core.jobs.app import Priority
from core.ledger.reviews import retrain_reviews
from core.ledger.sync import sync_ledger
from core.roles import Actor

TOKEN_PREFIX = "demo-comparison:"
# (persona, columns, preset)
COMPARISONS = (
    ("trigger_overwritten", "stored,latest,site", "headshot"),
    ("blurry_retrain", "v1,v2", "editorial"),
    ("squeezed_retrain", "v1,v2", "headshot"),
    ("stale_version", "v1,v2,v3", "lifestyle"),
)
SEEDS = (1111, 2222, 3333, 4444)
REVIEWERS = ("reviewer.one@demo.sselfie.test", "reviewer.two@demo.sselfie.test")
# Without the repeat of column A (its noise floor is then the minimum): 40 images, light
# enough for DEMO's one worker beside the first scan, and 20 pairs to vote on.
REPEAT = False
DEMO_PRICE = 0.03
DEMO_BUDGET = 5.0
START_AFTER_SECONDS = 90.0


def queue_demo_comparisons(
    engine: Engine, gateway: ReplicateGateway, actor: Actor, say: Callable[[str], None]
) -> int:
    """Queue the demo comparisons unless they were queued before; how many."""
    with engine.connect() as conn:
        done_before = conn.execute(
            select(comparisons.c.id).where(comparisons.c.confirm_token.startswith(TOKEN_PREFIX))
        ).first()
    if done_before is not None:
        return 0
    say("Queueing the demo comparisons")
    try:
        sync_ledger(ops_engine=engine, app_engine=engine, gateway=gateway)
    except DashboardError as exc:
        say(f"The demo comparisons were not queued: {exc}")
        return 0
    user_of = {persona.key: persona.user_id for persona in PERSONAS}
    queued = 0
    for persona, columns, preset in COMPARISONS:
        try:
            with engine.connect() as conn:
                facts = read_compare_facts(conn, conn, user_of[persona])
            plan = plan_comparison(
                gateway, facts, columns=columns, preset=preset, seeds=SEEDS, repeat=REPEAT
            )
            with engine.begin() as conn:
                request_comparison(
                    conn,
                    actor,
                    plan,
                    confirm_token=f"{TOKEN_PREFIX}{persona}",
                    price_per_image_usd=DEMO_PRICE,
                    daily_budget_usd=DEMO_BUDGET,
                    start_in_seconds=START_AFTER_SECONDS,
                    priority=Priority.DEMO,
                )
            queued += 1
        except DashboardError as exc:
            say(f"The demo comparison of {persona} was not queued: {exc}")
    with engine.begin() as conn:
        link_demo_reviews(conn)
    return queued


def link_demo_reviews(conn: Connection) -> int:
    """Link each retrain review that has no comparison to its user's demo comparison
    among whose columns is the version its training made (the seeded past reviews of
    the blurry, squeezed and stale personas' retrains); how many were linked."""
    column = func.jsonb_array_elements(comparisons.c.columns).table_valued(
        sql_column("value", JSONB)
    )
    compares_new_version = (
        select(literal(1))
        .select_from(column)
        .where(column.c.value["version_id"].astext == retrain_reviews.c.new_version)
        .exists()
    )
    linked = conn.execute(
        update(retrain_reviews)
        .where(
            retrain_reviews.c.comparison_id.is_(None),
            retrain_reviews.c.new_version.is_not(None),
            comparisons.c.confirm_token.startswith(TOKEN_PREFIX),
            comparisons.c.user_id == retrain_reviews.c.user_id,
            compares_new_version,
        )
        .values(comparison_id=comparisons.c.id)
    )
    return int(linked.rowcount or 0)


def _closeness(scores: dict[str, object] | None) -> float | None:
    if not scores or not scores.get("face_found"):
        return None
    identity = scores.get("identity")
    return float(identity) if isinstance(identity, int | float) else None


@on_finish
def _demo_reviewers_vote(conn: Connection, comparison_id: int, confirm_token: str) -> None:
    """DEMO's reviewers vote on a finished demo comparison, so Review is never empty."""
    if confirm_token.startswith(TOKEN_PREFIX):
        cast_demo_votes(conn, comparison_id)


def cast_demo_votes(conn: Connection, comparison_id: int) -> int:
    """The demo reviewers' votes on a finished demo comparison's pairs; how many."""
    pairs = conn.execute(
        select(review_pairs).where(review_pairs.c.comparison_id == comparison_id)
    ).all()
    scores: dict[int, dict[str, object] | None] = {
        int(row.id): row.scores
        for row in conn.execute(
            select(comparison_images.c.id, comparison_images.c.scores).where(
                comparison_images.c.comparison_id == comparison_id
            )
        )
    }
    chooser = random.Random(comparison_id)
    rows = []
    for pair in pairs:
        x, y = _closeness(scores.get(pair.image_x)), _closeness(scores.get(pair.image_y))
        if x is None and y is None:
            choice = "both_bad"
        elif y is None or (x is not None and x < y - MIN_NOISE_FLOOR):
            choice = "x"
        elif x is None or y < x - MIN_NOISE_FLOOR:
            choice = "y"
        else:
            choice = "tie"
        for voter in REVIEWERS:
            rows.append(
                {
                    "pair_id": pair.id,
                    "voter": voter,
                    "choice": choice,
                    "x_on_left": chooser.random() < 0.5,
                }
            )
    if not rows:
        return 0
    return len(
        conn.execute(
            pg_insert(review_votes)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(review_votes.c.id)
        ).all()
    )
