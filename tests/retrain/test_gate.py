"""The promotion gate's reading of a finished comparison (pure), and RETRAIN_AUTO_PROMOTE:
the gate promotes a new version that is not worse, and only then."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from core.compare.tables import comparisons
from core.db import make_engine, upgrade_ops
from core.retrain.gate import (
    GATE_ACTOR,
    GateSettings,
    advance_gate,
    maybe_auto_promote,
    read_gate,
)
from core.retrain.tables import retrains
from tests.conftest import quick_gateway
from tests.db_fixtures import new_database
from tests.jobs.conftest import World
from tests.retrain.drafts import MeasuredUpload, app_row
from tests.retrain.test_follow import gate_ended, run_to_end

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


@pytest.mark.parametrize(
    ("auto", "change", "promoted"), [(True, -0.2, True), (True, 0.2, False), (False, -0.2, False)]
)
def test_auto_promotion_only_when_allowed_and_not_worse(
    world: World,
    uploads: tuple[MeasuredUpload, ...],
    auto: bool,
    change: float,
    promoted: bool,
) -> None:
    before = app_row(world, world.users.stale_user)
    status, row = run_to_end(world, uploads, None)
    assert status == "succeeded"
    gate_ended(world, int(row.id))
    with world.engine.begin() as conn:
        conn.execute(
            update(comparisons)
            .where(
                comparisons.c.id
                == select(retrains.c.comparison_id).where(retrains.c.id == row.id).scalar_subquery()
            )
            .values(stats=_stats(change))
        )
    settings = GateSettings(price_per_image_usd=0.0, daily_budget_usd=0.0, auto_promote=auto)
    assert maybe_auto_promote(world.engine, world.engine, int(row.id), settings) is promoted
    after = app_row(world, world.users.stale_user)
    with world.engine.connect() as conn:
        decided = conn.execute(
            select(retrains.c.decision, retrains.c.decided_by).where(retrains.c.id == row.id)
        ).one()
    if promoted:
        assert after["replicate_version_id"] == row.new_version
        assert tuple(decided) == ("promoted", GATE_ACTOR.email)
    else:
        assert after == before and decided.decision is None


def test_the_gate_reads_the_apps_rows_through_the_apps_engine(
    world: World,
    uploads: tuple[MeasuredUpload, ...],
    db_engine: Engine,
    db_url: str,
) -> None:
    """With schema ops in a database of its own (OPS_DATABASE_URL), the gate reads the
    user's rows from the app's database and writes its comparison to ops: it once read the
    app's rows through the ops engine and broke after the training was paid for."""
    status, row = run_to_end(world, uploads, None)
    assert status == "succeeded"
    with new_database(db_engine, db_url, prefix="opsonly") as ops_url:
        upgrade_ops(ops_url)
        ops = make_engine(ops_url)
        try:
            with ops.begin() as conn:  # the retrain as a separate ops database holds it
                conn.execute(insert(retrains).values(dict(row._mapping)))
            gateway = quick_gateway(world.sandbox_url)
            try:
                wait = advance_gate(
                    app_engine=world.engine,
                    ops_engine=ops,
                    gateway=gateway,
                    retrain_id=int(row.id),
                    settings=GateSettings(
                        price_per_image_usd=0.03, daily_budget_usd=5.0, auto_promote=False
                    ),
                )
            finally:
                gateway.close()
            with ops.connect() as conn:
                gated = conn.execute(select(retrains).where(retrains.c.id == row.id)).one()
                comparison = conn.execute(
                    select(comparisons).where(comparisons.c.id == gated.comparison_id)
                ).one()
        finally:
            ops.dispose()
    assert wait is not None and gated.error is None
    assert comparison.user_id == world.users.stale_user
    assert [column["version_id"] for column in comparison.columns] == [
        row.previous_version,
        row.new_version,
    ]
