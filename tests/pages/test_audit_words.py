"""The Audit page says each action in words, and a record's change field by field.

The first test reads every ``audit.record`` call in ``core`` (its ``action=``) and checks
that each key it can write has words, so an action added without words fails here.
The page tests write one record of every such key into the module's own database.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, insert
from streamlit.testing.v1 import AppTest

from core.audit_words import ACTION_WORDS, UNKNOWN_ACTION, action_words, changed_fields
from core.drift.codes import RepairAction
from core.schema import DECISION_KINDS, audit_log
from tests.pages.conftest import frames_with, open_page, texts, unescaped

CORE = Path(__file__).resolve().parents[2] / "core"
# The values the variable part of an f-string action can take, by the prefix before it.
VARIABLE_PARTS: dict[str, tuple[str, ...]] = {
    "repair:": tuple(action.value for action in RepairAction),
    "undo:": tuple(action.value for action in RepairAction),
    "decision:": DECISION_KINDS,
}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(CORE.parent).with_suffix("").parts)


def _is_audit_record(call: ast.Call, imported_record: bool) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "record":
        return isinstance(func.value, ast.Name) and func.value.id == "audit"
    return imported_record and isinstance(func, ast.Name) and func.id == "record"


def _constant(module: str, node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        value = getattr(importlib.import_module(module), node.id)
        assert isinstance(value, str), (module, node.id)
        return value
    raise AssertionError(f"{module}: an audit action written as {ast.unparse(node)}")


def _keys(module: str, node: ast.expr) -> set[str]:
    """Every action key ``node`` (the ``action=`` of an audit.record call) can be."""
    if not isinstance(node, ast.JoinedStr):
        return {_constant(module, node)}
    first, *rest = node.values
    prefix = _constant(module, first.value if isinstance(first, ast.FormattedValue) else first)
    assert len(rest) == 1 and prefix in VARIABLE_PARTS, (
        f"{module}: the action {ast.unparse(node)} has a variable part this test does not "
        "know; list its values in VARIABLE_PARTS"
    )
    return {prefix + part for part in VARIABLE_PARTS[prefix]}


def written_action_keys() -> dict[str, set[str]]:
    """Each action key an ``audit.record`` call in core can write, with where."""
    found: dict[str, set[str]] = {}
    for path in sorted(CORE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported_record = any(
            isinstance(node, ast.ImportFrom)
            and node.module == "core.audit"
            and any(alias.name == "record" for alias in node.names)
            for node in ast.walk(tree)
        )
        module = _module_name(path)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _is_audit_record(node, imported_record)):
                continue
            action = next((kw.value for kw in node.keywords if kw.arg == "action"), None)
            assert action is not None, f"{module}: audit.record without action="
            for key in _keys(module, action):
                found.setdefault(key, set()).add(module)
    return found


def test_every_action_key_the_console_writes_has_words() -> None:
    written = written_action_keys()
    # The scan itself is checked: repairs, undos, retrains, comparisons, scans, decisions.
    assert {"repair:repoint_latest", "undo:sync_status", "scan:run", "compare:grant"} <= set(
        written
    )
    assert len(written) >= 25, sorted(written)
    without = {key: sorted(where) for key, where in written.items() if key not in ACTION_WORDS}
    assert not without, f"audit actions without words in core.audit_words: {without}"
    for key in written:
        words = action_words(key)
        assert words != UNKNOWN_ACTION and key not in words and "_" not in words, (key, words)


def test_an_unknown_action_still_reads_as_a_sentence() -> None:
    assert action_words("repair:something_new") == UNKNOWN_ACTION


def test_changed_fields_lists_only_what_changed() -> None:
    changes = changed_fields({"a": 1, "b": 2, "c": None}, {"a": 1, "b": 3, "d": "x"})
    assert [(change.field, change.before, change.after) for change in changes] == [
        ("b", 2, 3),
        ("c", None, None),
        ("d", None, "x"),
    ]


ADMIN = "admin@staff.test"


@pytest.fixture
def every_action(engine: Engine, live_env: None) -> Iterator[dict[str, int]]:
    """One audit record of every key the console writes (a repair with before/after and
    details), removed afterwards; the ids by key."""
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        for key in sorted(written_action_keys()):
            ids[key] = conn.execute(
                insert(audit_log)
                .values(
                    actor_email="ops.person@staff.test",
                    actor_role="admin",
                    action=key,
                    target_user_id="user-audit-words",
                    before={"replicate_version_id": "aaa", "trigger_word": "same"},
                    after={"replicate_version_id": "bbb", "trigger_word": "same"},
                    reason="words test",
                    details={"retrain_id": 7, "evidence": {"versions_behind": 2}},
                )
                .returning(audit_log.c.id)
            ).scalar_one()
    yield ids
    with engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.id.in_(list(ids.values()))))


def test_the_audit_page_says_every_action_in_words_with_the_key_beside(
    app_as: Callable[..., AppTest], every_action: dict[str, int]
) -> None:
    at = open_page(app_as("admin"), "audit", target="user-audit-words")
    assert not at.exception, at.exception
    table = at.dataframe[0].value.set_index("id")
    for key, record_id in every_action.items():
        assert table.loc[record_id, "what"] == ACTION_WORDS[key], key
        assert table.loc[record_id, "action"] == key
    assert list(table.columns[:2]) == ["at", "actor"]  # who did it, before what
    assert not {"before", "after"} & set(table.columns)  # no raw JSON cells
    # The plain details in words; the nested ones only in the record's own view.
    assert set(table["details"]) == {"retrain id: 7"}


def test_a_record_shows_its_changed_fields_and_details_in_words_and_json_only_folded(
    app_as: Callable[..., AppTest], every_action: dict[str, int]
) -> None:
    at = open_page(app_as("admin"), "audit", target="user-audit-words")
    record_id = every_action["repair:repoint_latest"]
    index = list(at.dataframe[0].value["id"]).index(record_id)
    at.session_state["audit_table"] = {"selection": {"rows": [index], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert unescaped(at.subheader[0].value) == ACTION_WORDS["repair:repoint_latest"]
    assert f"Record #{record_id} · repair:repoint_latest" in shown
    assert shown.index("ops.person@staff.test") < shown.index("words test")
    (change,) = frames_with(at, "column")
    assert change.to_dict("records") == [
        {"column": "replicate_version_id", "before": "aaa", "after": "bbb"}
    ]  # trigger_word did not change: not listed
    (details,) = frames_with(at, "detail")
    assert dict(zip(details["detail"], details["value"], strict=True)) == {
        "retrain id": "7",
        "evidence": '{"versions_behind": 2}',
    }
    # The raw JSON is only inside the folded expander, for engineers.
    assert [element.label for element in at.expander] == [
        "The record as stored (JSON, for engineers)"
    ]
    (raw,) = at.expander[0].get("json")
    assert len(at.get("json")) == 1 and '"replicate_version_id": "aaa"' in raw.proto.body


def test_records_written_twice_for_one_piece_of_work_say_which_they_are() -> None:
    from core.audit_words import record_words

    assert record_words("compare:run", {"event": "requested"}).startswith("Asked for")
    assert record_words("compare:run", {"event": "finished"}).endswith("ended")
    assert record_words("scan:run", {"event": "requested"}) == "Asked for a scan of users"
    assert record_words("scan:run", {"event": "cancelled"}) == "A scan of users ended: cancelled"
    assert record_words("scan:run", None) == record_words("scan:run", {"event": 3})
