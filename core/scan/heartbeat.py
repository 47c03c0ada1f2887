"""A running scan's heartbeat: proof, every few seconds, that a worker is working on it.

While a job of a scan runs (planning, a batch of users, a ZIP's photos that a scan waits
for), a thread of its own stamps ``ops.scans.heartbeat_at``. The thread dies with its
process, so a scan whose workers were all killed stops beating, and
``core.scan.request.reap_stale_scans`` marks it failed once the heartbeat is older than
the timeout (``SCAN_HEARTBEAT_TIMEOUT_SECONDS``). A failed beat (the database briefly
away) is logged and tried again at the next one: a heartbeat never fails the job.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from core.beats import Beating
from core.scan.tables import scan_zips, scans

log = logging.getLogger(__name__)

# Beats come at least this often, and four times within any timeout.
MAX_BEAT_SECONDS = 10.0


def beat_seconds(timeout_seconds: float) -> float:
    """How often to beat so that a live scan is never taken for a dead one."""
    return max(0.2, min(MAX_BEAT_SECONDS, timeout_seconds / 4))


class Heartbeat(Beating):
    """Context manager: beat for one scan (``scan_id``) or for every running scan that
    waits for the photos of ``zip_url``, every ``every`` seconds, until the block ends."""

    def __init__(
        self,
        ops_engine: Engine,
        *,
        scan_id: int | None = None,
        zip_url: str | None = None,
        every: float = MAX_BEAT_SECONDS,
    ) -> None:
        if (scan_id is None) == (zip_url is None):
            raise TypeError("Heartbeat needs exactly one of scan_id and zip_url")
        super().__init__(every, name="scan-heartbeat", beat_on_entry=True)
        self._engine = ops_engine
        self._scan_id = scan_id
        self._zip_url = zip_url

    def beat(self) -> None:
        """Stamp the heartbeat now; a database error is logged, not raised."""
        if self._scan_id is not None:
            which = scans.c.id == self._scan_id
        else:
            which = scans.c.id.in_(
                select(scan_zips.c.scan_id).where(
                    scan_zips.c.url == self._zip_url, scan_zips.c.state == "pending"
                )
            )
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    update(scans)
                    .where(which, scans.c.status == "running")
                    .values(heartbeat_at=func.now())
                )
        except SQLAlchemyError as exc:
            log.warning("could not stamp the scan heartbeat: %s", exc)
