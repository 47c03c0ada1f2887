"""Repairs of a user's ``user_models`` row: previewed, admin-only, audited, undoable.

    plan_repair(action, facts, row) -> RepairPlan     pure: what would change, and why
    read_row(conn, user_id)                           the row as stored (every column)
    apply_repair(conn, actor=, plan=, reason=) -> id  write it + audit ``repair:<action>``
    undo_repair(conn, actor=, audit_id=, reason=)     put it back + audit ``undo:<action>``
    last_undoable_repair(conn, user_id)               the newest repair no undo names yet
    repairs_available(settings) -> (ok, why)          whether this deployment may repair

The five actions are the drift engine's ``RepairAction`` values (``core.drift.REPAIRS``
describes each); a finding's ``Fix.action`` names the one that cures it. A page shows
``plan_repair``'s plan, then calls ``apply_repair`` with the same plan: if the row changed
in between, the repair is refused (Conflict) and the admin previews again.

Transactions: the repair and its audit record commit together only because both are
written over the same connection (``core.audit.record`` writes in the caller's
transaction). The runtime must therefore refuse repairs when the audit log lives in
another database (OPS_DATABASE_URL ≠ DATABASE_URL); ``repairs_available`` says whether it
does, with the reason to show. On a connection with a transaction open, a repair is a
savepoint in it and the caller's commit makes it durable; otherwise it commits itself.

Modules: ``values`` (``RepairPlan``, the writable columns), ``version_repairs`` and
``row_repairs`` (one planner per action, each docstring recording its readings of the
brief), ``planning`` (``plan_repair``), ``rows`` (read, lock, write, audit values back to
column types), ``apply`` (``apply_repair``, ``undo_repair``), ``availability``.
"""

from __future__ import annotations

from core.repairs.apply import apply_repair, last_undoable_repair, undo_repair
from core.repairs.availability import repairs_available
from core.repairs.planning import plan_repair
from core.repairs.rows import read_row
from core.repairs.values import WRITABLE_COLUMNS, RepairPlan

__all__ = [
    "WRITABLE_COLUMNS",
    "RepairPlan",
    "apply_repair",
    "last_undoable_repair",
    "plan_repair",
    "read_row",
    "repairs_available",
    "undo_repair",
]
