"""What the scan returns and what its read API gives the pages: frozen values only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.drift import Finding, Severity, worst_severity


@dataclass(frozen=True)
class UserScan:
    """One user's result: the findings, most serious first (empty: healthy)."""

    user_id: str
    findings: tuple[Finding, ...]

    @property
    def worst_severity(self) -> Severity | None:
        return worst_severity(self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The CLI's JSON for this user."""
        return {"user_id": self.user_id,
                "findings": [finding.to_dict() for finding in self.findings]}


@dataclass(frozen=True)
class ScanResult:
    """A finished scan: every user in scope, in the order they were read."""

    scan_id: int
    users: tuple[UserScan, ...]
    started_at: datetime
    finished_at: datetime

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class ScanSummary:
    """One ``ops.scans`` row, for "when did the last scan run, and how far is it"."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str  # running, finished, failed
    users_total: int
    users_scanned: int
    requested_by: str | None
    error: str | None = None  # why a failed scan failed


@dataclass(frozen=True)
class CodeCount:
    """How many users a scan found with one code."""

    code: str
    severity: str
    users: int


@dataclass(frozen=True)
class TrendPoint:
    """How many users had ``code`` in one finished scan (0 when it was seen in another
    scan of the trend but not in this one, so lines drop to zero instead of breaking)."""

    scan_id: int
    finished_at: datetime
    code: str
    severity: str
    users: int


@dataclass(frozen=True)
class WorstUser:
    """A user with findings, for the Fleet page's worst-users table."""

    user_id: str
    worst_severity: str
    codes: tuple[str, ...]  # in the vocabulary's order
    finding_count: int
