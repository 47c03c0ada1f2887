"""How far a scan is, in words and fractions, for the pages and the CLI (pure).

A scan's phases: queued (waiting for a worker), ``sync`` (reading the training history
from Replicate), ``plan`` (splitting the users into batches: the photos to read and the
users to check become known), ``check`` (the last batches); photos are read and users
checked from the plan on, side by side. A running scan whose heartbeat is older than
the timeout is stalled: its workers died or were stopped, and the next request (or a
worker's maintenance) marks it failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.scan.values import ScanSummary


@dataclass(frozen=True)
class ScanProgress:
    """What to show about a scan right now."""

    headline: str
    photos: tuple[int, int] | None  # (read, needed) once known and non-zero
    users: tuple[int, int] | None  # (checked, in scope) once counted
    stalled: str | None = None  # why it looks dead, while it is still marked running
    photos_read: int = 0  # photos measured so far, while some trainings' are still read

    @property
    def words(self) -> str:
        parts = [self.headline]
        if self.photos is not None:
            read = f"photos of {self.photos[0]} of {self.photos[1]} trainings read"
            if self.photos_read and self.photos[0] < self.photos[1]:
                read += f" ({self.photos_read} photo{'' if self.photos_read == 1 else 's'} so far)"
            parts.append(read)
        if self.users is not None:
            parts.append(f"{self.users[0]} of {self.users[1]} users checked")
        return "; ".join(parts)


_HEADLINES = {
    "sync": "reading the training history from Replicate",
    "plan": "planning: finding the photos to read and splitting the users into batches",
    "check": "checking users",
}


def scan_progress(summary: ScanSummary, *, now: datetime, stale_after: timedelta) -> ScanProgress:
    """See the module docstring."""
    counted = summary.status != "queued" and (summary.phase != "sync" or summary.planned)
    users = (summary.users_scanned, summary.users_total) if counted else None
    photos = (summary.zips_done, summary.zips_total) if summary.zips_total else None
    if summary.status == "queued":
        return ScanProgress("queued, waiting for a worker", None, None)
    if summary.status != "running":
        return ScanProgress(summary.status, photos, users)
    headline = _HEADLINES.get(summary.phase or "", "running")
    silent = now - summary.last_sign_of_life
    stalled = None
    if silent > stale_after:
        stalled = (
            f"No sign of life from its workers for {int(silent.total_seconds())} s: "
            "they may have died or been stopped. A new scan request marks it failed; "
            "a worker that comes back carries on with it."
        )
    return ScanProgress(headline, photos, users, stalled, summary.photos_read)
