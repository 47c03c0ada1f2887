"""The pages' read API over scans written literally (inside the rolled-back ``conn``):
which scan is "the latest" per user, filters, counts, trend and worst users."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from core.drift import Finding, scan_error
from core.drift.findings import Fix, make_finding
from core.scan import (
    counts_by_code,
    last_check,
    last_fleet_scan,
    last_scan,
    latest_findings,
    trend,
    user_ids_with,
    worst_by_user,
    worst_users,
)
from core.scan.record import fail_scan, finish_scan, record_users, start_scan
from core.scan.store import checked_users
from core.scan.tables import scans
from core.scan.values import UserScan


def finding(code: str) -> Finding:
    if code == "SCAN_ERROR":
        return scan_error("u", "Replicate is unavailable")
    fields_by_code: dict[str, dict[str, Any]] = {
        "STALE_VERSION": {"versions_behind": 2},
        "TRIGGER_WORD_MISMATCH": {"stored_trigger_word": "a", "trained_trigger_word": "b"},
        "DUPLICATE_MODELS": {"destination_count": 2, "row_model": "o/m"},
        "PARAMS_CHANGED": {"changed": "steps"},
        "TRAINER_CHANGED": {"previous_trainer": "a/b", "trainer": "c/d"},
    }
    fields = fields_by_code[code]
    return make_finding(
        code,
        evidence={"why": code.lower(), "seen": ["x", 1]},
        fix=Fix(None, f"fix {code}"),
        **fields,
    )


def write_scan(
    conn: Connection,
    users: Mapping[str, Sequence[str]],
    *,
    status: str = "finished",
    everyone: bool = True,
) -> int:
    scope = {"scope": "all"} if everyone else {"scope": "users", "user_ids": list(users)}
    scan_id, _ = start_scan(conn, users_total=len(users), requested_by="test", options=scope)
    record_users(
        conn,
        scan_id,
        [
            UserScan(user_id, tuple(finding(code) for code in codes))
            for user_id, codes in users.items()
        ],
    )
    if status == "finished":
        finish_scan(conn, scan_id)
    elif status == "failed":
        fail_scan(conn, scan_id, "RuntimeError: boom")
    return scan_id


FLEET = {
    "ann": ["STALE_VERSION", "TRIGGER_WORD_MISMATCH"],
    "bob": ["DUPLICATE_MODELS", "PARAMS_CHANGED"],
    "cat": ["PARAMS_CHANGED"],
    "dan": [],
    "eve": ["SCAN_ERROR"],
}


def test_nothing_scanned_yet(conn: Connection) -> None:
    conn.execute(scans.delete())  # the session database may hold other tests' scans
    assert last_scan(conn) is None
    assert latest_findings(conn, ["ann"]) == {"ann": ()}
    assert worst_by_user(conn, ["ann"]) == {"ann": None}
    assert user_ids_with(conn) == [] and counts_by_code(conn) == []
    assert trend(conn) == [] and worst_users(conn) == []


def test_findings_come_back_as_they_were_found(conn: Connection) -> None:
    write_scan(conn, FLEET)
    found = latest_findings(conn, ["ann", "dan", "zed"])
    assert found == {
        "ann": (finding("STALE_VERSION"), finding("TRIGGER_WORD_MISMATCH")),
        "dan": (),
        "zed": (),
    }
    assert found["ann"][0].fix == Fix(None, "fix STALE_VERSION")
    assert worst_by_user(conn, ["ann", "bob", "cat", "dan", "zed"]) == {
        "ann": "critical",
        "bob": "warning",
        "cat": "info",
        "dan": None,
        "zed": None,
    }


def test_running_scans_are_not_the_latest_but_what_ended_scans_stored_is(conn: Connection) -> None:
    write_scan(conn, FLEET)
    failed = write_scan(conn, {"dan": ["STALE_VERSION"]}, status="failed")
    running = write_scan(conn, {"ann": []}, status="running")
    # The running scan checked ann healthy, but it has not ended: ann keeps the fleet's.
    assert latest_findings(conn, ["ann"])["ann"][0].code == "STALE_VERSION"
    # A scan that failed part way stored dan whole: that is dan's latest check.
    assert user_ids_with(conn, codes=["STALE_VERSION"]) == ["ann", "dan"]
    assert checked_users(conn, ["ann", "dan", "zed"]) == {"ann", "dan"}
    check = last_check(conn, "dan")
    assert check is not None and (check.scan_id, check.status, check.codes) == (
        failed,
        "failed",
        ("STALE_VERSION",),
    )
    summary = last_scan(conn)
    assert summary is not None and (summary.id, summary.status) == (running, "running")
    assert summary.finished_at is None and summary.users_scanned == 1
    fleet = last_fleet_scan(conn)
    assert fleet is not None and fleet.id == running  # all three are fleet scans here


def test_a_rescan_of_some_users_is_not_the_last_fleet_scan(conn: Connection) -> None:
    fleet = write_scan(conn, FLEET)
    rescan = write_scan(conn, {"ann": []}, everyone=False)
    fleet_summary, newest = last_fleet_scan(conn), last_scan(conn)
    assert fleet_summary is not None and fleet_summary.id == fleet
    assert newest is not None and (newest.id, newest.scope) == (rescan, "users")
    assert latest_findings(conn, ["ann"])["ann"] == ()  # the rescan is ann's latest check
    check = last_check(conn, "ann")
    assert check is not None and (check.scan_id, check.scope) == (rescan, "users")
    assert last_check(conn, "bob") is not None and last_check(conn, "zed") is None


def test_filters_by_code_and_severity(conn: Connection) -> None:
    write_scan(conn, FLEET)
    assert user_ids_with(conn, codes=["PARAMS_CHANGED"]) == ["bob", "cat"]
    assert user_ids_with(conn, codes=["PARAMS_CHANGED", "STALE_VERSION"]) == ["ann", "bob", "cat"]
    assert user_ids_with(conn, severities=["warning"]) == ["bob", "eve"]
    # Any of the codes AND any of the severities, not necessarily on the same finding:
    assert user_ids_with(conn, codes=["PARAMS_CHANGED"], severities=["warning"]) == ["bob"]
    assert user_ids_with(conn, codes=["STALE_VERSION"], severities=["info"]) == []
    assert user_ids_with(conn) == ["ann", "bob", "cat", "eve"]  # everyone with a finding


def test_counts_trend_and_worst_users(conn: Connection) -> None:
    first = write_scan(conn, FLEET)
    second = write_scan(
        conn, {**FLEET, "cat": [], "dan": ["PARAMS_CHANGED"], "fay": ["STALE_VERSION"]}
    )
    write_scan(conn, {"ann": [], "bob": []}, everyone=False)  # a rescan of two users
    assert [(c.code, c.severity, c.users) for c in counts_by_code(conn, first)] == [
        ("STALE_VERSION", "critical", 1),
        ("TRIGGER_WORD_MISMATCH", "critical", 1),
        ("DUPLICATE_MODELS", "warning", 1),
        ("SCAN_ERROR", "warning", 1),
        ("PARAMS_CHANGED", "info", 2),
    ]
    assert [(c.code, c.users) for c in counts_by_code(conn)] == [
        ("STALE_VERSION", 1),
        ("SCAN_ERROR", 1),
        ("PARAMS_CHANGED", 1),
    ]  # fay; eve; dan
    points = [(p.scan_id, p.code, p.users) for p in trend(conn) if p.scan_id >= first]
    assert points == [
        (first, "STALE_VERSION", 1),
        (first, "TRIGGER_WORD_MISMATCH", 1),
        (first, "DUPLICATE_MODELS", 1),
        (first, "SCAN_ERROR", 1),
        (first, "PARAMS_CHANGED", 2),
        (second, "STALE_VERSION", 2),
        (second, "TRIGGER_WORD_MISMATCH", 1),
        (second, "DUPLICATE_MODELS", 1),
        (second, "SCAN_ERROR", 1),
        (second, "PARAMS_CHANGED", 2),
    ]
    assert [p.scan_id for p in trend(conn, limit_scans=1)] == [second] * 5
    assert [
        (w.user_id, w.worst_severity, w.codes, w.finding_count) for w in worst_users(conn, limit=3)
    ] == [
        ("fay", "critical", ("STALE_VERSION",), 1),
        ("eve", "warning", ("SCAN_ERROR",), 1),
        ("dan", "info", ("PARAMS_CHANGED",), 1),
    ]


def test_a_rescan_of_some_users_overlays_the_fleet_scan(conn: Connection) -> None:
    write_scan(conn, {"cat": []}, everyone=False)  # older than the fleet scan: superseded
    write_scan(conn, FLEET)
    write_scan(conn, {"ann": [], "zed": ["PARAMS_CHANGED"]}, everyone=False)
    newest = write_scan(conn, {"ann": ["TRIGGER_WORD_MISMATCH"]}, everyone=False)
    found = latest_findings(conn, ["ann", "bob", "cat", "zed"])
    assert [f.code for f in found["ann"]] == ["TRIGGER_WORD_MISMATCH"]  # the newest rescan
    assert [f.code for f in found["cat"]] == ["PARAMS_CHANGED"]  # older rescan: superseded
    assert [f.code for f in found["zed"]] == ["PARAMS_CHANGED"]
    assert worst_by_user(conn, ["ann", "bob"]) == {"ann": "critical", "bob": "warning"}
    assert user_ids_with(conn, codes=["STALE_VERSION"]) == []
    assert user_ids_with(conn, codes=["PARAMS_CHANGED"]) == ["bob", "cat", "zed"]
    assert {c.code: c.users for c in counts_by_code(conn)}["TRIGGER_WORD_MISMATCH"] == 1
    assert [w.user_id for w in worst_users(conn)] == ["ann", "bob", "eve", "cat", "zed"]
    assert {c.code for c in counts_by_code(conn, newest)} == {"TRIGGER_WORD_MISMATCH"}
