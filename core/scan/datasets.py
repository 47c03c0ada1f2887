"""The photo facts a scan needs, and only those: reading a ZIP takes seconds (dlib).

The dataset checks (DATASET_SHRANK, DATASET_DEGRADED) compare the training behind a
model's latest version with the succeeded training just before it. Without asking
Replicate, the training behind a model's latest version is the last succeeded training
into that model; so a user needs the last succeeded training into each of their models
and the succeeded training before each: for most users, their last two.

``ensure_for_users`` computes what ``ops.dataset_facts`` lacks for a page of users and
returns, per user, why a ZIP they need could not be read this time (a network failure,
which is not cached); the scan reports that as SCAN_ERROR next to their findings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from sqlalchemy import Connection, Engine, select

from core.faces import FaceReader
from core.gateway.gateway import ReplicateGateway
from core.ledger.datasets import cached_urls, ensure_dataset_facts, zip_trainings
from core.ledger.tables import trainings

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


def needed_zip_urls(succeeded: Sequence[SucceededTraining]) -> list[str]:
    """The ZIP URLs of one user's trainings the dataset checks can compare (pure).

    ``succeeded`` is the user's succeeded trainings, oldest first (the ledger's order).
    """
    last_into: dict[str | None, int] = {}
    for position, record in enumerate(succeeded):
        last_into[record.destination] = position
    wanted = sorted(
        {position for last in last_into.values() for position in (last - 1, last) if position >= 0}
    )
    urls = (succeeded[position].zip_url for position in wanted)
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
            row.zip_url.strip() if row.zip_url else None,
        )
        for row in conn.execute(statement)
    ]
    return {
        user_id: list(group)
        for user_id, group in groupby(records, key=lambda record: record.user_id)
    }


def needed_by_user(conn: Connection, user_ids: Iterable[str]) -> dict[str, list[str]]:
    """The ZIP URLs each user's dataset checks need (users needing none are left out)."""
    needs = {
        user_id: needed_zip_urls(records)
        for user_id, records in succeeded_trainings(conn, user_ids).items()
    }
    return {user_id: urls for user_id, urls in needs.items() if urls}


def skipped_reason(failed: Mapping[str, str], needed: Sequence[str]) -> str | None:
    """Why a user's dataset checks were skipped: some of the ZIPs they need could not be
    read (``failed``: url -> why); None when every needed ZIP was read."""
    missing = [url for url in needed if url in failed]
    if not missing:
        return None
    return (
        f"the photos of {len(missing)} training(s) could not be read, so the dataset "
        f"checks were skipped: {failed[missing[0]]}"
    )


def ensure_for_users(
    ops_engine: Engine,
    gateway: ReplicateGateway,
    reader: Callable[[], FaceReader],
    user_ids: Iterable[str],
) -> dict[str, str]:
    """Compute the missing dataset facts these users need; returns user -> why a needed
    ZIP could not be read (only users with such a failure). ``reader`` is called (dlib
    loads in about a second) only when some ZIP is not in the cache yet. Each ZIP's facts
    commit as soon as they are measured; no connection is held while downloading."""
    with ops_engine.connect() as conn:
        needs = needed_by_user(conn, user_ids)
        urls = list(dict.fromkeys(url for needed in needs.values() for url in needed))
        if not urls or cached_urls(conn, urls).issuperset(urls):
            return {}
    done = ensure_dataset_facts(
        ops_engine, gateway, reader(), zip_trainings(*urls), max_workers=DATASET_WORKERS
    )
    failures: dict[str, str] = {}
    for user_id, needed in needs.items():
        reason = skipped_reason(done.failed, needed)
        if reason is not None:
            failures[user_id] = reason
    return failures
