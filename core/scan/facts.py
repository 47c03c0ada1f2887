"""One user's facts for the drift engine: Replicate's answers and the ledger.

``gather_facts`` (one user's facts for ``diagnose``) lives in ``core.facts``, the one home
of what is known about a user; it is imported here for the scan's batches.

``ledger_problem`` is the pure decision whether the ledger can be trusted for one user
after this scan's sync: when the listing failed, or a training this user depends on could
not be read, findings judged on the ledger could be wrong, so the user gets SCAN_ERROR
with the reason instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from core.drift.facts import UserFacts, blank_to_none
from core.facts.gather import gather_facts, model_facts
from core.gateway.values import TERMINAL_STATUSES, is_training_id
from core.ledger.sync import SyncReport

__all__ = ["LedgerHealth", "gather_facts", "ledger_problem", "model_facts"]


@dataclass(frozen=True)
class LedgerHealth:
    """How this scan's ledger sync went, as far as single users are concerned."""

    listing_error: str | None = None  # the account's listing failed: the ledger may be stale
    training_errors: Mapping[str, str] = field(default_factory=dict)  # id -> why unread
    not_found: frozenset[str] = frozenset()  # ids Replicate answered 404 for
    interrupted: str | None = None  # an outage left some trainings unread

    def __post_init__(self) -> None:
        object.__setattr__(self, "training_errors", MappingProxyType(dict(self.training_errors)))

    @classmethod
    def from_report(cls, report: SyncReport) -> LedgerHealth:
        return cls(
            training_errors=report.errors,
            not_found=frozenset(report.not_found),
            interrupted=report.interrupted,
        )

    def to_json(self) -> dict[str, Any]:
        """What ``ops.scans.ledger_health`` holds, for the scan's batch jobs."""
        return {
            "listing_error": self.listing_error,
            "training_errors": dict(self.training_errors),
            "not_found": sorted(self.not_found),
            "interrupted": self.interrupted,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> LedgerHealth:
        if not raw:
            return cls()
        return cls(
            listing_error=raw.get("listing_error"),
            training_errors={
                str(key): str(value) for key, value in (raw.get("training_errors") or {}).items()
            },
            not_found=frozenset(str(item) for item in raw.get("not_found") or ()),
            interrupted=raw.get("interrupted"),
        )


def ledger_problem(facts: UserFacts, health: LedgerHealth) -> str | None:
    """Why the ledger cannot be trusted for this user, or None when it can.

    - The listing failed: the ledger is what earlier syncs saw. It still vouches for a
      user when it holds the row's ``training_id`` and the training that made the row's
      model's latest version; otherwise a newer training is missing from it.
    - A training of this user (or the row's ``training_id``) could not be read, or an
      outage stopped the sync before the row's training or an unfinished one was read.
    """
    known = {record.id for record in facts.trainings}
    training_id = blank_to_none(facts.row.training_id)
    row_training = training_id if training_id and is_training_id(training_id) else None
    if health.listing_error is not None:
        missing = _missing_from_ledger(facts, known, row_training)
        if missing is not None:
            return (
                f"the training history could not be read from Replicate "
                f"({health.listing_error}); {missing}"
            )
        return None
    for record in facts.trainings:
        if record.id in health.training_errors:
            return f"training {record.id} could not be read: {health.training_errors[record.id]}"
    if row_training is None:
        return None
    if row_training in health.training_errors:
        return (
            f"training {row_training} (the row's training_id) could not be read: "
            f"{health.training_errors[row_training]}"
        )
    if health.interrupted is not None:
        unread = row_training not in known and row_training not in health.not_found
        unfinished = any(record.status not in TERMINAL_STATUSES for record in facts.trainings)
        if unread or unfinished:
            return f"the sync stopped before this user's trainings were read: {health.interrupted}"
    return None


def _missing_from_ledger(facts: UserFacts, known: set[str], row_training: str | None) -> str | None:
    if row_training is not None and row_training not in known:
        return f"the ledger lacks training {row_training} (the row's training_id)"
    model = facts.model
    latest = model.latest if model is not None else None
    if model is None or latest is None:
        return None
    if any(record.version_hash == latest.id for record in facts.trainings):
        return None
    return f"the ledger lacks the training that made {model.model_id}'s latest version"
