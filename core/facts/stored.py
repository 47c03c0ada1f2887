"""What the databases hold about one user: the app's rows and the ledger's trainings.

``read_stored_user`` is the one read of it; Compare (its versions and ZIPs), Retrain (where
a retrain goes) and the diagnosis (``gather_facts``, with Replicate's answers on top) all
start from it, so the user's history is gathered in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from core.drift.facts import TrainingRecord
from core.facts.record import UserRecord, read_user_record
from core.ledger.reads import ledger_for_user


@dataclass(frozen=True)
class StoredUser:
    """The user's ``users`` and ``user_models`` rows, and their trainings in the ledger
    (oldest first, each with its dataset's facts when known)."""

    record: UserRecord
    trainings: tuple[TrainingRecord, ...]

    @property
    def user_id(self) -> str:
        return self.record.user_id

    @property
    def model_row(self) -> Mapping[str, Any]:
        """The ``user_models`` row (empty when the user never trained)."""
        return self.record.model_row or {}


def read_stored_user(app: Connection, ops: Connection, user_id: str) -> StoredUser:
    """The user's rows (``app``) and ledger trainings (``ops``); ``NotFound`` for an
    unknown user, saying how to find the right id."""
    record = read_user_record(app, user_id)
    return StoredUser(record, ledger_for_user(ops, record.user_id))
