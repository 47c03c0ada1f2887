"""The fleet scan on the seeded demo world: every persona gets exactly its expected codes
(photos read with dlib, once for the module), the scan is stored and read back by the
pages' API, and the command line prints it as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

import pytest
from sqlalchemy import delete, func, insert, select, update

from core.demo import PERSONAS
from core.roles import Actor, Role
from core.scan import (
    ScanResult,
    counts_by_code,
    last_scan,
    latest_findings,
    run_scan,
    trend,
    user_ids_with,
    worst_by_user,
    worst_users,
)
from core.scan.__main__ import main
from core.scan.tables import scan_findings, scan_users, scans
from core.schema import staff, user_models
from tests.demo_world import DemoWorld
from tests.scan.conftest import FirstScan, findings_by_user

BY_KEY = {persona.key: persona for persona in PERSONAS}
ADMIN = Actor("ada@example.test", Role.ADMIN)


def codes_of(result: ScanResult) -> dict[str, tuple[str, ...]]:
    return {user.user_id: tuple(finding.code for finding in user.findings) for user in result.users}


# -- the contract -----------------------------------------------------------------------------


def test_every_persona_gets_exactly_its_expected_codes(first_scan: FirstScan) -> None:
    found = codes_of(first_scan.result)
    # Every user is in a fleet scan; one who never trained is checked and healthy.
    assert set(found) == {persona.user_id for persona in PERSONAS}
    for persona in PERSONAS:
        assert found[persona.user_id] == persona.reported_codes, persona.key
    assert found[BY_KEY["no_model_yet"].user_id] == ()
    assert found[BY_KEY["healthy_single"].user_id] == ()
    assert found[BY_KEY["healthy_retrained"].user_id] == ()


def test_findings_carry_evidence_and_a_fix(first_scan: FirstScan) -> None:
    by_user = {user.user_id: user for user in first_scan.result.users}
    stale = by_user[BY_KEY["stale_version"].user_id].findings[0]
    assert stale.evidence["versions_behind"] == 2
    assert stale.fix.action is not None and stale.fix.action.value == "repoint_latest"
    shrank = next(
        finding
        for finding in by_user[BY_KEY["blurry_retrain"].user_id].findings
        if finding.code == "DATASET_SHRANK"
    )
    assert shrank.evidence["dataset"]["image_count"] == 5
    assert shrank.evidence["previous_dataset"]["image_count"] == 16


def test_the_scan_is_stored_with_healthy_users_too(
    first_scan: FirstScan, demo_world: DemoWorld
) -> None:
    result = first_scan.result
    with demo_world.engine.connect() as conn:
        row = conn.execute(select(scans).where(scans.c.id == result.scan_id)).one()
        stored_users = {
            r.user_id: r
            for r in conn.execute(select(scan_users).where(scan_users.c.scan_id == result.scan_id))
        }
        stored_findings = conn.execute(
            select(func.count())
            .select_from(scan_findings)
            .where(scan_findings.c.scan_id == result.scan_id)
        ).scalar_one()
    assert (row.status, row.users_total, row.users_scanned) == ("finished", 17, 17)
    assert row.requested_by == "ada@example.test" and row.error is None
    assert row.options == {"scope": "all", "concurrency": 8, "with_datasets": True}
    assert row.started_at == result.started_at and row.finished_at == result.finished_at
    assert len(stored_users) == 17
    healthy = stored_users[BY_KEY["healthy_single"].user_id]
    assert (healthy.worst_severity, healthy.finding_count) == (None, 0)
    # Its retrain was judged worse by the watch (the demo world's past reviews).
    assert stored_users[BY_KEY["blurry_retrain"].user_id].worst_severity == "critical"
    assert stored_users[BY_KEY["trainer_changed"].user_id].worst_severity == "info"
    assert stored_findings == sum(len(user.findings) for user in result.users)


def test_progress_is_reported_on_the_calling_thread(first_scan: FirstScan) -> None:
    assert first_scan.progress_threads == {first_scan.caller_thread}
    assert first_scan.progress[0] == (0, 17) and first_scan.progress[-1] == (17, 17)
    done = [count for count, _ in first_scan.progress]
    assert done == sorted(done) and len(done) > 2  # several steps, never backwards


def _scan_again(demo_world: DemoWorld) -> ScanResult:
    """A scan without reading photos: the first scan's photo facts (cached) still count."""
    return run_scan(
        app_engine=demo_world.engine,
        ops_engine=demo_world.engine,
        gateway=demo_world.gateway,
        actor=ADMIN,
        with_datasets=False,
    )


# -- what the pages read -------------------------------------------------------------------


def test_the_store_reads_back_the_scan(first_scan: FirstScan, demo_world: DemoWorld) -> None:
    # A scan of this test's own is the latest whichever tests scanned the world before it;
    # its photo facts are the first scan's (cached), so its findings are the same.
    result = _scan_again(demo_world)
    assert findings_by_user(result) == findings_by_user(first_scan.result)
    ids = [persona.user_id for persona in PERSONAS]
    with demo_world.engine.connect() as conn:
        summary = last_scan(conn)
        findings = latest_findings(conn, ids)
        worst = worst_by_user(conn, ids)
        counts = {count.code: (count.severity, count.users) for count in counts_by_code(conn)}
        top = worst_users(conn, limit=3)
    assert summary is not None and summary.id == result.scan_id
    assert (summary.status, summary.users_scanned) == ("finished", 17)
    assert {
        user_id: [f.to_dict() for f in found] for user_id, found in findings.items()
    } == findings_by_user(result)
    assert findings[BY_KEY["no_model_yet"].user_id] == ()
    assert worst[BY_KEY["stale_version"].user_id] == "critical"
    assert worst[BY_KEY["trainer_changed"].user_id] == "info"
    assert worst[BY_KEY["healthy_single"].user_id] is None
    assert counts["PARAMS_CHANGED"] == ("info", 2)
    assert counts["STALE_VERSION"] == ("critical", 1)
    assert list(counts)[:1] == ["VERSION_FORMAT"] and list(counts)[-1] == "PARAMS_CHANGED"
    assert [user.worst_severity for user in top] == ["critical"] * 3


def test_the_users_filter_finds_the_stale_version_persona(
    first_scan: FirstScan, demo_world: DemoWorld
) -> None:
    with demo_world.engine.connect() as conn:
        assert user_ids_with(conn, codes=["STALE_VERSION"]) == [BY_KEY["stale_version"].user_id]
        dataset = user_ids_with(conn, codes=["DATASET_SHRANK", "DATASET_DEGRADED"])
        info = user_ids_with(conn, severities=["info"])
    assert set(dataset) == {BY_KEY["blurry_retrain"].user_id, BY_KEY["squeezed_retrain"].user_id}
    assert set(info) == {
        BY_KEY[key].user_id for key in ("blurry_retrain", "trainer_changed", "params_changed")
    }


def test_a_second_scan_adds_a_trend_point_and_reuses_the_photo_facts(
    first_scan: FirstScan,
    demo_world: DemoWorld,
) -> None:
    second = _scan_again(demo_world)
    # The photo facts cached by the first scan still count.
    assert findings_by_user(second) == findings_by_user(first_scan.result)
    with demo_world.engine.connect() as conn:
        points = [point for point in trend(conn) if point.scan_id >= first_scan.result.scan_id]
    stale = [(point.scan_id, point.users) for point in points if point.code == "STALE_VERSION"]
    # Other tests may have scanned the world in between: the first and the newest points.
    assert stale[0] == (first_scan.result.scan_id, 1) and stale[-1] == (second.scan_id, 1)


def test_a_rescan_of_a_repaired_user_shows_it_healthy_and_keeps_the_fleet(
    first_scan: FirstScan,
    demo_world: DemoWorld,
) -> None:
    stale_id = BY_KEY["stale_version"].user_id
    evidence = first_scan_finding(first_scan, stale_id, "STALE_VERSION")
    with demo_world.engine.connect() as conn:
        before = conn.execute(
            select(user_models.c.replicate_version_id, user_models.c.lora_weights_url).where(
                user_models.c.user_id == stale_id
            )
        ).one()
    try:
        with demo_world.engine.begin() as conn:  # what the repoint repair writes
            conn.execute(
                update(user_models)
                .where(user_models.c.user_id == stale_id)
                .values(
                    replicate_version_id=evidence["latest_version"],
                    lora_weights_url=evidence["latest_weights_url"],
                )
            )
        rescan = run_scan(
            app_engine=demo_world.engine,
            ops_engine=demo_world.engine,
            gateway=demo_world.gateway,
            actor=ADMIN,
            user_ids=[stale_id],
        )
        assert codes_of(rescan) == {stale_id: ()}
        with demo_world.engine.connect() as conn:
            assert user_ids_with(conn, codes=["STALE_VERSION"]) == []
            assert len(user_ids_with(conn)) == 13  # the rest of the fleet is still there
            assert latest_findings(conn, [stale_id]) == {stale_id: ()}
            assert last_scan(conn).id == rescan.scan_id  # type: ignore[union-attr]
            assert trend(conn)[-1].scan_id != rescan.scan_id  # one user is not a fleet count
    finally:
        with demo_world.engine.begin() as conn:
            conn.execute(
                update(user_models)
                .where(user_models.c.user_id == stale_id)
                .values(
                    replicate_version_id=before.replicate_version_id,
                    lora_weights_url=before.lora_weights_url,
                )
            )


def first_scan_finding(first_scan: FirstScan, user_id: str, code: str) -> Mapping[str, object]:
    user = next(user for user in first_scan.result.users if user.user_id == user_id)
    return next(finding.evidence for finding in user.findings if finding.code == code)


# -- the command line ------------------------------------------------------------------------


CLI_ADMIN = "cli.scan@staff.test"


@pytest.fixture
def live_env(monkeypatch: pytest.MonkeyPatch, demo_world: DemoWorld) -> Iterator[None]:
    """LIVE settings pointing at the world's database and the sandbox, with an admin on
    its staff list for the test's duration (LIVE's command line needs one: --actor)."""
    for name in ("OPS_DATABASE_URL", "REPLICATE_OWNER", "REPLICATE_USERNAME", "DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", demo_world.url)
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_Zx81kQm2Lp0Ws7Ty4Nc6Vb9")
    monkeypatch.setenv("REPLICATE_BASE_URL", demo_world.sandbox_url)
    with demo_world.engine.begin() as conn:
        conn.execute(insert(staff).values(email=CLI_ADMIN, role="admin"))
    try:
        yield
    finally:
        with demo_world.engine.begin() as conn:
            conn.execute(delete(staff).where(staff.c.email == CLI_ADMIN))


@pytest.mark.usefixtures("live_env")
def test_the_cli_prints_every_scanned_user_as_json(
    first_scan: FirstScan, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--json", "--concurrency", "4", "--actor", CLI_ADMIN]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"scan_id", "users"} and printed["scan_id"] > 0
    users = {user["user_id"]: user for user in printed["users"]}
    assert set(users) == {persona.user_id for persona in PERSONAS}  # never trained too
    assert users[BY_KEY["no_model_yet"].user_id]["findings"] == []
    for persona in PERSONAS:
        user = users[persona.user_id]
        assert set(user) == {"user_id", "findings"}
        assert tuple(finding["code"] for finding in user["findings"]) == persona.reported_codes
        for finding in user["findings"]:
            assert set(finding) == {"code", "severity", "title", "evidence", "fix"}
            assert isinstance(finding["evidence"], dict) and finding["title"]
            assert set(finding["fix"]) == {"action", "text"}
    assert users[BY_KEY["healthy_single"].user_id]["findings"] == []
    assert users[BY_KEY["stale_version"].user_id]["findings"][0]["fix"]["action"] == (
        "repoint_latest"
    )


@pytest.mark.usefixtures("live_env")
def test_the_cli_scans_the_users_asked_for_and_summarises(
    first_scan: FirstScan,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stale, healthy = BY_KEY["stale_version"].user_id, BY_KEY["healthy_single"].user_id
    assert (
        main(["--json", "--user", stale, "--user", healthy, "--no-datasets", "--actor", CLI_ADMIN])
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert [
        (user["user_id"], [f["code"] for f in user["findings"]]) for user in printed["users"]
    ] == [(stale, ["STALE_VERSION"]), (healthy, [])]
    assert main(["--user", stale, "--actor", CLI_ADMIN]) == 0
    out, err = capsys.readouterr()
    assert ": 1 user in" in out and "STALE_VERSION" in out and stale in out
    assert "scanned 1 of 1 user" in err
