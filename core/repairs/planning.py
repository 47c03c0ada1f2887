"""``plan_repair``: the previewed change a repair action would make to one user's row.

Pure: it reads the drift facts and the row as ``read_row`` returned it, and returns a
``RepairPlan`` (or raises ``DataRejected`` saying why the repair does not apply), with no
database, network or clock. The row as read is the truth about what is stored; the facts
supply what Replicate and the ledger know.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from core.drift.codes import RepairAction
from core.drift.context import Context, build_context
from core.drift.facts import UserFacts
from core.errors import DataRejected
from core.repairs.row_repairs import plan_restore_trigger_word, plan_sync_status
from core.repairs.values import RepairPlan, app_row
from core.repairs.version_repairs import (
    plan_normalise_version,
    plan_repoint_latest,
    plan_restore_last_good_version,
)

Planner = Callable[[Context, Mapping[str, Any]], RepairPlan]

PLANNERS: Mapping[RepairAction, Planner] = MappingProxyType(
    {
        RepairAction.REPOINT_LATEST: plan_repoint_latest,
        RepairAction.NORMALISE_VERSION: plan_normalise_version,
        RepairAction.RESTORE_TRIGGER_WORD: plan_restore_trigger_word,
        RepairAction.RESTORE_LAST_GOOD_VERSION: plan_restore_last_good_version,
        RepairAction.SYNC_STATUS: plan_sync_status,
    }
)


def plan_repair(action: RepairAction | str, facts: UserFacts, row: Mapping[str, Any]) -> RepairPlan:
    """What ``action`` would change in ``row`` (every column, as read), given ``facts``.

    Raises ``DataRejected`` when the action is unknown, the facts are another user's, or
    the repair does not apply (the message says why and what to do instead).
    """
    try:
        repair = RepairAction(action)
    except ValueError:
        known = ", ".join(item.value for item in RepairAction)
        raise DataRejected(f"Unknown repair {action!r}; the repairs are {known}.") from None
    if repair not in PLANNERS:
        raise DataRejected(
            f"{repair.value} is not planned from findings: it is done from the Retrain page."
        )
    stored = app_row(row)
    if facts.row.user_id != stored.user_id:
        raise DataRejected(
            f"The drift facts are for user {facts.row.user_id}, the row for "
            f"user {stored.user_id}; scan the user again."
        )
    return PLANNERS[repair](build_context(replace(facts, row=stored)), row)
