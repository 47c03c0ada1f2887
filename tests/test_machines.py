"""The state machines of paid and long work are one table each, and the only writer of
their ``status``: every state the database allows is in the table, every open state says
who moves it on and what happens when that owner dies, every state can be reached, and no
code outside ``core.machines`` updates a retrain's, comparison's or image's status."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.compare.states import COMPARISON, IMAGE
from core.compare.tables import COMPARISON_STATUSES, IMAGE_STATUSES
from core.machines import Machine
from core.retrain.states import RETRAIN
from core.retrain.tables import RETRAIN_ENDED, RETRAIN_STATUSES

PERSON_REOPENS = {"retry", "reopen"}
CORE = Path(__file__).resolve().parents[1] / "core"
MACHINES = {
    "retrains": (RETRAIN, RETRAIN_STATUSES, "draft"),
    "comparisons": (COMPARISON, COMPARISON_STATUSES, "queued"),
    "comparison_images": (IMAGE, IMAGE_STATUSES, "pending"),
}


@pytest.mark.parametrize("table", sorted(MACHINES))
def test_every_state_the_database_allows_is_in_its_table(table: str) -> None:
    machine, allowed, _ = MACHINES[table]
    assert machine.table.name == table
    assert set(machine.state_names) == set(allowed)


@pytest.mark.parametrize("table", sorted(MACHINES))
def test_every_open_state_has_an_owner_and_a_recovery_and_every_state_is_reached(
    table: str,
) -> None:
    machine, _, initial = MACHINES[table]
    for name in machine.open_states:
        state = machine.state(name)
        assert state.owner and state.recovery, name
    for transition in machine.transitions:
        # No run moves a row out of an ended state (a stale run can never move it back):
        # only a person retrying an image reopens one; bookkeeping keeps the state.
        if set(transition.sources) & machine.terminal and transition.target is not None:
            assert transition.event in PERSON_REOPENS, transition.event
            assert "person" in transition.by
    reached, frontier = {initial}, [initial]
    while frontier:
        current = frontier.pop()
        for transition in machine.transitions:
            target = transition.target or current
            if current in transition.sources and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(machine.state_names)


def test_a_retrain_ends_only_where_the_table_says() -> None:
    assert RETRAIN.terminal == frozenset(RETRAIN_ENDED) - {"succeeded"}
    assert "succeeded" in RETRAIN.open_states  # its gate and decision are still to come


def _updated_table(node: ast.AST) -> str | None:
    """The table of an ``update(<name>)`` at the root of a method chain, if any."""
    while isinstance(node, ast.Call | ast.Attribute):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "update":
                first = node.args[0] if node.args else None
                return first.id if isinstance(first, ast.Name) else None
            node = node.func
        else:
            node = node.value
    return None


def _sets_status(call: ast.Call) -> bool:
    if any(keyword.arg == "status" for keyword in call.keywords):
        return True
    return any(
        isinstance(arg, ast.Dict)
        and any(isinstance(key, ast.Constant) and key.value == "status" for key in arg.keys)
        for arg in call.args
    )


def test_no_code_writes_a_machines_status_but_the_machine() -> None:
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        if path.name == "machines.py" or "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "values"
                and _updated_table(node.func.value) in MACHINES
                and _sets_status(node)
            ):
                offenders.append(f"{path.relative_to(CORE.parent)}:{node.lineno}")
    assert offenders == []


def test_the_transition_tables_render_for_people() -> None:
    machine: Machine
    for machine, _, _ in MACHINES.values():
        rows = machine.rows()
        assert len(rows) == len(machine.transitions)
        assert all(row["event"] and row["from"] and row["to"] and row["by"] for row in rows)
