"""The one entry point for what is known about one user: ``read_user_facts``.

It reads the row's model with every version (one model read, one versions read), the
ledger's trainings of the user with their dataset facts, the other models those
trainings went to and the decisions taken, as ``core.drift.UserFacts``. When the ledger
has a gap for the user (``ledger_gap``) it first asks Replicate about this user only: the
row's training and the user's unfinished trainings, by id (``core.ledger.sync_user``).
A gap that remains (a training only the account's listing can reveal) is handed to the
workers as one queued fleet sync (``request_history_refresh``); the facts say so and the
page shows the sync's progress. Only a caller that is not a page (a worker, a command
line) may ask for the listing here instead (``list_here``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from core.drift.facts import AppRow, ModelFacts, UserFacts
from core.errors import ReplicateError
from core.facts.gather import gather_facts
from core.facts.history import History, ledger_gap, read_history, request_history_refresh
from core.gateway.gateway import ReplicateGateway
from core.ledger.sync import SyncReport, sync_ledger, sync_user

# A gap a listing this recent did not close is not a reason to list again.
RELIST_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class KnownUser:
    """One user's facts, and how far the training history behind them can be trusted."""

    facts: UserFacts
    history: History
    refreshed: SyncReport | None = None  # the user's trainings read by id (None: no gap)
    refresh_problem: str | None = None  # reading them failed; the ledger as it was is used
    gap: str | None = None  # what the ledger still lacks for this user
    asked_sync: bool = False  # this read queued the workers' fleet sync

    @property
    def notes(self) -> tuple[str, ...]:
        """What the person should know before trusting the facts (pure)."""
        notes = []
        if self.refresh_problem:
            notes.append(self.refresh_problem)
        if self.gap:
            waiting = (
                "a worker is reading Replicate's training list; this page updates when it is done"
                if self.history.syncing
                else f"the {self.history.describe()}, and it was not there either"
            )
            notes.append(f"The training history is incomplete: {self.gap} ({waiting}).")
        return tuple(notes)


def read_user_facts(
    row: AppRow,
    *,
    app_engine: Engine,
    ops_engine: Engine,
    gateway: ReplicateGateway,
    fresh_within: timedelta,
    refresh: bool = True,
    list_here: bool = False,
    known_models: Mapping[str, ModelFacts] | None = None,
) -> KnownUser:
    """Everything known about ``row``'s user (see the module docstring).

    Raises what ``gather_facts`` raises (``ReplicateError``, ``DataRejected``). With
    ``refresh=False`` the ledger is taken as it is (the scan, whose plan just synced it).
    ``list_here``: a gap the user's trainings by id leave is closed by listing the
    account's trainings here and now (a worker or a command line); a page leaves it False
    and the listing is queued for the workers. ``known_models``: models the caller read
    from Replicate moments ago, not asked for again.
    """

    def gather(models: Mapping[str, ModelFacts] | None) -> UserFacts:
        return gather_facts(
            row, ops_conn_factory=ops_engine.connect, gateway=gateway, known_models=models
        )

    facts = gather(known_models)
    gap = ledger_gap(facts) if refresh else None
    report, problem = None, None
    if gap is not None:
        try:
            report = sync_user(
                ops_engine=ops_engine, app_engine=app_engine, gateway=gateway, user_id=row.user_id
            )
        except ReplicateError as exc:
            problem = f"This user's trainings could not be read again: {exc}"
        else:
            if report.inserted or report.updated:
                facts = gather(_models_of(facts))  # the ledger again; models already read
                gap = ledger_gap(facts)
    if gap is not None and list_here and problem is None:
        try:
            report = sync_ledger(ops_engine=ops_engine, app_engine=app_engine, gateway=gateway)
        except ReplicateError as exc:
            problem = f"The training history could not be synced: {exc}"
        else:
            facts = gather(_models_of(facts))
            gap = ledger_gap(facts)
    with ops_engine.connect() as conn:
        history = read_history(conn, fresh_within=fresh_within)
    asked = False
    if gap is not None and _listing_could_close(history):
        with ops_engine.begin() as conn:
            asked = request_history_refresh(conn)
        history = History(history.listed_at, history.listed_age, True, fresh_within)
    return KnownUser(facts, history, report, problem, gap, asked)


def _listing_could_close(history: History) -> bool:
    """Whether a fleet sync is worth asking for a gap: none waits or runs, and the last
    listing is older than ``RELIST_AFTER`` (a listing that just ran did not have the
    training either; asking again would only loop)."""
    if history.syncing:
        return False
    return history.listed_age is None or history.listed_age > RELIST_AFTER


def _models_of(facts: UserFacts) -> dict[str, ModelFacts]:
    models = dict(facts.models_by_id)
    if facts.model is not None:
        models[facts.model.model_id] = facts.model
    return models
