"""A training ZIP's photos, read once for every scan that needs them.

``read_zip`` is the body of a ``dataset.read_zip`` job: one job per ZIP URL, queued with
that URL's lock (``core.jobs.app.zip_lock``), so at most one waits and one runs however
many scans or pages ask; a second run finds the facts cached and only settles. The
download and dlib run with no database connection held; the facts commit as soon as
they are measured (``core.ledger.datasets.ensure_dataset_facts``), then every scan
waiting for this URL learns how it ended (``settle_zips``) in one short transaction.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, Engine, func, select, update

from core.jobs.app import Queue, TaskName, defer, waiting_locks, zip_lock
from core.jobs.context import JobServices
from core.ledger.datasets import cached_urls, ensure_dataset_facts, zip_trainings
from core.redaction import stored_url
from core.scan.datasets import needed_by_user, rejected_zips
from core.scan.heartbeat import Heartbeat
from core.scan.tables import scan_zips, scans


def read_zip(services: JobServices, url: str, *, recheck: bool = False) -> str | None:
    """Measure ``url``'s photos unless cached (``recheck``: unless cached and usable),
    then settle the scans waiting for it; returns why they could not be read (None: read,
    or cached, or rejected for good)."""
    with services.ops_engine.connect() as conn:
        already = bool(cached_urls(conn, [url])) and not (recheck and rejected_zips(conn, [url]))
    error: str | None = None
    if not already:
        with Heartbeat(services.ops_engine, zip_url=url, every=services.heartbeat_seconds):
            done = ensure_dataset_facts(
                services.ops_engine,
                services.gateway,
                services.face_reader(),
                zip_trainings(url),
                max_workers=1,
                recheck=recheck,
                on_photo=lambda read: count_photo(services.ops_engine, read),
            )
        error = done.failed.get(url)
    with services.ops_engine.begin() as conn:
        settle_zips(conn, {url: error})
    return error


def count_photo(engine: Engine, url: str) -> None:
    """One more photo of ``url`` measured: every scan waiting for it counts it (the
    progress its page shows while the ZIP is still being read)."""
    waiting = select(scan_zips.c.scan_id).where(
        scan_zips.c.url == stored_url(url), scan_zips.c.state == "pending"
    )
    with engine.begin() as conn:
        conn.execute(
            update(scans)
            .where(scans.c.id.in_(waiting), scans.c.status == "running")
            .values(photos_read=scans.c.photos_read + 1)
        )


def settle_zips(conn: Connection, outcomes: Mapping[str, str | None]) -> None:
    """Tell every scan waiting for these ZIPs how each ended (url -> None when its facts
    are stored, else why it could not be read) and recount their progress."""
    touched: set[int] = set()
    for url, error in outcomes.items():
        rows = conn.execute(
            update(scan_zips)
            .where(scan_zips.c.url == url, scan_zips.c.state == "pending")
            .values(state="done" if error is None else "failed", error=error)
            .returning(scan_zips.c.scan_id)
        ).scalars()
        touched.update(rows)
    recount_zips(conn, touched)


def recount_zips(conn: Connection, scan_ids: set[int]) -> None:
    """Set ``zips_done`` of these scans from their ``scan_zips`` rows."""
    if not scan_ids:
        return
    done = (
        select(func.count())
        .select_from(scan_zips)
        .where(scan_zips.c.scan_id == scans.c.id, scan_zips.c.state != "pending")
        .scalar_subquery()
    )
    conn.execute(update(scans).where(scans.c.id.in_(sorted(scan_ids))).values(zips_done=done))


def ensure_zips_inline(
    services: JobServices, urls: list[str], *, max_workers: int, recheck: bool = False
) -> None:
    """The foreground scan's way: measure ``urls`` here and now (``max_workers`` at a
    time, each committed as measured), then settle them."""
    if not urls:
        return
    done = ensure_dataset_facts(
        services.ops_engine,
        services.gateway,
        services.face_reader(),
        zip_trainings(*urls),
        max_workers=max_workers,
        recheck=recheck,
        on_photo=lambda read: count_photo(services.ops_engine, read),
    )
    with services.ops_engine.begin() as conn:
        settle_zips(conn, {url: done.failed.get(url) for url in urls})


def missing_zip_urls(conn: Connection, stored_versions: Mapping[str, str | None]) -> list[str]:
    """The ZIPs these users' checks need (user -> the version their row stores) whose
    photos are not measured yet."""
    needs = needed_by_user(conn, stored_versions)
    urls = list(dict.fromkeys(url for needed in needs.values() for url in needed))
    cached = cached_urls(conn, urls)
    return [url for url in urls if url not in cached]


def queue_zip_reads(conn: Connection, urls: list[str], *, recheck: bool = False) -> None:
    """Ask the workers to read these ZIPs' photos (one job per ZIP, whoever asks;
    ``recheck``: even when they were rejected before); the caller commits. Reading photos
    changes nothing but the facts cache."""
    extra = {"recheck": True} if recheck else {}
    waiting = waiting_locks(conn, [zip_lock(url) for url in urls])
    for url in urls:
        if zip_lock(url) in waiting:
            continue  # already queued: that job reads it
        defer(
            conn,
            TaskName.READ_ZIP,
            queue=Queue.DATASETS,
            lock=zip_lock(url),
            queueing_lock=zip_lock(url),
            url=stored_url(url),  # the job asks the ZIP's source for its full URL
            **extra,
        )
