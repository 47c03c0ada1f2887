"""The fleet scan: every user through the drift engine, stored in schema ``ops``.

A scan is requested (``request``: admin only, one fleet scan at a time by a unique index,
audited), then runs as jobs that any number of workers share (``plan``: sync the ledger,
split the users into batches; ``zips``: one job per training ZIP's photos; ``follow``:
release batches as their photos are read; ``batch``: check and store a batch of users),
each job keeping the scan's ``heartbeat`` alive. ``run_scan`` runs the same steps in the
foreground (``python -m core.scan`` without ``--background``). ``store`` is what the
pages read. Also: ``tables`` (``ops.scans``, ``scan_findings``, ``scan_users``,
``scan_batches``, ``scan_zips``), ``scope`` (which users, a page at a time), ``facts``
(one user's facts, and whether the ledger vouches for them), ``datasets`` (the photo
facts the dataset checks need), ``record`` (writes), ``services``, ``values``.
"""

from core.scan.facts import LedgerHealth, gather_facts, ledger_problem, model_facts
from core.scan.run import run_scan
from core.scan.store import (
    counts_by_code,
    last_check,
    last_fleet_scan,
    last_scan,
    latest_findings,
    trend,
    user_ids_with,
    worst_by_user,
    worst_users,
)
from core.scan.values import CodeCount, ScanResult, ScanSummary, TrendPoint, UserScan, WorstUser

__all__ = [
    "CodeCount",
    "LedgerHealth",
    "ScanResult",
    "ScanSummary",
    "TrendPoint",
    "UserScan",
    "WorstUser",
    "counts_by_code",
    "gather_facts",
    "last_check",
    "last_fleet_scan",
    "last_scan",
    "latest_findings",
    "ledger_problem",
    "model_facts",
    "run_scan",
    "trend",
    "user_ids_with",
    "worst_by_user",
    "worst_users",
]
