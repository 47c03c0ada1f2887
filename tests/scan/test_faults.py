"""The scan under trouble, on the demo world: Replicate failing some requests, one model
always, the trainings listing down, a corrupt ledger row. The scan always completes;
only the users whose facts could not be fetched get SCAN_ERROR, and everyone else gets
exactly what a clean scan gives them."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import delete, insert, select

from core.demo import PERSONAS
from core.gateway.gateway import ReplicateGateway, build_client
from core.gateway.limits import RateLimits
from core.gateway.retry import RetryPolicy
from core.ledger.tables import ledger_state, trainings
from core.roles import Actor, Role
from core.scan import ScanResult, last_scan, run_scan
from core.schema import user_models, users
from tests.conftest import TEST_TOKEN, close_client
from tests.demo_world import DemoWorld
from tests.scan.conftest import FirstScan, findings_by_user

BY_KEY = {persona.key: persona for persona in PERSONAS}


@pytest.fixture
def faults(demo_world: DemoWorld) -> Iterator[httpx.Client]:
    """The sandbox's fault rules, cleared before and after (the world itself is kept)."""
    with httpx.Client(base_url=f"{demo_world.sandbox_url}/_sandbox") as http:
        http.delete("/faults").raise_for_status()
        try:
            yield http
        finally:
            http.delete("/faults").raise_for_status()


@pytest.fixture
def clean(first_scan: FirstScan, demo_world: DemoWorld) -> ScanResult:
    """A scan without trouble, to compare with (photo facts come from the cache)."""
    return scan(demo_world)


def scan(
    world: DemoWorld, gateway: ReplicateGateway | None = None, user_ids: list[str] | None = None
) -> ScanResult:
    return run_scan(
        app_engine=world.engine,
        ops_engine=world.engine,
        gateway=gateway or world.gateway,
        actor=Actor("ada@example.test", Role.ADMIN),
        user_ids=user_ids,
        with_datasets=False,
    )


def scan_errors(result: ScanResult) -> dict[str, str]:
    """user -> SCAN_ERROR message, for the users that got one."""
    return {
        user.user_id: str(finding.evidence["message"])
        for user in result.users
        for finding in user.findings
        if finding.code == "SCAN_ERROR"
    }


def model_of(world: DemoWorld, key: str) -> str:
    with world.engine.connect() as conn:
        model_id: str = conn.execute(
            select(user_models.c.replicate_model_id).where(
                user_models.c.user_id == BY_KEY[key].user_id
            )
        ).scalar_one()
    return model_id


@pytest.fixture
def impatient_gateway(demo_world: DemoWorld) -> Iterator[ReplicateGateway]:
    """Gives up on an answer after 2 s, retries quickly, at most 6 tries within 20 s."""
    client = build_client(TEST_TOKEN, demo_world.sandbox_url, timeout=httpx.Timeout(2.0))
    yield ReplicateGateway(
        client,
        limits=RateLimits.per_minute(60_000, 60_000),
        policy=RetryPolicy(base_delay=0.05, max_delay=0.5, total_seconds=20),
    )
    close_client(client)


def test_faults_on_model_reads_give_scan_error_only_where_facts_were_lost(
    demo_world: DemoWorld,
    clean: ScanResult,
    faults: httpx.Client,
    impatient_gateway: ReplicateGateway,
) -> None:
    broken = BY_KEY["stale_version"].user_id
    broken_model = re.escape(model_of(demo_world, "stale_version"))
    rules = [
        {"status": 500, "path": f"^/v1/models/{broken_model}(/|$)"},  # always, first
        {"timeout": True, "hang_seconds": 3, "count": 2, "path": "^/v1/models/"},
        {"status": 429, "retry_after": 1, "share": 0.2, "path": "^/v1/models/", "seed": 4},
        {"status": 500, "share": 0.2, "path": "^/v1/models/"},
    ]
    for rule in rules:
        faults.post("/faults", json=rule).raise_for_status()

    result = scan(demo_world, impatient_gateway)

    assert all(rule["hits"] > 0 for rule in faults.get("/faults").json()["rules"])
    errors = scan_errors(result)
    assert broken in errors and "unavailable" in errors[broken]
    expected = findings_by_user(clean)
    for user_id, findings in findings_by_user(result).items():
        if user_id in errors:
            assert [finding["code"] for finding in findings] == ["SCAN_ERROR"]
        else:
            assert findings == expected[user_id], user_id  # no wrong finding
    assert len(result.users) == len(clean.users)
    with demo_world.engine.connect() as conn:
        summary = last_scan(conn)
    assert summary is not None and (summary.status, summary.users_scanned) == ("finished", 17)


def test_a_failed_listing_changes_nothing_the_ledger_still_vouches_for(
    demo_world: DemoWorld,
    clean: ScanResult,
    faults: httpx.Client,
) -> None:
    faults.post("/faults", json={"status": 500, "path": "^/v1/trainings"}).raise_for_status()
    result = scan(demo_world)
    assert findings_by_user(result) == findings_by_user(clean)


def test_without_a_ledger_a_failed_listing_errs_only_for_users_with_history(
    demo_world: DemoWorld,
    clean: ScanResult,
    faults: httpx.Client,
) -> None:
    newcomer = "5c0ffee0-0000-4000-8000-00000000e1e1"  # uploaded, never trained: no history
    with demo_world.engine.begin() as conn:
        conn.execute(delete(trainings))
        conn.execute(delete(ledger_state))
        conn.execute(insert(users).values(id=newcomer, email="newcomer@example.com"))
        conn.execute(
            insert(user_models).values(
                user_id=newcomer, trigger_word="usernewcomer", training_status="pending"
            )
        )
    try:
        faults.post("/faults", json={"status": 500, "path": "^/v1/trainings"}).raise_for_status()
        result = scan(demo_world)
        errors = scan_errors(result)
        never_trained = BY_KEY["no_model_yet"].user_id  # no model row: nothing to vouch for
        assert set(errors) == {user.user_id for user in clean.users} - {never_trained}
        assert all("training history could not be read" in message for message in errors.values())
        assert findings_by_user(result)[newcomer] == []
        assert findings_by_user(result)[never_trained] == []
    finally:
        faults.delete("/faults").raise_for_status()
        with demo_world.engine.begin() as conn:
            conn.execute(delete(users).where(users.c.id == newcomer))
    recovered = scan(demo_world)  # the next sync lists everything again
    assert findings_by_user(recovered) == findings_by_user(clean)


def test_an_unexpected_error_stays_with_its_user(demo_world: DemoWorld, clean: ScanResult) -> None:
    victim = BY_KEY["healthy_single"].user_id
    others = [BY_KEY["stale_version"].user_id, BY_KEY["trainer_changed"].user_id]
    with demo_world.engine.begin() as conn:  # a row no sync wrote: input is not an object
        conn.execute(
            insert(trainings).values(
                id="corrupt-ledger-row",
                user_id=victim,
                attached_by="upload_path",
                trainer_model="replicate/fast-flux-trainer",
                trainer_version="v",
                status="succeeded",
                input=[1, 2],
            )
        )
    try:
        result = scan(demo_world, user_ids=[victim, *others])
    finally:
        with demo_world.engine.begin() as conn:
            conn.execute(delete(trainings).where(trainings.c.id == "corrupt-ledger-row"))
    errors = scan_errors(result)
    assert set(errors) == {victim}
    assert "unexpectedly (TypeError" in errors[victim]
    expected = findings_by_user(clean)
    assert {user_id: findings_by_user(result)[user_id] for user_id in others} == {
        user_id: expected[user_id] for user_id in others
    }
