"""Leases on paid steps: who holds a claim on a create, and until when.

Replicate has no idempotency key, so a paid create (a training, a prediction, the ZIP a
training reads) is claimed in the database before it is sent, and the claim is a lease:
the run that holds it writes its owner and an expiry with the claim, and a thread of its
own pushes the expiry on every third of the lease while the run lives (``KeepLease``).
While a lease is live nobody may declare the create lost, however long Replicate takes to
answer. A lease expires only when its owner stopped renewing it (killed, or the database
away for longer than the lease): then one run takes it over with a compare-and-set on the
expiry (``takeover``), and searches Replicate before it decides anything.

The lease's length is ``RECOVERY_SECONDS`` (``core.config``): the same figure after which
a silent worker's jobs are run again.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, and_, func, or_, update
from sqlalchemy.exc import SQLAlchemyError

from core.beats import Beating

log = logging.getLogger(__name__)

OWNER_COLUMN = "lease_owner"
EXPIRES_COLUMN = "lease_expires_at"


def new_owner() -> str:
    """A name for one run of a step: host, process and a random part (two runs in one
    process are different owners)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_values(owner: str, length: timedelta) -> dict[str, Any]:
    """The columns a claim writes: held by ``owner`` until ``length`` from the database's
    now (one clock for every worker: the database's)."""
    return {OWNER_COLUMN: owner, EXPIRES_COLUMN: func.now() + length}


def released() -> dict[str, Any]:
    """The columns written when a step ends: nobody holds it."""
    return {OWNER_COLUMN: None, EXPIRES_COLUMN: None}


def is_free(table: Table) -> ColumnElement[bool]:
    """The row's lease is not held by a live run: never taken, released, or expired."""
    return or_(table.c[EXPIRES_COLUMN].is_(None), table.c[EXPIRES_COLUMN] < func.now())


def is_expired(table: Table) -> ColumnElement[bool]:
    """The row's lease was held and its owner stopped renewing it."""
    return and_(table.c[EXPIRES_COLUMN].is_not(None), table.c[EXPIRES_COLUMN] < func.now())


def held_by(table: Table, owner: str) -> ColumnElement[bool]:
    return table.c[OWNER_COLUMN] == owner


class KeepLease(Beating):
    """Context manager: renew ``owner``'s lease on row ``row_id`` of ``table`` every third
    of ``length`` until the block ends. A renewal that finds the lease gone (taken over
    after a long outage) sets ``lost``; a database error is logged and tried again at the
    next beat: renewing never fails the step."""

    def __init__(self, engine: Engine, table: Table, row_id: int, owner: str, length: timedelta):
        super().__init__(max(0.2, length.total_seconds() / 3), name="lease")
        self._engine = engine
        self._table = table
        self._row_id = row_id
        self._owner = owner
        self._length = length
        self.lost = False

    def beat(self) -> None:
        table = self._table
        try:
            with self._engine.begin() as conn:
                renewed = conn.execute(
                    update(table)
                    .where(table.c.id == self._row_id, held_by(table, self._owner))
                    .values({EXPIRES_COLUMN: func.now() + self._length})
                ).rowcount
        except SQLAlchemyError as exc:
            log.warning("could not renew the lease on %s %s: %s", table.name, self._row_id, exc)
            return
        if not renewed:
            self.lost = True
            self.stop()
