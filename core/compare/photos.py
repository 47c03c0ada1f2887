"""Each training photo read once: its face (the identity reference of comparisons), a
thumbnail and what its checks found, kept in ``ops.training_photos`` by ZIP URL and member.

Read by the comparisons' start step and by a job the User page queues (``photos.read``:
dlib, on the datasets queue, one job per ZIP however many ask), or already by a scan:
one reading (``core.ledger.datasets.read_dataset``) keeps both the ZIP's dataset facts
and its photos, so each photo is measured once. Downloading and dlib run with no
connection held; each ZIP's rows are written in one short transaction. A ZIP that cannot
be read leaves no rows (the next request tries again) and says why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select

from core.compare.scores import Reference
from core.errors import DashboardError, DataRejected
from core.gateway.gateway import ReplicateGateway
from core.imaging.faces import FaceReader
from core.jobs.app import Queue, TaskName, defer, waiting_locks, zip_lock
from core.ledger.datasets import (
    MAX_ZIP_BYTES,
    DatasetReading,
    read_dataset,
    store_reading,
    stored_keys,
)
from core.ledger.sources import download_address
from core.ledger.tables import training_photos
from core.redaction import redacted_url, stored_url


def read_zip_body(body: bytes, reader: FaceReader) -> DatasetReading:
    """A training ZIP's photos read (DataRejected when it cannot be opened or holds no
    file)."""
    reading = read_dataset(body, reader)
    if reading.unreadable:
        raise DataRejected(reading.facts.error or "the ZIP cannot be opened")
    if not reading.photos and not reading.skipped:
        raise DataRejected("the ZIP holds no files")
    return reading


def read_missing(
    ops_engine: Engine, gateway: ReplicateGateway, reader: FaceReader, urls: Iterable[str]
) -> list[str]:
    """Read the ZIPs not yet in ``training_photos`` (keeping their dataset facts too, so a
    scan does not read them again); the problems, one line each."""
    problems = []
    for url in urls:
        with ops_engine.connect() as conn:
            if read_urls(conn, [url]):
                continue
        try:
            address = download_address(ops_engine, gateway, url)
            body = gateway.download(address, max_bytes=MAX_ZIP_BYTES)
            reading = read_zip_body(body, reader)
        except DashboardError as exc:
            problems.append(f"the photos at {redacted_url(url)} could not be read: {exc}")
            continue
        sha = hashlib.sha256(body).hexdigest()
        with ops_engine.begin() as conn:
            store_reading(conn, url, sha, reading)
    return problems


def read_urls(conn: Connection, urls: Sequence[str]) -> set[str]:
    """Which of ``urls`` (as given, full or stored) have their photos read."""
    keys = stored_keys(urls)
    if not keys:
        return set()
    found = set(
        conn.execute(
            select(training_photos.c.zip_url)
            .where(training_photos.c.zip_url.in_(sorted(set(keys.values()))))
            .group_by(training_photos.c.zip_url)
        ).scalars()
    )
    return {url for url, key in keys.items() if key in found}


def queue_reads(conn: Connection, urls: Sequence[str]) -> list[str]:
    """Queue a read of each ZIP not read yet (one job per ZIP whoever asks); those."""
    already = read_urls(conn, urls)
    # The job is given the stored URL (its arguments are kept in schema ops): it asks the
    # ZIP's source for the full one.
    missing = list(dict.fromkeys(stored_url(url) for url in urls if url not in already))
    waiting = waiting_locks(conn, ["photos:" + zip_lock(url) for url in missing])
    for url in missing:
        if "photos:" + zip_lock(url) in waiting:
            continue  # already queued: that job reads it
        defer(
            conn,
            TaskName.READ_TRAINING_PHOTOS,
            queue=Queue.DATASETS,
            lock=zip_lock(url),
            queueing_lock="photos:" + zip_lock(url),
            url=url,
        )
    return missing


@dataclass(frozen=True)
class TrainingPhoto:
    member: str
    thumbnail: bytes | None
    failing: tuple[str, ...]
    skipped: str | None
    has_face: bool


def photos_of(conn: Connection, url: str) -> list[TrainingPhoto]:
    rows = conn.execute(
        select(training_photos)
        .where(training_photos.c.zip_url == stored_url(url))
        .order_by(training_photos.c.member)
    ).all()
    return [
        TrainingPhoto(
            member=row.member,
            thumbnail=row.thumbnail,
            failing=tuple(row.failing or ()),
            skipped=row.skipped,
            has_face=row.embedding is not None,
        )
        for row in rows
    ]


def reference_of(conn: Connection, urls: Sequence[str]) -> tuple[Reference | None, int]:
    """The identity reference from the photos of ``urls`` (and how many photos were read)."""
    rows = conn.execute(
        select(
            training_photos.c.zip_url, training_photos.c.member, training_photos.c.embedding
        ).where(training_photos.c.zip_url.in_(sorted({stored_url(url) for url in urls})))
    ).all()
    faces = {
        f"{_zip_name(row.zip_url)}/{row.member}": row.embedding for row in rows if row.embedding
    }
    return Reference.from_faces(faces), len(rows)


def _zip_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]
