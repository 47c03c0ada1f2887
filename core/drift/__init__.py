"""The drift engine: from what the app stored and what Replicate knows, to findings.

Pure: ``diagnose(UserFacts) -> tuple[Finding, ...]`` reads frozen values and returns plain
values, with no database, network or clock. The scan/ledger module gathers the facts; the
pages render the findings; the repair module carries out a finding's ``Fix.action``.

Modules: ``codes`` (the codes, thresholds and repairs tables), ``facts`` (the inputs),
``findings`` (the outputs), ``context`` (what every check derives from the facts),
``version_checks``, ``row_checks`` and ``history_checks`` (one function per code, each
module's docstring recording its readings of the vocabulary), ``engine`` (``diagnose``).
"""

from __future__ import annotations

from core.drift.codes import (
    CODES,
    REPAIRS,
    THRESHOLDS,
    CodeSpec,
    Repair,
    RepairAction,
    Severity,
    Threshold,
    code_spec,
    threshold,
)
from core.drift.engine import diagnose, scan_error, worst_severity
from core.drift.facts import AppRow, DatasetFacts, ModelFacts, TrainingRecord, UserFacts
from core.drift.findings import Finding, Fix

__all__ = [
    "CODES",
    "REPAIRS",
    "THRESHOLDS",
    "AppRow",
    "CodeSpec",
    "DatasetFacts",
    "Finding",
    "Fix",
    "ModelFacts",
    "Repair",
    "RepairAction",
    "Severity",
    "Threshold",
    "TrainingRecord",
    "UserFacts",
    "code_spec",
    "diagnose",
    "scan_error",
    "threshold",
    "worst_severity",
]
