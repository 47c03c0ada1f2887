"""The training ledger: every Replicate training of the account, kept in ``ops.trainings``.

The app overwrites its one ``user_models`` row per user on every retrain, so the history
the drift engine needs exists only on Replicate. ``sync_trainings`` copies it here:

1. the account's trainings, newest first: every page the first time (or with
   ``full=True``), afterwards only down to the newest id already listed (a bookmark in
   ``ops.ledger_state``, moved only after a listing completed);
2. every ``training_id`` in the app's rows the ledger does not have yet (trainings of
   another account, or older than the listing reaches), one GET each; a 404 is reported
   and remembered (``ops.trainings_not_found``), so later syncs skip that id for
   ``NOT_FOUND_RECHECK`` (a full sync asks again);
3. a refresh of ledger rows that were not terminal, so ``processing`` becomes final.

Each training is attached to a user by ``core.ledger.attach``; the strongest evidence
ever seen wins, so a later sync never loses an attachment the app's rows no longer
support (the app forgets, the ledger must not), and trainings still unattached are tried
again each sync. The app's tables are only read.

A sync reads the databases (``read_sync_plan``), then Replicate with no connection held
(``fetch_sync``), then writes in one short transaction (``write_sync``); ``sync_ledger``
runs the three on engines, ``sync_trainings`` on a connection the caller owns.
``ledger_for_user`` gives the drift engine its ``TrainingRecord`` values.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Text,
    func,
    select,
    update,
)

from core.errors import DashboardError, RateLimited, ReplicateNotFound, ReplicateUnavailable
from core.gateway.gateway import ReplicateGateway
from core.gateway.limits import map_bounded
from core.gateway.values import TERMINAL_STATUSES, Training, is_training_id
from core.ledger.attach import attach
from core.ledger.reads import (
    LISTED_AT_KEY,
    app_rows,
    candidate_rows,
    last_listing,
    ledger_for_user,
    record_of,
    version_owner,
)
from core.ledger.store import (
    chunks,
    ledger_users,
    read_state,
    remember_missing,
    row_values,
    set_state,
    upsert,
)
from core.ledger.tables import dataset_facts, ledger_state, trainings, trainings_not_found
from core.schema import user_models

NEWEST_LISTED_KEY = "trainings.newest_listed_id"
# Trainings fetched one by one run this many at a time; after a batch that met an outage
# the rest wait for the next sync instead of each spending the retry budget.
FETCH_BATCH = 8
# Upserts and candidate-row lookups go in chunks of this many trainings.
CHUNK = 500
# An id Replicate answered 404 for is not asked about again for this long (the app's
# rows keep naming it; asking at every sync cost a page one request per such row).
NOT_FOUND_RECHECK = timedelta(days=1)

# What a Replicate id looks like; anything else in training_id is junk, not fetched.

T = TypeVar("T")

# Read here and by every caller that imported them from the sync module.
__all__ = [
    "LISTED_AT_KEY",
    "SyncReport",
    "app_rows",
    "last_listing",
    "ledger_for_user",
    "sync_ledger",
    "sync_trainings",
    "sync_user",
    "sync_user_trainings",
    "version_owner",
]


@dataclass(frozen=True)
class SyncReport:
    """What one sync did."""

    full_listing: bool
    listed: int  # trainings read from the account's listing
    fetched_for_rows: int  # training ids found only in user_models, read one by one
    refreshed: int  # ledger rows that were not terminal, read again
    inserted: int
    updated: int
    attached: Mapping[str, int] = field(default_factory=dict)  # newly attached, by rule
    unattached: int = 0  # ledger rows no rule could attach (yet)
    not_found: tuple[str, ...] = ()  # ids Replicate answered 404 for
    skipped_not_found: int = 0  # ids it answered 404 for lately: not asked again
    errors: Mapping[str, str] = field(default_factory=dict)  # id -> message
    interrupted: str | None = None  # why some fetches were left for the next sync
    seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "attached", MappingProxyType(dict(self.attached)))
        object.__setattr__(self, "errors", MappingProxyType(dict(self.errors)))


@dataclass
class _Fetched:
    trainings: dict[str, Training] = field(default_factory=dict)
    not_found: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    interrupted: str | None = None


@dataclass(frozen=True)
class SyncPlan:
    """What a sync reads from the databases before asking Replicate anything."""

    started: float  # perf_counter at the start, for the report's seconds
    bookmark: str | None  # list down to this id (None: every page)
    row_ids: frozenset[str]  # training ids named by the app's rows
    in_ledger: frozenset[str]  # those of them the ledger already holds
    open_ids: tuple[str, ...]  # ledger rows whose training was not yet terminal
    known_missing: frozenset[str] = frozenset()  # answered 404 lately: not asked again
    listing: bool = True  # False: one user's trainings by id only (``sync_user``)
    # The listing also stops at the first training created before this (the watch: its
    # bookmark's creation, so a bookmark Replicate no longer lists never means every page).
    listed_after: datetime | None = None


@dataclass(frozen=True)
class SyncFetch:
    """What a sync read from Replicate."""

    listed: tuple[Training, ...]
    from_rows: _Fetched
    refreshed: _Fetched

    @property
    def seen(self) -> dict[str, Training]:
        found = {training.id: training for training in self.listed}
        found.update(self.from_rows.trainings)
        found.update(self.refreshed.trainings)
        return found


def read_sync_plan(
    conn: Connection, *, app_conn: Connection | None = None, full: bool = False
) -> SyncPlan:
    """The database side of a sync's start: the bookmark, the app's training ids, the
    ledger's open trainings. ``app_conn`` reaches the app's tables when they live in
    another database (``OPS_DATABASE_URL``), else ``conn`` is used for both."""
    started = time.perf_counter()
    app = app_conn or conn
    row_ids = frozenset(
        app.execute(
            select(func.btrim(user_models.c.training_id)).where(
                func.coalesce(func.btrim(user_models.c.training_id), "") != ""
            )
        ).scalars()
    )
    open_ids = tuple(
        conn.execute(
            select(trainings.c.id)
            .where(trainings.c.status.not_in(sorted(TERMINAL_STATUSES)))
            .order_by(trainings.c.id)
        ).scalars()
    )
    return SyncPlan(
        started=started,
        bookmark=None if full else read_state(conn, NEWEST_LISTED_KEY),
        row_ids=row_ids,
        in_ledger=frozenset(ledger_users(conn, row_ids)),
        open_ids=open_ids,
        known_missing=frozenset() if full else _known_missing(conn),
    )


def read_user_sync_plan(
    conn: Connection, user_id: str, *, app_conn: Connection | None = None
) -> SyncPlan:
    """A sync of one user's trainings by id, with no listing: the row's ``training_id``
    when the ledger lacks it, and the user's trainings that were not yet terminal. What
    the account's listing would add (trainings nobody's row names any more) waits for the
    workers' fleet sync."""
    started = time.perf_counter()
    app = app_conn or conn
    row_ids = frozenset(
        app.execute(
            select(func.btrim(user_models.c.training_id)).where(
                user_models.c.user_id == user_id,
                func.coalesce(func.btrim(user_models.c.training_id), "") != "",
            )
        ).scalars()
    )
    open_ids = tuple(
        conn.execute(
            select(trainings.c.id)
            .where(
                trainings.c.user_id == user_id,
                trainings.c.status.not_in(sorted(TERMINAL_STATUSES)),
            )
            .order_by(trainings.c.id)
        ).scalars()
    )
    return SyncPlan(
        started=started,
        bookmark=None,
        row_ids=row_ids,
        in_ledger=frozenset(ledger_users(conn, row_ids)),
        open_ids=open_ids,
        known_missing=_known_missing(conn),
        listing=False,
    )


def _known_missing(conn: Connection) -> frozenset[str]:
    """The ids Replicate answered 404 for within ``NOT_FOUND_RECHECK``."""
    return frozenset(
        conn.execute(
            select(trainings_not_found.c.id).where(
                trainings_not_found.c.last_answered_at > func.now() - NOT_FOUND_RECHECK
            )
        ).scalars()
    )


def fetch_sync(gateway: ReplicateGateway, plan: SyncPlan) -> SyncFetch:
    """The Replicate side of a sync: the listing (raises ``ReplicateError`` when it fails),
    the trainings only the app's rows name, and a refresh of the open ones. No database."""
    listed = (
        tuple(gateway.list_trainings(until_id=plan.bookmark, created_after=plan.listed_after))
        if plan.listing
        else ()
    )
    listed_ids = {training.id for training in listed}
    junk = {training_id for training_id in plan.row_ids if not is_training_id(training_id)}
    asked = plan.row_ids - plan.in_ledger - listed_ids - junk - plan.known_missing
    from_rows = _fetch(gateway, sorted(asked))
    from_rows.errors.update(
        {
            training_id: "not a Replicate training id; not fetched"
            for training_id in sorted(junk)
            if training_id not in plan.in_ledger
        }
    )
    known = listed_ids | from_rows.trainings.keys()
    open_ids = [training_id for training_id in plan.open_ids if training_id not in known]
    refreshed = (
        _fetch(gateway, open_ids)
        if from_rows.interrupted is None
        else _Fetched(interrupted=from_rows.interrupted)
    )
    return SyncFetch(listed, from_rows, refreshed)


def write_sync(
    conn: Connection, plan: SyncPlan, fetched: SyncFetch, *, app_conn: Connection | None = None
) -> SyncReport:
    """The database side of a sync's end: attach and upsert what was read, move the
    bookmark. Writes through ``conn``; the caller commits."""
    app = app_conn or conn
    seen = fetched.seen
    existing = ledger_users(conn, seen.keys())
    attached: Counter[str] = Counter()
    for chunk in chunks(list(seen.values()), CHUNK):
        rows = candidate_rows(app, chunk)
        values = [row_values(training, attach(training, rows)) for training in chunk]
        attached.update(
            value["attached_by"]
            for value in values
            if value["attached_by"] and existing.get(value["id"]) is None
        )
        upsert(conn, values)
    attached.update(_reattach(conn, app, exclude=seen.keys()))
    if fetched.listed:
        set_state(conn, NEWEST_LISTED_KEY, fetched.listed[0].id)
    if plan.listing:  # the listing completed (fetch_sync raises when it does not)
        set_state(conn, LISTED_AT_KEY, func.now().cast(Text))
    remember_missing(conn, fetched.from_rows.not_found + fetched.refreshed.not_found, seen)
    unattached = conn.execute(
        select(func.count()).select_from(trainings).where(trainings.c.user_id.is_(None))
    ).scalar_one()
    from_rows, refreshed = fetched.from_rows, fetched.refreshed
    return SyncReport(
        full_listing=plan.listing and plan.bookmark is None,
        listed=len(fetched.listed),
        fetched_for_rows=len(from_rows.trainings),
        refreshed=len(refreshed.trainings),
        inserted=len(seen.keys() - existing),
        updated=len(seen.keys() & existing),
        attached=dict(attached),
        unattached=int(unattached),
        not_found=tuple(from_rows.not_found + refreshed.not_found),
        skipped_not_found=len(
            ((plan.row_ids - plan.in_ledger) & plan.known_missing) - fetched.seen.keys()
        ),
        errors={**from_rows.errors, **refreshed.errors},
        interrupted=refreshed.interrupted,
        seconds=round(time.perf_counter() - plan.started, 3),
    )


def sync_trainings(
    conn: Connection,
    gateway: ReplicateGateway,
    *,
    full: bool = False,
    app_conn: Connection | None = None,
) -> SyncReport:
    """Bring ``ops.trainings`` up to date with Replicate on the caller's connection and
    transaction (tests, one-off scripts); see the module docstring. Services call
    ``sync_ledger``, which holds no connection while Replicate is read.

    A failed listing raises (``ReplicateError``); single fetches fail per id, in the report.
    """
    plan = read_sync_plan(conn, app_conn=app_conn, full=full)
    return write_sync(conn, plan, fetch_sync(gateway, plan), app_conn=app_conn)


def sync_ledger(
    *, ops_engine: Engine, app_engine: Engine, gateway: ReplicateGateway, full: bool = False
) -> SyncReport:
    """One sync, committed: read the databases, let go of them, read Replicate, then
    write everything in one short transaction (schema ops; the app's rows only read)."""
    return _sync_on_engines(
        ops_engine,
        app_engine,
        gateway,
        lambda conn, app_conn: read_sync_plan(conn, app_conn=app_conn, full=full),
    )


def _sync_on_engines(
    ops_engine: Engine,
    app_engine: Engine,
    gateway: ReplicateGateway,
    read_plan: Callable[[Connection, Connection | None], SyncPlan],
) -> SyncReport:
    """Plan on the databases, let go of them, read Replicate, write in one transaction
    (the app's tables through their own engine when they live elsewhere)."""
    with ops_engine.connect() as ops_conn:
        if ops_engine is app_engine:
            plan = read_plan(ops_conn, None)
        else:
            with app_engine.connect() as app_conn:
                plan = read_plan(ops_conn, app_conn)
    if not plan.listing and _nothing_to_ask(plan):
        return _nothing_to_do(plan)
    fetched = fetch_sync(gateway, plan)
    with ops_engine.begin() as ops_conn:
        if ops_engine is app_engine:
            return write_sync(ops_conn, plan, fetched)
        with app_engine.connect() as app_conn:
            return write_sync(ops_conn, plan, fetched, app_conn=app_conn)


def sync_user_trainings(
    conn: Connection, gateway: ReplicateGateway, user_id: str, *, app_conn: Connection | None = None
) -> SyncReport:
    """``sync_user`` on the caller's connection and transaction (tests, scripts)."""
    plan = read_user_sync_plan(conn, user_id, app_conn=app_conn)
    if _nothing_to_ask(plan):
        return _nothing_to_do(plan)
    return write_sync(conn, plan, fetch_sync(gateway, plan), app_conn=app_conn)


def sync_user(
    *, ops_engine: Engine, app_engine: Engine, gateway: ReplicateGateway, user_id: str
) -> SyncReport:
    """One user's trainings by id (``read_user_sync_plan``), committed, the way
    ``sync_ledger`` runs a fleet sync: no connection held while Replicate is read."""
    return _sync_on_engines(
        ops_engine,
        app_engine,
        gateway,
        lambda conn, app_conn: read_user_sync_plan(conn, user_id, app_conn=app_conn),
    )


def _nothing_to_ask(plan: SyncPlan) -> bool:
    return not (plan.row_ids - plan.in_ledger - plan.known_missing) and not plan.open_ids


def _nothing_to_do(plan: SyncPlan) -> SyncReport:
    return SyncReport(
        full_listing=False,
        listed=0,
        fetched_for_rows=0,
        refreshed=0,
        inserted=0,
        updated=0,
        skipped_not_found=len((plan.row_ids - plan.in_ledger) & plan.known_missing),
        seconds=round(time.perf_counter() - plan.started, 3),
    )


# -- attaching -----------------------------------------------------------------------------


def _reattach(conn: Connection, app: Connection, *, exclude: Iterable[str]) -> Counter[str]:
    """Try the rules again on unattached ledger rows (the app's rows may name them now)."""
    skip = set(exclude)
    loose = [
        record
        for record in (
            record_of(row._mapping)
            for row in conn.execute(select(trainings).where(trainings.c.user_id.is_(None)))
        )
        if record.id not in skip
    ]
    found: Counter[str] = Counter()
    for chunk in chunks(loose, CHUNK):
        rows = candidate_rows(app, chunk)
        for record in chunk:
            user_id, rule = attach(record, rows)
            if user_id is None or rule is None:
                continue
            conn.execute(
                update(trainings)
                .where(trainings.c.id == record.id, trainings.c.user_id.is_(None))
                .values(user_id=user_id, attached_by=rule)
            )
            found[rule] += 1
    return found


# -- Replicate -----------------------------------------------------------------------------


def _fetch(gateway: ReplicateGateway, ids: Sequence[str]) -> _Fetched:
    """Read trainings one by one, a few at a time; a 404 or an error stays with its id,
    and an outage stops the rest (they are read on the next sync)."""
    fetched = _Fetched()
    for batch in chunks(list(ids), FETCH_BATCH):
        for outcome in map_bounded(gateway.get_training, batch, max_workers=FETCH_BATCH):
            error = outcome.error
            if error is None and outcome.value is not None:
                fetched.trainings[outcome.item] = outcome.value
            elif isinstance(error, ReplicateNotFound):
                fetched.not_found.append(outcome.item)
            elif isinstance(error, DashboardError):
                fetched.errors[outcome.item] = str(error)
                if isinstance(error, ReplicateUnavailable | RateLimited):
                    fetched.interrupted = str(error)
            elif error is not None:
                raise error  # a bug, not a Replicate failure
        if fetched.interrupted is not None:
            break
    return fetched


def forget_ledger(conn: Connection) -> None:
    """Drop everything the ledger knows (the demo's reset replaces the sandbox world, so
    trainings and dataset facts of the old one would attach to the new personas)."""
    for table in (trainings, dataset_facts, ledger_state):
        conn.execute(table.delete())
