"""One user's findings computed now, not read from the last scan: the User page's diagnosis.

``gather_live`` reuses the scan's ``gather_facts`` (the row's model with every version, the
ledger's trainings with their cached dataset facts, the other models those trainings
went to). When the ledger has a gap for this user (``ledger_gap``: nothing at all, not
the row's training, or not the training behind the model's latest version) it first
syncs the ledger, which is cheap after the first full listing (newest first, down to
the newest id already known), then gathers again. Given a face reader, it also measures
the photos the dataset checks need that ``ops.dataset_facts`` lacks (the scan's
``ensure_for_users``; usually cached by an earlier scan), so the page and the scan judge
the same facts. ``diagnose_live`` runs the drift engine over the facts, or gives the
user's SCAN_ERROR when Replicate could not be read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import Engine

from core.drift import Finding, UserFacts, diagnose, scan_error
from core.drift.facts import AppRow, TrainingRecord, blank_to_none
from core.errors import ReplicateError
from core.faces import FaceReader
from core.gateway.gateway import ReplicateGateway
from core.gateway.values import is_training_id
from core.ledger.sync import SyncReport, ledger_for_user, sync_ledger
from core.scan.datasets import ensure_for_users
from core.scan.facts import gather_facts

# What the ledger's sync fetches: anything else in training_id is junk it never reads.


@dataclass(frozen=True)
class LiveFacts:
    """The facts of one user, and what the ledger sync on the way did."""

    facts: UserFacts
    synced: SyncReport | None = None  # None: the ledger had no gap, no sync ran
    sync_problem: str | None = None  # the sync failed; the facts use the ledger as it was
    dataset_problem: str | None = None  # photos the dataset checks need could not be read


@dataclass(frozen=True)
class LiveDiagnosis:
    """The findings for one user now; ``problem`` says why the facts could not be read
    (then ``facts`` is None and ``findings`` is the user's SCAN_ERROR)."""

    user_id: str
    facts: UserFacts | None
    findings: tuple[Finding, ...]
    problem: str | None = None
    synced: SyncReport | None = None
    sync_problem: str | None = None
    dataset_problem: str | None = None

    @property
    def notes(self) -> tuple[str, ...]:
        """Why the findings may be incomplete, for the page."""
        return tuple(note for note in (self.sync_problem, self.dataset_problem) if note)


def ledger_gap(facts: UserFacts) -> str | None:
    """Why the ledger looks incomplete for this user, or None.

    Pure. A gap is a training the row or Replicate names that the ledger lacks: the row's
    ``training_id``, the training behind the row's model's latest version, or any training
    at all while the row has a model or a training.
    """
    known = {record.id for record in facts.trainings}
    training_id = blank_to_none(facts.row.training_id)
    if training_id is not None and is_training_id(training_id) and training_id not in known:
        return f"the ledger lacks training {training_id} (the row's training_id)"
    model = facts.model
    latest = model.latest if model is not None else None
    if (
        model is not None
        and latest is not None
        and not any(record.version_hash == latest.id for record in facts.trainings)
    ):
        return f"the ledger lacks the training that made {model.model_id}'s latest version"
    if not facts.trainings and (facts.row.model_id is not None or training_id is not None):
        return "the ledger has no training of this user"
    return None


def gather_live(
    row: AppRow,
    *,
    app_engine: Engine,
    ops_engine: Engine,
    gateway: ReplicateGateway,
    sync: bool = True,
    face_reader: Callable[[], FaceReader] | None = None,
) -> LiveFacts:
    """The user's facts, after a ledger sync when the ledger has a gap (``sync=True``) and,
    with ``face_reader``, with the photo facts the dataset checks need.

    Raises what ``gather_facts`` raises (``ReplicateError``, ``DataRejected``). A failed
    sync or photo reading is not fatal: the facts then use what the ledger had, and
    ``sync_problem``/``dataset_problem`` say why, since findings judged on incomplete
    facts may miss something.
    """
    facts = gather_facts(row, ops_conn_factory=ops_engine.connect, gateway=gateway)
    report, sync_problem = None, None
    if sync and ledger_gap(facts) is not None:
        try:
            report = sync_ledger(app_engine=app_engine, ops_engine=ops_engine, gateway=gateway)
        except ReplicateError as exc:
            sync_problem = f"The training history could not be synced: {exc}"
        else:
            facts = gather_facts(row, ops_conn_factory=ops_engine.connect, gateway=gateway)
    dataset_problem = None
    if face_reader is not None and facts.trainings:
        dataset_problem = ensure_for_users(
            ops_engine, gateway, face_reader, {row.user_id: row.replicate_version_id}
        ).get(row.user_id)
        with ops_engine.connect() as conn:  # the ledger again, with the new photo facts
            facts = _with_trainings(facts, ledger_for_user(conn, row.user_id))
    return LiveFacts(
        facts, synced=report, sync_problem=sync_problem, dataset_problem=dataset_problem
    )


def diagnose_live(
    row: AppRow, live: LiveFacts | None = None, *, problem: str | None = None
) -> LiveDiagnosis:
    """Findings for ``row`` from ``live`` facts (the row replaced by ``row``, which the
    caller read just now), or the SCAN_ERROR for ``problem`` when the facts failed."""
    if live is None:
        message = problem or "the facts were not gathered"
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
    )


def _with_row(facts: UserFacts, row: AppRow) -> UserFacts:
    return replace(facts, row=row)


def _with_trainings(facts: UserFacts, trainings: tuple[TrainingRecord, ...]) -> UserFacts:
    return replace(facts, trainings=trainings)
