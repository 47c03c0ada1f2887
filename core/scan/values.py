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
        return {
            "user_id": self.user_id,
            "findings": [finding.to_dict() for finding in self.findings],
        }


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
    """One ``ops.scans`` row: what was asked, by whom, and how far it is."""

    id: int
    started_at: datetime  # when it was requested
    finished_at: datetime | None
    status: str  # queued, running, finished, failed, cancelled
    users_total: int
    users_scanned: int
    requested_by: str | None
    error: str | None = None  # why a failed scan failed
    scope: str = "all"  # all: a fleet scan; users: a scan of some users
    phase: str | None = None  # sync, plan, check while running
    heartbeat_at: datetime | None = None
    picked_up_at: datetime | None = None
    zips_total: int = 0
    zips_done: int = 0
    photos_read: int = 0  # photos measured so far in the ZIPs it waits for
    batches_total: int = 0
    batches_done: int = 0
    planned: bool = False
    cancelled_by: str | None = None

    @property
    def is_active(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def is_fleet(self) -> bool:
        return self.scope == "all"

    @property
    def last_sign_of_life(self) -> datetime:
        """When a worker last showed it was working on this scan (or it was requested)."""
        return self.heartbeat_at or self.picked_up_at or self.started_at


@dataclass(frozen=True)
class UserCheck:
    """The newest ended scan that checked one user, and what it found."""

    scan_id: int
    scope: str  # all: a fleet scan; users: a scan of some users (a rescan)
    status: str  # finished, or cancelled/failed after this user's batch was stored
    requested_by: str | None
    finished_at: datetime | None
    worst_severity: str | None  # None: healthy
    codes: tuple[str, ...]


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
