"""Following a scan whose batches wait for photos: the ``scan.follow`` job.

Every ``FOLLOW_SECONDS`` while a scan has waiting batches, one short transaction:

- a ZIP whose facts are in the cache is done for this scan (its job may have finished
  before this scan's rows were committed, and so could not tell it);
- a ZIP still pending with no job left to read it (its job crashed for good) is failed
  for this scan, so its users are checked without the dataset checks (their SCAN_ERROR
  says why) instead of waiting forever;
- every waiting batch whose ZIPs are all settled gets its ``scan.check_batch`` job;
- the heartbeat is stamped, and the job defers itself again while batches still wait.
"""

from __future__ import annotations

from sqlalchemy import and_, any_, exists, func, select, text, update

from core.jobs.app import Queue, TaskName, defer
from core.jobs.context import JobServices
from core.ledger.datasets import FACTS_METHOD
from core.ledger.tables import dataset_facts
from core.scan.batch import finish_if_done
from core.scan.plan import follow_later
from core.scan.record import lock_scan
from core.scan.tables import scan_batches, scan_zips, scans
from core.scan.zips import recount_zips

FOLLOW_SECONDS = 2.0
LOST_ZIP = (
    "the job reading these photos ended without a result (see the worker's log); "
    "the next scan tries again"
)
# No job left to read the ZIP: none holds the lock ``core.jobs.app.zip_lock`` gives it
# (computed here by the database) and is waiting or running.
_NO_LIVE_JOB = text(
    "NOT EXISTS (SELECT 1 FROM ops.procrastinate_jobs j WHERE j.status IN ('todo', 'doing') "
    "AND j.lock = 'zip:' || left(encode(sha256(convert_to(ops.scan_zips.url, 'UTF8')), "
    "'hex'), 40))"
)


def follow_scan(services: JobServices, scan_id: int) -> bool:
    """One look at the scan (see the module docstring); True while it is still followed."""
    with services.ops_engine.begin() as conn:
        if lock_scan(conn, scan_id) != "running":
            return False
        pending = and_(scan_zips.c.scan_id == scan_id, scan_zips.c.state == "pending")
        conn.execute(
            update(scan_zips)
            .where(
                pending,
                exists(
                    select(1).where(
                        dataset_facts.c.url == scan_zips.c.url,
                        dataset_facts.c.facts["method"].as_integer() == FACTS_METHOD,
                    )
                ),
            )
            .values(state="done")
        )
        conn.execute(
            update(scan_zips).where(pending, _NO_LIVE_JOB).values(state="failed", error=LOST_ZIP)
        )
        recount_zips(conn, {scan_id})
        still_pending = select(1).where(
            scan_zips.c.scan_id == scan_batches.c.scan_id,
            scan_zips.c.state == "pending",
            scan_zips.c.url == any_(scan_batches.c.zip_urls),
        )
        ready = (
            conn.execute(
                update(scan_batches)
                .where(
                    scan_batches.c.scan_id == scan_id,
                    scan_batches.c.state == "waiting",
                    ~exists(still_pending),
                )
                .values(state="queued")
                .returning(scan_batches.c.batch_no)
            )
            .scalars()
            .all()
        )
        for number in ready:
            defer(conn, TaskName.CHECK_BATCH, queue=Queue.SCANS, scan_id=scan_id, batch_no=number)
        conn.execute(update(scans).where(scans.c.id == scan_id).values(heartbeat_at=func.now()))
        waiting = conn.execute(
            select(func.count())
            .select_from(scan_batches)
            .where(scan_batches.c.scan_id == scan_id, scan_batches.c.state == "waiting")
        ).scalar_one()
        planned = conn.execute(select(scans.c.planned).where(scans.c.id == scan_id)).scalar_one()
        finish_if_done(conn, scan_id)
        again = bool(waiting) or not planned
        if again:
            follow_later(conn, scan_id, seconds=FOLLOW_SECONDS)
    return again
