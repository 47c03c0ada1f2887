"""The photo facts a scan needs, and only those: reading a ZIP takes seconds (dlib).

The dataset checks (DATASET_SHRANK, DATASET_DEGRADED) compare the training behind a
model's latest version with the succeeded training just before it. Without asking
Replicate, the training behind a model's latest version is the last succeeded training
into that model; so a user needs the last succeeded training into each of their models
and the succeeded training before each: for most users, their last two. The training
behind the version the row stores is needed too (the version the app generates with,
whose photos the User page shows), when it is an older one.

``ensure_for_users`` computes what ``ops.dataset_facts`` lacks for a page of users and
returns, per user, why a ZIP they need could not be read this time (a network failure,
which is not cached); the scan reports that as SCAN_ERROR next to their findings. A ZIP
URL too long to be a key of the cache or of the scan's rows is never planned or read
(writing it would fail the whole scan); the user's note says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from sqlalchemy import Connection, Engine, func, select

from core.gateway.gateway import ReplicateGateway
from core.imaging.faces import FaceReader
from core.ledger.datasets import (
    cached_urls,
    ensure_dataset_facts,
    too_long_to_keep,
    zip_trainings,
)
from core.ledger.tables import dataset_facts, trainings
from core.redaction import stored_url
from core.versions import normalise_version

# ZIPs downloaded or read at once (each is held in memory while read; dlib runs one
# photo at a time anyway).
DATASET_WORKERS = 2


@dataclass(frozen=True)
class SucceededTraining:
    """What choosing the needed datasets reads of a succeeded training."""

    user_id: str
    id: str
    destination: str | None
    created_at: datetime | None
    zip_url: str | None
    version_hash: str | None = None  # the version it made


def needed_zip_urls(
    succeeded: Sequence[SucceededTraining], stored_version: str | None = None
) -> list[str]:
    """The ZIP URLs of one user's trainings the dataset checks can compare, and of the
    one that made ``stored_version`` (pure).

    ``succeeded`` is the user's succeeded trainings, oldest first (the ledger's order).
    """
    last_into: dict[str | None, int] = {}
    for position, record in enumerate(succeeded):
        last_into[record.destination] = position
    wanted = {
        position for last in last_into.values() for position in (last - 1, last) if position >= 0
    }
    stored = normalise_version(stored_version)
    wanted.update(
        position
        for position, record in enumerate(succeeded)
        if stored is not None and record.version_hash == stored
    )
    urls = (succeeded[position].zip_url for position in sorted(wanted))
    return list(
        dict.fromkeys(url for url in urls if url and url.startswith(("http://", "https://")))
    )


def succeeded_trainings(
    conn: Connection, user_ids: Iterable[str]
) -> dict[str, list[SucceededTraining]]:
    """The users' succeeded ledger trainings, oldest first, per user."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    url = trainings.c.input["input_images"].astext
    statement = (
        select(
            trainings.c.user_id,
            trainings.c.id,
            trainings.c.destination,
            trainings.c.created_at,
            url.label("zip_url"),
            func.right(trainings.c.output_version, 64).label("version_hash"),
        )
        .where(trainings.c.status == "succeeded", trainings.c.user_id.in_(wanted))
        .order_by(trainings.c.user_id, trainings.c.created_at.asc().nulls_first(), trainings.c.id)
    )
    records = [
        SucceededTraining(
            row.user_id,
            row.id,
            row.destination,
            row.created_at,
            # The key of the ZIP's rows, whatever an older ledger row still holds.
            stored_url(row.zip_url.strip()) if row.zip_url else None,
            row.version_hash,
        )
        for row in conn.execute(statement)
    ]
    return {
        user_id: list(group)
        for user_id, group in groupby(records, key=lambda record: record.user_id)
    }


def needed_by_user(
    conn: Connection, stored_versions: Mapping[str, str | None], *, keyable: bool = True
) -> dict[str, list[str]]:
    """The ZIP URLs each user's checks need, given user -> the version their row stores
    (users needing none are left out). ``keyable``: only URLs short enough to be a key of
    the facts cache and of the scan's rows (``too_long_to_keep``); the others can never
    be read, and ``dataset_gaps`` says so on the user's note."""
    needs = {
        user_id: [
            url
            for url in needed_zip_urls(records, stored_versions.get(user_id))
            if not keyable or too_long_to_keep(url) is None
        ]
        for user_id, records in succeeded_trainings(conn, stored_versions).items()
    }
    return {user_id: urls for user_id, urls in needs.items() if urls}


RECHECK_HINT = "python -m core.scan --recheck-datasets reads them again"


def skipped_reason(
    failed: Mapping[str, str],
    needed: Sequence[str],
    rejected: Mapping[str, str] | None = None,
    unreadable: Mapping[str, str] | None = None,
) -> str | None:
    """Why a user's dataset checks were skipped: some of the ZIPs they need could not be
    read this time (``failed``: url -> why; tried again next scan), can never be read
    (``unreadable``: url -> why; not even tried) or were rejected for good (``rejected``:
    url -> why); None when every needed ZIP was read and usable."""
    missing = [url for url in needed if url in failed]
    if missing:
        return (
            f"the photos of {len(missing)} training(s) could not be read, so the dataset "
            f"checks were skipped (the next scan tries again): {failed[missing[0]]}"
        )
    never = [url for url in needed if url in (unreadable or {})]
    if never and unreadable is not None:
        return (
            f"the photos of {len(never)} training(s) cannot be read, so the dataset checks "
            f"were skipped: {unreadable[never[0]]}"
        )
    unusable = [url for url in needed if url in (rejected or {})]
    if unusable and rejected is not None:
        return (
            f"the photos of {len(unusable)} training(s) could not be used, so the dataset "
            f"checks were skipped: {rejected[unusable[0]]} ({RECHECK_HINT})"
        )
    return None


def rejected_zips(conn: Connection, urls: Iterable[str]) -> dict[str, str]:
    """url -> why its photos could not be used, for those of ``urls`` rejected for good."""
    wanted = sorted(set(urls))
    if not wanted:
        return {}
    error = dataset_facts.c.facts["error"].astext
    rows = conn.execute(
        select(dataset_facts.c.url, error.label("error")).where(
            dataset_facts.c.url.in_(wanted), error.is_not(None)
        )
    )
    return {row.url: str(row.error) for row in rows}


def dataset_gaps(
    conn: Connection, stored_versions: Mapping[str, str | None], failed: Mapping[str, str]
) -> dict[str, str]:
    """user -> why their dataset checks are skipped (a needed ZIP failed this time, or was
    rejected for good): a SCAN_ERROR note, never a silent "healthy"."""
    needs = needed_by_user(conn, stored_versions, keyable=False)
    urls = {url for needed in needs.values() for url in needed}
    unreadable = {url: reason for url in urls if (reason := too_long_to_keep(url)) is not None}
    rejected = rejected_zips(conn, urls - set(unreadable))
    reasons = {
        user: skipped_reason(failed, needed, rejected, unreadable) for user, needed in needs.items()
    }
    return {user: reason for user, reason in reasons.items() if reason is not None}


def ensure_for_users(
    ops_engine: Engine,
    gateway: ReplicateGateway,
    reader: Callable[[], FaceReader],
    stored_versions: Mapping[str, str | None],
) -> dict[str, str]:
    """Compute the missing dataset facts these users need; returns user -> why their
    dataset checks are skipped (a needed ZIP could not be read now, or was rejected for
    good; only users with such a gap). ``reader`` is called (dlib loads in about a second)
    only when some ZIP is not in the cache yet. Each ZIP's facts commit as soon as they
    are measured; no connection is held while downloading."""
    with ops_engine.connect() as conn:
        needs = needed_by_user(conn, stored_versions)
        urls = list(dict.fromkeys(url for needed in needs.values() for url in needed))
        missing = sorted(set(urls) - cached_urls(conn, urls))
    failed: dict[str, str] = {}
    if missing:
        failed = dict(
            ensure_dataset_facts(
                ops_engine, gateway, reader(), zip_trainings(*missing), max_workers=DATASET_WORKERS
            ).failed
        )
    with ops_engine.connect() as conn:
        return dataset_gaps(conn, stored_versions, failed)
