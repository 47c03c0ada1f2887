"""One user's findings computed now, not read from the last scan: the User page's diagnosis.

``gather_live`` reads the user's facts through ``core.facts.read_user_facts`` (the row's
model with every version, the ledger's trainings with their cached dataset facts, the
other models those trainings went to; when the ledger has a gap for this user, their
trainings by id first, and a fleet sync queued for the workers if that is not enough).
Given a face reader, it also measures the photos the dataset checks need that
``ops.dataset_facts`` lacks (the scan's ``ensure_for_users``; usually cached by an earlier
scan), so the page and the scan judge the same facts. ``diagnose_live`` runs the drift
engine over the facts, or gives the user's SCAN_ERROR when Replicate could not be read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import Engine

from core.drift import Finding, UserFacts, diagnose, scan_error
from core.drift.facts import AppRow, ModelFacts, TrainingRecord
from core.errors import Problem
from core.facts import ledger_gap, read_user_facts
from core.facts.history import HISTORY_FRESH
from core.gateway.gateway import ReplicateGateway
from core.imaging.faces import FaceReader
from core.ledger.sync import SyncReport, ledger_for_user
from core.scan.datasets import ensure_for_users

__all__ = ["LiveDiagnosis", "LiveFacts", "diagnose_live", "gather_live", "ledger_gap"]


@dataclass(frozen=True)
class LiveFacts:
    """The facts of one user, and what refreshing their training history did."""

    facts: UserFacts
    synced: SyncReport | None = None  # the user's trainings read by id (None: no gap)
    sync_problem: str | None = None  # why the ledger may be incomplete for this user
    dataset_problem: str | None = None  # photos the dataset checks need could not be read
    history_syncing: bool = False  # a gap remains and the workers are syncing the ledger


@dataclass(frozen=True)
class LiveDiagnosis:
    """The findings for one user now; ``problem`` says why the facts could not be read
    (then ``facts`` is None and ``findings`` is the user's SCAN_ERROR)."""

    user_id: str
    facts: UserFacts | None
    findings: tuple[Finding, ...]
    problem: Problem | None = None
    synced: SyncReport | None = None
    sync_problem: str | None = None
    dataset_problem: str | None = None
    history_syncing: bool = False

    @property
    def notes(self) -> tuple[str, ...]:
        """Why the findings may be incomplete, for the page."""
        return tuple(note for note in (self.sync_problem, self.dataset_problem) if note)


def gather_live(
    row: AppRow,
    *,
    app_engine: Engine,
    ops_engine: Engine,
    gateway: ReplicateGateway,
    sync: bool = True,
    face_reader: Callable[[], FaceReader] | None = None,
    fresh_within: timedelta = HISTORY_FRESH,
    list_here: bool = True,
    known_models: Mapping[str, ModelFacts] | None = None,
) -> LiveFacts:
    """The user's facts, with their trainings read again when the ledger has a gap
    (``sync=True``) and, with ``face_reader``, with the photo facts the dataset checks need.

    Raises what ``gather_facts`` raises (``ReplicateError``, ``DataRejected``). A failed
    refresh or photo reading is not fatal: the facts then use what the ledger had, and
    ``sync_problem``/``dataset_problem`` say why, since findings judged on incomplete
    facts may miss something. ``list_here`` (see ``read_user_facts``): the User page
    passes False, so that it never lists the fleet.
    """
    known = read_user_facts(
        row,
        app_engine=app_engine,
        ops_engine=ops_engine,
        gateway=gateway,
        fresh_within=fresh_within,
        refresh=sync,
        list_here=list_here,
        known_models=known_models,
    )
    facts = known.facts
    dataset_problem = None
    if face_reader is not None and facts.trainings:
        dataset_problem = ensure_for_users(
            ops_engine, gateway, face_reader, {row.user_id: row.replicate_version_id}
        ).get(row.user_id)
        with ops_engine.connect() as conn:  # the ledger again, with the new photo facts
            facts = _with_trainings(facts, ledger_for_user(conn, row.user_id))
    return LiveFacts(
        facts,
        synced=known.refreshed,
        sync_problem=" ".join(known.notes) or None,
        dataset_problem=dataset_problem,
        history_syncing=known.gap is not None and known.history.syncing,
    )


def diagnose_live(
    row: AppRow, live: LiveFacts | None = None, *, problem: str | None = None
) -> LiveDiagnosis:
    """Findings for ``row`` from ``live`` facts (the row replaced by ``row``, which the
    caller read just now), or the SCAN_ERROR for ``problem`` when the facts failed."""
    if live is None:
        message = Problem.said(problem or "the facts were not gathered")
        return LiveDiagnosis(
            row.user_id, None, (scan_error(row.user_id, message),), problem=message
        )
    facts = live.facts if live.facts.row == row else _with_row(live.facts, row)
    return LiveDiagnosis(
        row.user_id,
        facts,
        diagnose(facts),
        synced=live.synced,
        sync_problem=live.sync_problem,
        dataset_problem=live.dataset_problem,
        history_syncing=live.history_syncing,
    )


def _with_row(facts: UserFacts, row: AppRow) -> UserFacts:
    return replace(facts, row=row)


def _with_trainings(facts: UserFacts, trainings: tuple[TrainingRecord, ...]) -> UserFacts:
    return replace(facts, trainings=trainings)
