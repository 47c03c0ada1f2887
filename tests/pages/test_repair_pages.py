"""Writes through the pages: an admin's scan from the Fleet page (run by a real worker
process, followed across pages), a repair of the stale user through the confirmation
dialog (with a conflict, a repeated submission, an undo and the rescan a worker runs),
and the Audit page listing them.

The tests share the module's database; each starts with the stale user's row as seeded
(``as_seeded`` puts it back), and reads only its own audit records and scans, so they
pass in any order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text, update
from streamlit.testing.v1 import AppTest

from core import audit
from core.drift import diagnose
from core.ledger.sync import sync_ledger
from core.repairs import read_row
from core.repairs.values import app_row
from core.sandbox.server import RunningSandbox
from core.scan.facts import gather_facts
from core.scan.store import scan_summary
from core.schema import user_models
from tests.pages.conftest import frames_with, open_page, texts
from tests.user_world import FILLERS, UserWorld, gateway_on
from tests.workers import Workers, wait_for, worker_env

REASON = "Ticket 4711: images got worse after retraining"


@pytest.fixture(scope="module")
def seeded_stale_row(engine: Engine, world: UserWorld) -> dict[str, Any]:
    """The stale user's row as the world seeded it."""
    return _row(engine, world.stale)


@pytest.fixture(autouse=True)
def as_seeded(engine: Engine, world: UserWorld, seeded_stale_row: dict[str, Any]) -> None:
    """Each test starts with the stale row as seeded, whatever the others repaired."""
    with engine.begin() as conn:
        conn.execute(
            update(user_models)
            .where(user_models.c.user_id == world.stale)
            .values({k: v for k, v in seeded_stale_row.items() if k != "user_id"})
        )


def _row(engine: Engine, user_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return read_row(conn, user_id)


def _records(
    engine: Engine, *, action: str | None = None, user_id: str | None = None
) -> list[audit.AuditRecord]:
    with engine.connect() as conn:
        return audit.list_records(conn, action=action, user_id=user_id)


def _codes_now(engine: Engine, sandbox: RunningSandbox, user_id: str) -> set[str]:
    """The drift engine run again on the user's facts as they are now (no page involved;
    the ledger synced first, as a scan or the User page would)."""
    with gateway_on(sandbox.base_url) as gateway:
        sync_ledger(ops_engine=engine, app_engine=engine, gateway=gateway)
        facts = gather_facts(
            app_row(_row(engine, user_id)), ops_conn_factory=engine.connect, gateway=gateway
        )
    return {finding.code for finding in diagnose(facts)}


def _key(at: AppTest, prefix: str, kind: str = "button") -> str:
    keys = [element.key for element in getattr(at, kind) if (element.key or "").startswith(prefix)]
    assert len(keys) == 1, (prefix, keys)
    return str(keys[0])


def _open_repair_dialog(at: AppTest) -> AppTest:
    at.button(key="repair_STALE_VERSION").click().run()
    assert not at.exception, at.exception
    return at


def _apply(at: AppTest, reason: str) -> AppTest:
    at.text_area(key=_key(at, "repair_reason_", "text_area")).input(reason).run()
    return at.button(key=_key(at, "repair_apply_")).click().run()


def _rearm_last_repair(at: AppTest, user_id: str) -> None:
    """Put the session back as a second click on the applied dialog's Apply would: the
    dialog open with its (already used) idempotency key, submitting."""
    (nonce,) = at.session_state["repair_used_nonces"]
    at.session_state["repair_open"] = {
        "user_id": user_id,
        "action": "repoint_latest",
        "nonce": nonce,
    }
    at.session_state["repair_submitting"] = nonce


@pytest.fixture(scope="module")
def workers(
    pages_database_url: str,
    sandbox_server: RunningSandbox,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Workers]:
    """Worker processes for this module's database, started by the tests that need them."""
    folder = tmp_path_factory.mktemp("page-workers")
    started = Workers(
        lambda **extra: worker_env(
            database_url=pages_database_url,
            sandbox_url=sandbox_server.base_url,
            data_dir=folder,
            **extra,
        ),
        folder,
    )
    yield started
    started.stop_all()


def _scan_records(engine: Engine, scan_id: int, event: str) -> list[audit.AuditRecord]:
    """This scan's ``scan:run`` records of one event (requested, finished...)."""
    return [
        record
        for record in _records(engine, action="scan:run")
        if (record.details or {}).get("scan_id") == scan_id
        and (record.details or {}).get("event") == event
    ]


def _scan_status(engine: Engine, scan_id: int) -> str | None:
    with engine.connect() as conn:
        summary = scan_summary(conn, scan_id)
    return summary.status if summary is not None and not summary.is_active else None


def test_admin_scans_from_the_fleet_page_leaves_and_comes_back(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine, workers: Workers
) -> None:
    workers.stop_all()  # nobody runs the scan until the page has shown it waiting
    at = open_page(app_as("admin"), "fleet")
    assert not at.exception, at.exception
    assert "No fleet scan has run yet" in texts(at)
    at.button(key="scan_now").click().run()
    assert not at.exception, at.exception
    (queued,) = [success.value for success in at.success]
    scan_id = int(queued.split("#", 1)[1].split(" ", 1)[0])
    assert "queued" in queued and "You can leave this page" in queued
    assert at.button(key="scan_now").disabled  # one at a time
    (requested,) = _scan_records(engine, scan_id, "requested")
    assert requested.actor_email == "admin@staff.test" and requested.details is not None
    assert requested.details["scope"] == "all"

    # Leave for the Users page (the scan is not stopped by it), then come back.
    at = open_page(at, "users")
    assert f"Fleet scan #{scan_id} is queued" in texts(at)
    worst = frames_with(at, "worst")[0].set_index("user")["worst"]
    assert worst.loc["filler-0000"] == "not scanned yet"  # no rescan ever touches fillers
    at = open_page(at, "fleet")
    metrics = {metric.label: str(metric.value) for metric in at.metric}
    assert (metrics["last fleet scan"], metrics["status"]) == (f"#{scan_id}", "queued")
    assert "Queued, waiting for a worker" in texts(at)
    assert "No worker is running" in texts(at)  # and nobody has started one yet
    assert at.button(key="cancel_scan")  # an admin may cancel it

    workers.start()
    assert (
        wait_for(lambda: _scan_status(engine, scan_id), timeout=120, what="the scan to end")
        == "finished"
    ), workers.logs()
    at = open_page(at, "users")
    at = open_page(at, "fleet")
    assert not at.exception, at.exception
    metrics = {metric.label: str(metric.value) for metric in at.metric}
    everyone = len(world.special) + FILLERS  # all 67 users, never-trained ones included
    assert metrics["status"] == "finished"
    assert metrics["users checked"] == f"{everyone} of {everyone}"
    assert "STALE_VERSION" in set(frames_with(at, "what it means")[0]["code"])
    outcome = _scan_records(engine, scan_id, "finished")
    assert len(outcome) == 1 and outcome[0].details is not None
    assert outcome[0].details["users_with_findings"] == 5
    assert not at.button(key="scan_now").disabled  # ready for the next scan


def test_repair_then_undo_through_the_dialogs(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    stale = _row(engine, world.stale)
    at = _apply(
        _open_repair_dialog(open_page(app_as("admin"), "user", user=world.stale)),
        "Trying the repair before undoing it",
    )
    assert not at.exception, at.exception
    repaired = _row(engine, world.stale)
    assert repaired["replicate_version_id"] == world.replicate.stale_versions[0]
    at.button(key="undo_repair").click().run()
    at.text_area(key=_key(at, "undo_reason_", "text_area")).input("Wrong user").run()
    at.button(key=_key(at, "undo_apply_")).click().run()
    assert not at.exception, at.exception
    undone = [success.value for success in at.success if "undone" in success.value]
    assert len(undone) == 1 and undone[0].startswith("Repair #")
    restored = _row(engine, world.stale)
    assert {k: v for k, v in restored.items() if k != "updated_at"} == {
        k: v for k, v in stale.items() if k != "updated_at"
    }
    assert [
        record.action
        for record in _records(engine, user_id=world.stale)
        if not record.action.startswith("scan")
    ][:2] == ["undo:repoint_latest", "repair:repoint_latest"]
    assert "`STALE_VERSION`" in texts(at)  # the finding (not only the last scan) is back


def test_admin_repairs_the_stale_user_through_the_dialog(
    app_as: Callable[..., AppTest],
    world: UserWorld,
    engine: Engine,
    sandbox_server: RunningSandbox,
    workers: Workers,
) -> None:
    workers.ensure_one()  # the rescan after the repair runs in a worker
    versions = world.replicate.stale_versions
    assert "STALE_VERSION" in _codes_now(engine, sandbox_server, world.stale)
    repairs_before = len(_records(engine, action="repair:repoint_latest"))
    at = _open_repair_dialog(open_page(app_as("admin"), "user", user=world.stale))
    (plan,) = frames_with(at, "before")
    assert plan.set_index("column").loc["replicate_version_id"].to_dict() == {
        "before": versions[-1],
        "after": versions[0],
    }
    assert "2 versions behind" in texts(at)

    # No reason: refused by core, nothing written, the dialog stays open.
    at.button(key=_key(at, "repair_apply_")).click().run()
    assert any("Give a reason" in error.value for error in at.error)
    assert len(_records(engine, action="repair:repoint_latest")) == repairs_before

    # Someone changes the row after the preview: the repair is refused, preview again.
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE user_models SET replicate_version_id = :v WHERE user_id = :u"),
            {"v": versions[1], "u": world.stale},
        )
    at = _apply(at, REASON)
    assert any("changed since the preview" in error.value for error in at.error)
    at.button(key=_key(at, "repair_again_")).click().run()
    (plan,) = frames_with(at, "before")
    assert plan.set_index("column").loc["replicate_version_id", "before"] == versions[1]

    at = _apply(at, REASON)
    assert not at.exception, at.exception
    (done,) = [success.value for success in at.success if success.value.startswith("Repaired")]
    audit_id = int(done.rsplit("#", 1)[1].rstrip("."))
    row = _row(engine, world.stale)
    assert row["replicate_version_id"] == versions[0]
    assert row["lora_weights_url"] == world.replicate.stale_trainings[-1].output_weights
    (record,) = [r for r in _records(engine, user_id=world.stale) if r.id == audit_id]
    assert (record.action, record.actor_email, record.reason) == (
        "repair:repoint_latest",
        "admin@staff.test",
        REASON,
    )
    assert record.before == {"replicate_version_id": versions[1]}
    assert "STALE_VERSION" not in _codes_now(engine, sandbox_server, world.stale)
    assert "`STALE_VERSION`" not in texts(at) and "Stored = latest." in texts(at)
    (rescan,) = [
        re.search(r"Rescan #(\d+) of this user is queued", str(element.value))
        for element in (*at.success, *at.info, *at.markdown, *at.caption)
        if "of this user is queued" in str(element.value)
    ]
    assert rescan is not None
    rescan_id = int(rescan.group(1))
    assert (
        wait_for(lambda: _scan_status(engine, rescan_id), timeout=60, what="the rescan to end")
        == "finished"
    )
    assert at.button(key="undo_repair")

    # The same dialog submitted again (a late second click): nothing more is written.
    _rearm_last_repair(at, world.stale)
    at.run()
    assert not at.exception, at.exception
    assert not [button for button in at.button if (button.key or "").startswith("repair_apply")]
    assert len(_records(engine, action="repair:repoint_latest")) == repairs_before + 1

    # The Users page now reads the rescan: the stale user no longer has the finding.
    at = open_page(at, "users")
    at.multiselect(key="code").select("STALE_VERSION").run()
    assert world.stale not in set(at.dataframe[0].value["user"])

    # The Audit page lists the repair, with before/after, the reason and a link.
    at.query_params.clear()
    at = open_page(at, "audit")
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    line = table.set_index("id").loc[audit_id]
    assert (line["action"], line["user"], line["reason"]) == (
        "repair:repoint_latest",
        world.stale,
        REASON,
    )
    assert line["open"] == f"user?user={world.stale}"
    at.selectbox(key="action").select("repair:repoint_latest").run()
    assert set(at.dataframe[0].value["action"]) == {"repair:repoint_latest"}
    index = list(at.dataframe[0].value["id"]).index(audit_id)
    at.session_state["audit_table"] = {"selection": {"rows": [index], "columns": [], "cells": []}}
    at.run()
    (change,) = frames_with(at, "column")
    assert change.set_index("column").loc["replicate_version_id"].to_dict() == {
        "before": versions[1],
        "after": versions[0],
    }
    assert f"#{audit_id} · repair:repoint_latest" in texts(at)
    # The repair can be undone from its record too, and the record opens its user.
    assert at.button(key="undo_from_audit") and at.button(key="open_user")
    at.button(key="open_user").click().run()
    assert not at.exception, at.exception
    assert f"User {world.stale}" in texts(at)


def _stale_card(at: AppTest) -> str:
    """The stale user's STALE_VERSION finding as the page shows it (its title line)."""
    (title,) = [text for text in texts(at).splitlines() if "`STALE_VERSION`" in text]
    return title


def test_an_admin_leaves_a_finding_as_it_is_then_withdraws_the_decision(
    app_as: Callable[..., AppTest], world: UserWorld, engine: Engine
) -> None:
    at = open_page(app_as("admin"), "user", user=world.stale)
    assert not at.exception, at.exception
    assert "Kept by decision" not in _stale_card(at)
    reason_key = _key(at, f"leave_reason_{world.stale}_STALE_VERSION", "text_input")
    at.text_input(key=reason_key).set_value("the user prefers the first version's look")
    at.button(key=_key(at, f"leave_{world.stale}_STALE_VERSION")).click().run()
    assert not at.exception, at.exception
    kept = _stale_card(at)
    assert "Kept by decision #" in kept and "prefers the first version" in kept
    (decided,) = [
        record
        for record in _records(engine, action="decision:leave_as_is", user_id=world.stale)
        if "first version" in (record.reason or "")
    ]
    details = decided.details or {}
    assert details["code"] == "STALE_VERSION"
    decision_id = details["decision_id"]
    at.text_input(key=f"withdraw_reason_{decision_id}").set_value("asked by mistake")
    at.button(key=f"withdraw_{decision_id}").click().run()
    assert not at.exception, at.exception
    assert "Kept by decision" not in _stale_card(at)
    assert _records(engine, action="decision:withdraw", user_id=world.stale)
