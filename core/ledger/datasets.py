"""Dataset facts for training ZIPs: download, read safely, measure, cache by URL.

``read_dataset`` turns ZIP bytes into a ``DatasetReading`` (the drift engine's
``DatasetFacts`` plus each photo's verdict and thumbnail and the members skipped); a ZIP
that cannot be used becomes ``DatasetFacts(error=...)`` rather than an exception. One
reading gives both what the scan keeps (``ops.dataset_facts``) and what comparisons and
the User page keep (``ops.training_photos``, ``photo_rows``): each photo is decoded and
measured with dlib once, whichever of them reads its ZIP first.
``ensure_dataset_facts`` computes what ``ops.dataset_facts`` lacks for some trainings:
downloads and measurements run on worker threads with no database connection held; each
URL's result is written on the caller's thread as soon as it is known, in a short
transaction of its own when given an engine (so a failure later loses nothing already
measured). Each URL's failure stays with that URL. What is cached:

- a reading (also a broken ZIP, a file too big, an address no download can read): not
  fetched again, unless ``recheck`` asks, and then only recomputed when the content's
  sha256 changed; a URL too long to be a key (``too_long_to_keep``) is rejected without
  a download and cannot be cached;
- the same content under another URL: the facts are copied, not recomputed;
- NOT a network failure, a file gone for now or an unexpected error in measuring: the
  next scan tries again. A non-``DashboardError`` from a download is a bug and propagates.

Every URL is kept (and looked up) as ``core.redaction.stored_url`` gives it, never with
its userinfo or signature; a given URL that lost its secrets there is downloaded from the
full URL its caller gave, or else from its source (``core.ledger.sources``). The results
(``DatasetScan``) name each ZIP by its stored URL.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects.postgresql import insert

from core.drift.facts import DatasetFacts
from core.errors import DashboardError, DataRejected
from core.gateway.gateway import ReplicateGateway
from core.imaging import SkippedMember, ZipLimits, read_zip_photos
from core.imaging.faces import FaceReader
from core.imaging.measure import MEASURE_LONG_SIDE, PhotoFacts, measure, thumbnail
from core.ledger.photo_facts import (
    PhotoVerdict,
    facts_from_verdicts,
    judge_photos,
    measure_of,
)
from core.ledger.sources import download_address
from core.ledger.tables import dataset_facts, training_photos
from core.redaction import lost_secrets, redacted_url, storable, stored_url

log = logging.getLogger(__name__)

# Replicate's own cap on files; the app's upload route refuses ZIPs over 60 MB.
MAX_ZIP_BYTES = 100 * 1024 * 1024
# Bumped when a measure or check changes meaning: rows of older methods are recomputed.
FACTS_METHOD = 3  # 3: one measure per photo for every path, at MEASURE_LONG_SIDE
# ops.dataset_facts (and the scan's scan_zips, with its scan id) key rows by URL in btree
# indexes, whose entries PostgreSQL caps at 2,704 bytes with their headers: a longer URL
# cannot be written at all, and the write would fail the whole scan.
MAX_URL_KEY_BYTES = 2_600
# The thumbnails kept in ops.training_photos (the User page's photo grid).

T = TypeVar("T")
# Where results are written: an engine (each write its own short transaction) or a
# connection whose transaction the caller owns (tests, one-off scripts).
FactsStore = Engine | Connection


class HasInput(Protocol):
    """A training as the gateway or the ledger gives it: only its input is read here."""

    @property
    def input(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class DatasetReading:
    """A ZIP's facts, each usable photo's verdict (and thumbnail, in the same order), and
    the members that were skipped. ``unreadable``: the ZIP itself was refused (not a ZIP,
    over a limit), so what was read of it is not all it holds."""

    facts: DatasetFacts
    photos: tuple[PhotoVerdict, ...] = ()
    skipped: tuple[SkippedMember, ...] = ()
    thumbnails: tuple[bytes, ...] = ()
    measured: tuple[PhotoFacts, ...] = ()  # each photo's facts, in the same order
    unreadable: bool = False

    def to_json(self) -> dict[str, Any]:
        """What ``ops.dataset_facts.facts`` holds: the facts' summary plus the details."""
        return {
            "method": FACTS_METHOD,
            **self.facts.summary(),
            "photos": [
                {
                    "name": verdict.measure.name,
                    "short_side": verdict.measure.short_side,
                    "sharpness": round(verdict.measure.sharpness, 1),
                    "jpeg_quality": verdict.measure.jpeg_quality,
                    "faces": verdict.measure.face_count,
                    "distance_to_medoid": (
                        None
                        if verdict.distance_to_medoid is None
                        else round(verdict.distance_to_medoid, 3)
                    ),
                    "failing": list(verdict.failing),
                }
                for verdict in self.photos
            ],
            "skipped": [[member.name, member.reason] for member in self.skipped],
        }


def facts_from_json(raw: Mapping[str, Any]) -> DatasetFacts:
    """The ``DatasetFacts`` stored by ``DatasetReading.to_json`` (details are ignored)."""
    by_reason = raw.get("failing_by_reason") or {}
    return DatasetFacts(
        image_count=raw.get("image_count"),
        median_short_side=raw.get("median_short_side"),
        jpeg_quality=raw.get("jpeg_quality"),
        median_sharpness=raw.get("median_sharpness"),
        photos_failing=raw.get("photos_failing"),
        failing_by_reason={str(key): int(value) for key, value in by_reason.items()},
        error=raw.get("error"),
    )


def read_dataset(
    zip_bytes: bytes,
    reader: FaceReader,
    *,
    limits: ZipLimits | None = None,
    on_photo: Callable[[], None] | None = None,
) -> DatasetReading:
    """Measure every photo of a training ZIP once (``core.imaging.measure``); an unusable
    ZIP gives ``facts.error``. ``on_photo`` is called as each photo is measured (progress)."""
    skipped: list[SkippedMember] = []
    measured: list[PhotoFacts] = []
    thumbnails: list[bytes] = []
    try:
        for member in read_zip_photos(zip_bytes, limits=limits, long_side=MEASURE_LONG_SIDE):
            if isinstance(member, SkippedMember):
                skipped.append(member)
                continue
            # One decoded photo at a time: measured, its thumbnail made, let go.
            measured.append(measure(member, reader))
            thumbnails.append(thumbnail(member.image))
            member.image.close()
            if on_photo is not None:
                on_photo()
    except DataRejected as exc:
        return DatasetReading(DatasetFacts(error=str(exc)), skipped=tuple(skipped), unreadable=True)
    return reading_of(measured, skipped, thumbnails)


def reading_of(
    measured: Sequence[PhotoFacts], skipped: Sequence[SkippedMember], thumbnails: Sequence[bytes]
) -> DatasetReading:
    """A ZIP's reading derived from its photos' facts (pure): the dataset checks judge
    the photos together, and the dataset's facts follow from their verdicts."""
    verdicts = judge_photos([measure_of(facts) for facts in measured])
    facts = facts_from_verdicts(verdicts)
    if facts.error is not None and skipped:
        found = "; ".join(f"{m.name}: {m.reason}" for m in skipped[:5])
        facts = DatasetFacts(error=f"{facts.error}; found {found}")
    return DatasetReading(facts, verdicts, tuple(skipped), tuple(thumbnails), tuple(measured))


def photo_rows(url: str, reading: DatasetReading) -> list[dict[str, object]]:
    """The reading as ``ops.training_photos`` rows: one per photo and per skipped member
    (none for a ZIP that was refused as a whole), keyed by the stored URL."""
    if reading.unreadable:
        return []
    url = stored_url(url)
    rows: list[dict[str, object]] = [
        {
            "zip_url": url,
            "member": verdict.measure.name,
            "embedding": list(verdict.measure.embedding) if verdict.measure.embedding else None,
            "thumbnail": small,
            "failing": list(verdict.failing),
            "skipped": None,
            "facts": facts.to_dict(),
        }
        for verdict, small, facts in zip(
            reading.photos, reading.thumbnails, reading.measured, strict=True
        )
    ]
    rows += [
        {
            "zip_url": url,
            "member": member.name,
            "embedding": None,
            "thumbnail": None,
            "failing": [],
            "skipped": storable(member.reason),
            "facts": None,
        }
        for member in reading.skipped
    ]
    return rows


def store_reading(conn: Connection, url: str, sha: str, reading: DatasetReading) -> None:
    """Keep one reading of the ZIP at ``url``: its dataset facts and its photos, replacing
    what an older reading (an older method, or older content) kept."""
    _store(conn, url, sha, reading.to_json())
    rows = photo_rows(url, reading)
    if rows:
        statement = insert(training_photos).values(rows)
        conn.execute(
            statement.on_conflict_do_update(
                constraint="pk_training_photos",
                set_={
                    column: statement.excluded[column]
                    for column in ("embedding", "thumbnail", "failing", "skipped", "facts")
                }
                | {"computed_at": func.now()},
            )
        )


@dataclass(frozen=True)
class ZipOnly:
    """A training as far as the dataset facts care: only ``input.input_images``."""

    input: Mapping[str, Any]


def zip_trainings(*urls: str) -> list[ZipOnly]:
    """Stand-ins for trainings whose ZIPs are ``urls``."""
    return [ZipOnly({"input_images": url}) for url in urls]


def input_images_url(training: HasInput) -> str | None:
    """The training's ZIP URL (``input.input_images``) when it is an http(s) URL."""
    value = training.input.get("input_images")
    if isinstance(value, str) and value.strip().startswith(("http://", "https://")):
        return value.strip()
    return None


def too_long_to_keep(url: str) -> str | None:
    """Why ``url`` cannot be a key of the facts cache (too long), or None when it can."""
    size = len(url.encode("utf-8", "surrogatepass"))
    if size <= MAX_URL_KEY_BYTES:
        return None
    return (
        f"its ZIP URL is {size:,} bytes long, more than the {MAX_URL_KEY_BYTES:,} the console "
        "can keep track of, so its photos are not read; the file has to be given under a "
        "shorter URL"
    )


def stored_keys(urls: Iterable[str]) -> dict[str, str]:
    """Each of ``urls`` (as given, full or stored) -> the key it is kept under."""
    return {url: stored_url(url) for url in urls}


def load_dataset_facts(conn: Connection, urls: Iterable[str]) -> dict[str, DatasetFacts]:
    """The cached facts of those ``urls`` that have them (by each URL as given)."""
    keys = stored_keys(urls)
    wanted = sorted(set(keys.values()))
    if not wanted:
        return {}
    rows = conn.execute(
        select(dataset_facts.c.url, dataset_facts.c.facts).where(dataset_facts.c.url.in_(wanted))
    )
    found = {row.url: facts_from_json(row.facts) for row in rows}
    return {url: found[key] for url, key in keys.items() if key in found}


@dataclass(frozen=True)
class DatasetScan:
    """What ``ensure_dataset_facts`` did, per URL where it matters."""

    requested: int
    already_cached: int
    computed: tuple[str, ...] = ()
    reused: tuple[str, ...] = ()  # same content already measured under another URL
    unchanged: tuple[str, ...] = ()  # recheck: same sha256, facts kept
    # Cached as DatasetFacts(error), except a URL too long to be a key (never downloaded).
    rejected: Mapping[str, str] = field(default_factory=dict)
    failed: Mapping[str, str] = field(default_factory=dict)  # not cached: tried again next time
    seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rejected", MappingProxyType(dict(self.rejected)))
        object.__setattr__(self, "failed", MappingProxyType(dict(self.failed)))


@dataclass
class _Tally:
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def _with(store: FactsStore, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in a short transaction of its own (engine) or on the caller's."""
    if isinstance(store, Engine):
        with store.begin() as conn:
            return work(conn)
    return work(store)


def cached_urls(conn: Connection, urls: Iterable[str]) -> set[str]:
    """Which of ``urls`` (as given) have facts of the current method (nothing left to
    measure)."""
    keys = stored_keys(urls)
    wanted = sorted(set(keys.values()))
    if not wanted:
        return set()
    found = set(
        conn.execute(
            select(dataset_facts.c.url).where(
                dataset_facts.c.url.in_(wanted),
                dataset_facts.c.facts["method"].as_integer() == FACTS_METHOD,
            )
        ).scalars()
    )
    return {url for url, key in keys.items() if key in found}


def ensure_dataset_facts(
    store: FactsStore,
    gateway: ReplicateGateway,
    reader: FaceReader,
    trainings: Iterable[HasInput],
    *,
    max_workers: int = 2,
    max_bytes: int = MAX_ZIP_BYTES,
    recheck: bool = False,
    on_photo: Callable[[str], None] | None = None,
) -> DatasetScan:
    """Compute and cache the facts of every training ZIP that ``ops.dataset_facts`` lacks.

    At most ``max_workers`` downloads or readings run at once (so at most that many ZIPs
    are held in memory). ``recheck`` downloads cached URLs again and recomputes those whose
    content changed. Given an engine, each result commits on its own as soon as it is
    known; given a connection, writes go through it and the caller commits.
    ``on_photo(url)`` is called (on a reading thread) as each photo of ``url`` is measured.
    """
    started = time.perf_counter()
    # Stored URL -> where to download it: the full URL when a caller gave it.
    addresses: dict[str, str] = {}
    for given in (url for url in map(input_images_url, trainings) if url):
        key = stored_url(given)
        if key not in addresses or lost_secrets(addresses[key]):
            addresses[key] = given
    every = list(addresses)
    tally = _Tally()
    for url in every:
        if (reason := too_long_to_keep(url)) is not None:
            tally.rejected[url] = reason
    urls = [url for url in every if url not in tally.rejected]
    cached = (
        _with(
            store,
            lambda conn: {
                row.url: (row.content_sha256, row.method)
                for row in conn.execute(
                    select(
                        dataset_facts.c.url,
                        dataset_facts.c.content_sha256,
                        dataset_facts.c.facts["method"].as_integer().label("method"),
                    ).where(dataset_facts.c.url.in_(urls))
                )
            },
        )
        if urls
        else {}
    )
    current = {url for url, (_, method) in cached.items() if method == FACTS_METHOD}
    todo = deque(url for url in urls if recheck or url not in current)
    already_cached = len(urls) - len(todo)
    workers = max(1, max_workers)
    # Each pending job is a download (sha None) or a reading of downloaded content.
    pending: dict[Future[Any], tuple[str, str | None]] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dataset-facts") as pool:

        def measure(url: str, content: bytes) -> Future[Any]:
            counted = None if on_photo is None else partial(on_photo, url)
            return pool.submit(read_dataset, content, reader, on_photo=counted)

        while todo or pending:
            while todo and len(pending) < workers:
                url = todo.popleft()
                try:  # on this thread: ``store`` may be the caller's connection
                    address = download_address(store, gateway, addresses[url])
                except DashboardError as exc:  # its source cannot say for now: next scan
                    tally.failed[url] = str(exc)
                    continue
                pending[pool.submit(gateway.download, address, max_bytes=max_bytes)] = (url, None)
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                url, sha = pending.pop(future)
                if sha is None:
                    _downloaded(store, future, url, cached, tally, measure, pending)
                else:
                    _measured(store, future, url, sha, tally)
    return DatasetScan(
        requested=len(every),
        already_cached=already_cached,
        computed=tuple(tally.computed),
        reused=tuple(tally.reused),
        unchanged=tuple(tally.unchanged),
        rejected=tally.rejected,
        failed=tally.failed,
        seconds=round(time.perf_counter() - started, 3),
    )


def _downloaded(
    store: FactsStore,
    future: Future[Any],
    url: str,
    cached: Mapping[str, tuple[str | None, int | None]],
    tally: _Tally,
    submit: Callable[[str, bytes], Future[Any]],
    pending: dict[Future[Any], tuple[str, str | None]],
) -> None:
    """A download finished: cache a rejection, reuse known content, or start measuring."""
    try:
        content: bytes = future.result()
    except DataRejected as exc:  # too big, an unusable address: no point fetching again
        rejected = DatasetReading(DatasetFacts(error=str(exc))).to_json()
        _with(store, lambda conn: _store(conn, url, None, rejected))
        tally.rejected[url] = str(exc)
        return
    except DashboardError as exc:  # gone for now, network, throttling, token: next scan
        # Every download failure is in the error tree (the gateway translates them all);
        # anything else is a bug and propagates.
        tally.failed[url] = str(exc)
        return
    sha = hashlib.sha256(content).hexdigest()
    known_sha, known_method = cached.get(url, (None, None))
    if known_sha == sha and known_method == FACTS_METHOD:
        tally.unchanged.append(url)
        return
    same = _with(store, lambda conn: _copy_same_content(conn, url, sha))
    if same:
        tally.reused.append(url)
        return
    pending[submit(url, content)] = (url, sha)


def _copy_same_content(conn: Connection, url: str, sha: str) -> bool:
    """Store the facts of the same content measured under another URL; False if none."""
    same = conn.execute(
        select(dataset_facts.c.facts)
        .where(
            dataset_facts.c.content_sha256 == sha,
            dataset_facts.c.facts["method"].as_integer() == FACTS_METHOD,
        )
        .limit(1)
    ).scalar_one_or_none()
    if same is None:
        return False
    _store(conn, url, sha, same)
    return True


def _measured(store: FactsStore, future: Future[Any], url: str, sha: str, tally: _Tally) -> None:
    try:
        reading: DatasetReading = future.result()
    except Exception as exc:  # a bug or a photo Pillow/dlib chokes on: not cached
        log.exception("measuring the dataset at %s failed", redacted_url(url))
        tally.failed[url] = f"measuring the photos failed: {type(exc).__name__}: {exc}"
        return
    _with(store, lambda conn: store_reading(conn, url, sha, reading))
    if reading.facts.error is not None:
        tally.rejected[url] = reading.facts.error
    else:
        tally.computed.append(url)


def _store(conn: Connection, url: str, sha: str | None, facts: Mapping[str, Any]) -> None:
    statement = insert(dataset_facts).values(
        url=stored_url(url), content_sha256=sha, facts=storable(dict(facts))
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[dataset_facts.c.url],
            set_={
                "content_sha256": statement.excluded.content_sha256,
                "facts": statement.excluded.facts,
                "computed_at": func.now(),
            },
        )
    )
