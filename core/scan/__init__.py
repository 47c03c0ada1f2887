"""The fleet scan: every user through the drift engine, stored in schema ``ops``.

``run_scan`` runs one (``python -m core.scan`` from a shell); ``core.scan.store`` is what
the pages read. Modules: ``tables`` (``ops.scans``, ``ops.scan_findings``,
``ops.scan_users``), ``scope`` (which users, a page at a time), ``facts`` (one user's
facts, and whether the ledger vouches for them), ``datasets`` (the photo facts the dataset
checks need), ``record`` (writes), ``run`` (the scan), ``store`` (reads), ``values``.
"""

from core.scan.facts import LedgerHealth, gather_facts, ledger_problem, model_facts
from core.scan.run import run_scan
from core.scan.store import (
    counts_by_code,
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
