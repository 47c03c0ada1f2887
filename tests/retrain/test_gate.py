"""The promotion gate's reading of a finished comparison (pure), and RETRAIN_AUTO_PROMOTE:
the gate promotes a new version that is not worse, and only then."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from core.compare.tables import comparisons
from core.retrain.gate import GATE_ACTOR, GateSettings, maybe_auto_promote, read_gate
from core.retrain.tables import retrains
from tests.jobs.conftest import World
from tests.retrain.test_follow import _run
from tests.retrain.test_submit import _app_row

pytestmark = pytest.mark.timeout(240)


def _stats(change: float | None, *, new_faces: int = 4, floor: float = 0.03) -> dict[str, Any]:
    return {
        "columns": [
            {"letter": "A", "faces": 4, "identity_vs_a": None},
            {"letter": "B", "faces": new_faces, "identity_vs_a": change},
        ],
        "noise_floor": floor,
    }


def test_the_gate_reads_worse_not_worse_and_closer() -> None:
    worse = read_gate(_stats(0.1))
    assert worse is not None and not worse.not_worse and "worse" in worse.sentence
    same = read_gate(_stats(0.02))
    assert same is not None and same.not_worse and "closer" not in same.sentence
    closer = read_gate(_stats(-0.2))
    assert closer is not None and closer.not_worse and "not worse and closer" in closer.sentence
    faceless = read_gate(_stats(None, new_faces=0))
    assert faceless is not None and not faceless.not_worse
    assert read_gate(None) is None and read_gate({"columns": []}) is None


def _with_gate(world: World, retrain_id: int, stats: dict[str, Any]) -> None:
    with world.engine.begin() as conn:
        comparison_id = conn.execute(
            insert(comparisons)
            .values(
                user_id=world.users.stale_user,
                requested_by="ada@staff.test",
                requested_role="admin",
                confirm_token=uuid.uuid4().hex,
                status="finished",
                prompt="a headshot",
                category="headshot",
                seeds=[1101],
                columns=[],
                estimate_usd=0.0,
                stats=stats,
            )
            .returning(comparisons.c.id)
        ).scalar_one()
        conn.execute(
            update(retrains).where(retrains.c.id == retrain_id).values(comparison_id=comparison_id)
        )


@pytest.mark.parametrize(
    ("auto", "change", "promoted"), [(True, -0.2, True), (True, 0.2, False), (False, -0.2, False)]
)
def test_auto_promotion_only_when_allowed_and_not_worse(
    world: World, auto: bool, change: float, promoted: bool
) -> None:
    before = _app_row(world, world.users.stale_user)
    status, row = _run(world, None)
    assert status == "succeeded"
    _with_gate(world, int(row.id), _stats(change))
    settings = GateSettings(price_per_image_usd=0.0, daily_budget_usd=0.0, auto_promote=auto)
    assert maybe_auto_promote(world.engine, int(row.id), settings) is promoted
    after = _app_row(world, world.users.stale_user)
    with world.engine.connect() as conn:
        decided = conn.execute(
            select(retrains.c.decision, retrains.c.decided_by).where(retrains.c.id == row.id)
        ).one()
    if promoted:
        assert after["replicate_version_id"] == row.new_version
        assert tuple(decided) == ("promoted", GATE_ACTOR.email)
    else:
        assert after == before and decided.decision is None
