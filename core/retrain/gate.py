"""The promotion gate: once a retrain succeeded, its new version is compared with the one
the user has (the side-by-side generator, ``core.compare``) on the app's own input and
fixed seeds, and the comparison says whether the new version is worse beyond the noise
floor. An admin promotes or keeps; ``RETRAIN_AUTO_PROMOTE`` lets the gate promote a new
version that is not worse by itself (audited as the gate).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, update

from core.compare.plan import plan_comparison, read_compare_facts
from core.compare.request import request_comparison
from core.compare.tables import comparisons
from core.errors import DashboardError
from core.gateway.gateway import ReplicateGateway
from core.ledger.sync import sync_ledger
from core.retrain.promote import current_row, promote
from core.retrain.tables import retrains
from core.roles import Actor, Role

# The same seeds for every gate, so two gates of one user are comparable.
GATE_SEEDS = (1101, 2202, 3303, 4404)
GATE_PRESET = "headshot"
GATE_POLL_SECONDS = 10.0
# Who promotes when the setting lets the gate do it (an admin-level actor in the audit log).
GATE_ACTOR = Actor("retrain-gate@sselfie-console", Role.ADMIN)


@dataclass(frozen=True)
class GateSettings:
    price_per_image_usd: float
    daily_budget_usd: float
    auto_promote: bool


@dataclass(frozen=True)
class GateReading:
    """What the finished comparison says of the new version (column B) against the
    current one (column A)."""

    not_worse: bool
    sentence: str


def read_gate(stats: Mapping[str, Any] | None) -> GateReading | None:
    """The gate's reading of a finished comparison's stats (pure); None without them."""
    if not stats or len(stats.get("columns") or []) < 2:
        return None
    current, new = stats["columns"][0], stats["columns"][1]
    floor = float(stats.get("noise_floor") or 0.0)
    if new.get("faces", 0) == 0 and current.get("faces", 0) > 0:
        return GateReading(False, "The new version finds no face where the current one does.")
    change = new.get("identity_vs_a")
    if change is None:
        return GateReading(False, "No seed shows a face in both versions: nothing to compare.")
    if change > floor:
        return GateReading(
            False,
            f"The new version is further from the user's photos by {change:.3f}, beyond the "
            f"noise floor ({floor:.3f}): worse.",
        )
    better = " and closer" if change < -floor else ""
    return GateReading(
        True,
        f"The new version is not worse{better} ({change:+.3f} against a noise floor of "
        f"{floor:.3f}).",
    )


def start_gate(
    engine: Engine, gateway: ReplicateGateway, retrain_id: int, settings: GateSettings
) -> int | None:
    """Queue the gate's comparison for a succeeded retrain (once); its id, or None when it
    cannot run (the reason is kept on the retrain; the admin still decides)."""
    with engine.connect() as conn:
        row = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one()
    if row.comparison_id is not None:
        return int(row.comparison_id)
    if row.status != "succeeded" or not row.new_version or row.decision is not None:
        return None
    actor = Actor(row.requested_by, Role(row.requested_role))
    try:
        # The new training must be in the ledger for its version's weights to be known.
        sync_ledger(ops_engine=engine, app_engine=engine, gateway=gateway)
        with engine.connect() as conn:
            facts = read_compare_facts(conn, conn, row.user_id)
        current = row.previous_version or "stored"
        plan = plan_comparison(
            gateway,
            facts,
            columns=[current, row.new_version],
            preset=GATE_PRESET,
            seeds=GATE_SEEDS,
            repeat=True,
        )
        with engine.begin() as conn:
            comparison_id = request_comparison(
                conn,
                actor,
                plan,
                confirm_token=f"retrain-gate:{retrain_id}:{uuid.uuid4().hex[:8]}",
                price_per_image_usd=settings.price_per_image_usd,
                daily_budget_usd=settings.daily_budget_usd,
            )
            conn.execute(
                update(retrains)
                .where(retrains.c.id == retrain_id, retrains.c.comparison_id.is_(None))
                .values(comparison_id=comparison_id)
            )
    except DashboardError as exc:
        with engine.begin() as conn:
            conn.execute(
                update(retrains)
                .where(retrains.c.id == retrain_id)
                .values(error=f"The gate's comparison could not run: {exc}")
            )
        return None
    return comparison_id


def gate_outcome(engine: Engine, retrain_id: int) -> tuple[str, GateReading | None]:
    """The gate comparison's status and, once finished, its reading."""
    with engine.connect() as conn:
        found = conn.execute(
            select(comparisons.c.status, comparisons.c.stats)
            .join(retrains, retrains.c.comparison_id == comparisons.c.id)
            .where(retrains.c.id == retrain_id)
        ).one_or_none()
    if found is None:
        return "none", None
    return str(found.status), read_gate(found.stats) if found.status == "finished" else None


def maybe_auto_promote(engine: Engine, retrain_id: int, settings: GateSettings) -> bool:
    """Promote by the gate when the setting allows and the new version is not worse."""
    if not settings.auto_promote:
        return False
    status, reading = gate_outcome(engine, retrain_id)
    if status != "finished" or reading is None or not reading.not_worse:
        return False
    with engine.connect() as conn:
        row = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one()
    if row.decision is not None:
        return False
    with engine.begin() as conn:
        promote(
            conn,
            GATE_ACTOR,
            retrain_id,
            expected_row=current_row(conn, row.user_id),
            reason=f"automatic (RETRAIN_AUTO_PROMOTE): {reading.sentence}",
        )
    return True
