"""The promotion gate: once a retrain succeeded, its new version is compared with the one
the user has (the side-by-side generator, ``core.compare``) on the app's own input and
fixed seeds, and the comparison says whether the new version is worse beyond the noise
floor. An admin promotes or keeps; ``RETRAIN_AUTO_PROMOTE`` lets the gate promote a new
version that is not worse by itself (audited as the gate).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import Engine, func, select

from core.compare.plan import JUDGING_PRESET, JUDGING_SEEDS, plan_comparison, read_compare_facts
from core.compare.request import request_comparison
from core.compare.scores import ComparisonStats, Reading, read_column
from core.compare.tables import comparisons
from core.errors import DashboardError, ReplicateUnavailable
from core.gateway.gateway import ReplicateGateway
from core.ledger.sync import sync_ledger
from core.retrain.promote import promote, promotion_preview
from core.retrain.states import RETRAIN
from core.retrain.tables import retrains
from core.roles import Actor, Role

log = logging.getLogger(__name__)

# What the gate's columns are to staff: A the version the user has, B the retrain's.
GATE_ROLES: Mapping[str, str] = MappingProxyType({"A": "current", "B": "new"})
# Waiting on the gate's comparison reads only our own database (its status), so the wait
# is short: an admin sees Promote within seconds of the comparison's end.
GATE_POLL_SECONDS = 3.0
# Starting it asks Replicate (the versions, the ledger): while Replicate cannot be
# reached, ask again less often.
GATE_RETRY_SECONDS = 10.0
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
    """The gate's reading of a finished comparison's stats (pure); None without them. The
    new version (column B) is read against the current one (column A) by the comparison's
    own rule (``core.compare.scores.read_column``): not worse unless it loses the likeness
    or is further from the user's photos beyond the noise floor, or nothing can be
    compared."""
    if not stats:
        return None
    found = ComparisonStats.from_json(stats)
    if len(found.columns) < 2:
        return None
    current, new = found.columns[0], found.columns[1]
    floor = found.noise_floor
    reading = read_column(current, new, floor)
    change = new.identity_vs_a
    if reading is Reading.LOSES_LIKENESS:
        return GateReading(False, "The new version finds no face where the current one does.")
    if change is None or reading in (Reading.NO_FACE_EITHER, Reading.A_LOSES_LIKENESS):
        return GateReading(False, "No seed shows a face in both versions: nothing to compare.")
    if reading is Reading.FURTHER:
        return GateReading(
            False,
            f"The new version is further from the user's photos by {change:.3f}, beyond the "
            f"noise floor ({floor:.3f}): worse.",
        )
    better = " and closer" if reading is Reading.CLOSER else ""
    return GateReading(
        True,
        f"The new version is not worse{better} ({change:+.3f} against a noise floor of "
        f"{floor:.3f}).",
    )


GATE_TOKEN_PREFIX = "retrain-gate:"


def gate_token(retrain_id: int) -> str:
    """The gate comparison's confirmation token: one per retrain, so a gate step run twice
    (a worker killed mid-way, two workers) asks for one comparison, not two."""
    return f"{GATE_TOKEN_PREFIX}{retrain_id}"


def advance_gate(
    *,
    app_engine: Engine,
    ops_engine: Engine,
    gateway: ReplicateGateway,
    retrain_id: int,
    settings: GateSettings,
) -> float | None:
    """One step of a succeeded retrain's promotion gate; seconds until the next, None when
    the gate is read (or there is none to run). Safe to run twice: the comparison is asked
    for once per retrain, and reading its end is a compare-and-set.

    Its comparison is queued (current version against the new one, the app's input, fixed
    seeds); once it ended, the gate is read (``gate_read_at``) and, when the setting
    allows and the new version is not worse, promoted by the gate. A gate that cannot run
    (no budget, a version gone) is read at once with the reason: an admin then decides
    without it, with a reason of their own."""
    with ops_engine.connect() as conn:
        row = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one()
    if (
        row.status != "succeeded"
        or not row.new_version
        or row.decision is not None
        or row.gate_read_at is not None
    ):
        return None
    if row.comparison_id is None:
        started = _start_comparison(app_engine, ops_engine, gateway, row, settings)
        if started is None:
            return None
        if isinstance(started, float):
            return started
    status, _ = gate_outcome(ops_engine, retrain_id)
    if status in ("queued", "running"):
        return GATE_POLL_SECONDS
    with ops_engine.begin() as conn:
        read = RETRAIN.move(
            conn,
            retrain_id,
            "gate_read",
            where=[retrains.c.gate_read_at.is_(None)],
            values={"gate_read_at": func.now(), "heartbeat_at": func.now()},
        )
    if read is not None:
        maybe_auto_promote(app_engine, ops_engine, retrain_id, settings)
    return None


def _start_comparison(
    app_engine: Engine,
    ops_engine: Engine,
    gateway: ReplicateGateway,
    row: Any,
    settings: GateSettings,
) -> int | float | None:
    """The gate comparison's id once asked for; seconds to wait when Replicate could not
    be reached (tried again); None when it cannot run (recorded: the gate is read)."""
    actor = Actor(row.requested_by, Role(row.requested_role))
    try:
        # The new training must be in the ledger for its version's weights to be known.
        sync_ledger(ops_engine=ops_engine, app_engine=app_engine, gateway=gateway)
        with app_engine.connect() as app, ops_engine.connect() as ops:
            facts = read_compare_facts(app, ops, row.user_id)
        current = row.previous_version or "stored"
        plan = plan_comparison(
            gateway,
            facts,
            columns=[current, row.new_version],
            preset=JUDGING_PRESET,
            seeds=JUDGING_SEEDS,
            repeat=True,
        )
        with ops_engine.begin() as conn:
            comparison_id = request_comparison(
                conn,
                actor,
                plan,
                confirm_token=gate_token(row.id),
                price_per_image_usd=settings.price_per_image_usd,
                daily_budget_usd=settings.daily_budget_usd,
            )
            RETRAIN.move(
                conn,
                row.id,
                "gate_started",
                where=[retrains.c.comparison_id.is_(None)],
                values={"comparison_id": comparison_id, "heartbeat_at": func.now()},
            )
    except ReplicateUnavailable as exc:
        log.warning("retrain %s: the gate's comparison waits for Replicate: %s", row.id, exc)
        return GATE_RETRY_SECONDS
    except DashboardError as exc:
        with ops_engine.begin() as conn:
            RETRAIN.move(
                conn,
                row.id,
                "gate_read",
                where=[retrains.c.gate_read_at.is_(None)],
                values={
                    "gate_read_at": func.now(),
                    "error": f"The gate's comparison could not run: {exc}",
                },
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


def maybe_auto_promote(
    app_engine: Engine, ops_engine: Engine, retrain_id: int, settings: GateSettings
) -> bool:
    """Promote by the gate when the setting allows and the new version is not worse."""
    if not settings.auto_promote:
        return False
    status, reading = gate_outcome(ops_engine, retrain_id)
    if status != "finished" or reading is None or not reading.not_worse:
        return False
    with app_engine.connect() as app, ops_engine.connect() as ops:
        shown = promotion_preview(app, ops, retrain_id)
    try:
        with app_engine.begin() as conn:
            promote(
                conn,
                GATE_ACTOR,
                retrain_id,
                shown=shown,
                reason=f"automatic (RETRAIN_AUTO_PROMOTE): {reading.sentence}",
            )
    except DashboardError as exc:  # the row changed meanwhile, a decision came first
        log.warning("retrain %s: the gate did not promote: %s", retrain_id, exc)
        return False
    return True
