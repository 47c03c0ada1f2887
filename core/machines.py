"""State machines for paid and long work: states, every transition in one table, and the
compare-and-set update that carries a transition out.

A machine (a retrain, a comparison, a comparison image) names each of its states with
what it means, who moves it on (its owner) and what the maintenance job does when that
owner is gone (its recovery); and lists every transition as (the states it leaves, the
event, the state it enters, who may cause it). ``Machine.move`` is the only way a row's
``status`` changes::

    UPDATE <table> SET status = :to, ... WHERE id = :id AND status IN (:from...) RETURNING *

Zero rows means someone else moved the row first (a stale or duplicate run): the caller
gets None and must not act as if it had moved it, so a row never goes backwards or
sideways. A transition whose target is None keeps the state and writes only its values
(a poll recording progress, a lease taken over).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Table, update

from core.redaction import storable


@dataclass(frozen=True)
class State:
    """One state: what it means, who moves it on, and the recovery when that owner dies
    (terminal states have neither)."""

    name: str
    meaning: str
    owner: str = ""
    recovery: str = ""

    @property
    def terminal(self) -> bool:
        return not self.owner


@dataclass(frozen=True)
class Transition:
    event: str
    sources: tuple[str, ...]
    target: str | None  # None: the state stays, only the values are written
    by: str  # who may cause it


@dataclass(frozen=True)
class Machine:
    """One table's states and transitions (see the module docstring)."""

    name: str
    table: Table
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]

    def __post_init__(self) -> None:
        names = {state.name for state in self.states}
        events = [transition.event for transition in self.transitions]
        if len(events) != len(set(events)):
            raise ValueError(f"{self.name}: an event is listed twice")
        for transition in self.transitions:
            unknown = {*transition.sources, transition.target or transition.sources[0]} - names
            if unknown:
                raise ValueError(f"{self.name}.{transition.event}: unknown states {unknown}")
            if transition.target is None and len(transition.sources) < 1:
                raise ValueError(f"{self.name}.{transition.event}: no source state")

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(state.name for state in self.states)

    @property
    def terminal(self) -> frozenset[str]:
        return frozenset(state.name for state in self.states if state.terminal)

    @property
    def open_states(self) -> tuple[str, ...]:
        """The states someone must still move on (each has an owner and a recovery)."""
        return tuple(state.name for state in self.states if not state.terminal)

    def state(self, name: str) -> State:
        for state in self.states:
            if state.name == name:
                return state
        raise KeyError(f"{self.name} has no state {name!r}")

    def transition(self, event: str) -> Transition:
        for transition in self.transitions:
            if transition.event == event:
                return transition
        raise KeyError(f"{self.name} has no event {event!r}")

    def allowed(self, event: str, status: str) -> bool:
        """Whether ``event`` may happen to a row in ``status`` (pure)."""
        return status in self.transition(event).sources

    def move(
        self,
        conn: Connection,
        row_id: int,
        event: str,
        *,
        where: Iterable[ColumnElement[bool]] = (),
        values: Mapping[str, Any] | None = None,
    ) -> Row[Any] | None:
        """Carry out ``event`` on row ``row_id`` if it is in one of the event's source
        states (and matches ``where``): the row as written, or None when it was not (the
        row moved on, or the guard failed). ``values`` may not set ``status``."""
        transition, written = self._written(event, values)
        table = self.table
        statement = (
            update(table)
            .where(table.c.id == row_id, table.c.status.in_(transition.sources), *where)
            .values(**written)
            .returning(table)
        )
        return conn.execute(statement).one_or_none()

    def move_all(
        self,
        conn: Connection,
        event: str,
        *,
        where: Iterable[ColumnElement[bool]],
        values: Mapping[str, Any] | None = None,
    ) -> int:
        """``move`` for every row matching ``where`` and in a source state (a comparison's
        pending images cancelled together); how many moved."""
        transition, written = self._written(event, values)
        table = self.table
        statement = (
            update(table).where(table.c.status.in_(transition.sources), *where).values(**written)
        )
        return int(conn.execute(statement).rowcount)

    def _written(
        self, event: str, values: Mapping[str, Any] | None
    ) -> tuple[Transition, dict[str, Any]]:
        """The transition of ``event`` and the columns it writes (its target state too)."""
        transition = self.transition(event)
        # URLs are kept without their secrets, whatever a transition writes.
        written = {column: storable(value) for column, value in (values or {}).items()}
        if "status" in written:
            raise ValueError("a transition sets status itself")
        if transition.target is not None:
            written["status"] = transition.target
        if not written:
            raise ValueError(f"{self.name}.{event} writes nothing")
        return transition, written

    def rows(self) -> list[dict[str, str]]:
        """The transition table as rows (event, from, to, who), for the README and tests."""
        return [
            {
                "event": transition.event,
                "from": ", ".join(transition.sources),
                "to": transition.target or "(stays)",
                "by": transition.by,
            }
            for transition in self.transitions
        ]
