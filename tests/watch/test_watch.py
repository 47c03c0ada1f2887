"""A watch pass against the real sandbox and PostgreSQL: what it asks Replicate (counted
by the sandbox), the reviews it queues, once each, and the command line."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx
import pytest
from procrastinate import JobContext
from sqlalchemy import Connection, Engine, func, insert, select, update

from core.db import make_engine
from core.gateway.gateway import ReplicateGateway
from core.jobs.context import SERVICES_KEY, JobServices
from core.ledger.reviews import retrain_reviews
from core.ledger.sync import NEWEST_LISTED_KEY, sync_ledger, sync_trainings
from core.ledger.tables import ledger_state, trainings
from core.sandbox.server import RunningSandbox
from core.schema import user_models, users
from core.watch.__main__ import main
from core.watch.run import LAST_PASS_KEY, WatchReport, run_watch, run_watch_if_due, watch_pass
from core.watch.settings import WatchSettings
from core.watch.tasks import WATCH_KEY, watch
from tests.ledger.conftest import AppWorld
from tests.workers import MODE_SETTINGS, WORKER_TOKEN

pytestmark = pytest.mark.timeout(120)


def counts(control: httpx.Client) -> tuple[int, int]:
    """Listing calls and reads by id the sandbox has answered so far."""
    answered = control.get("/stats").json()["counts"]
    return int(answered.get("GET /v1/trainings", 0)), int(answered.get("GET /v1/trainings/{id}", 0))


def calls_of(control: httpx.Client, before: tuple[int, int]) -> tuple[int, int]:
    after = counts(control)
    return after[0] - before[0], after[1] - before[1]


def reviews(conn: Connection) -> dict[str, tuple[str, str, str]]:
    rows = conn.execute(select(retrain_reviews))
    return {row.training_id: (row.user_id, row.training_status, row.status) for row in rows}


def queued_ids(report: WatchReport) -> list[str]:
    return [review.training_id for review in report.queued]


def test_a_pass_with_nothing_new_makes_one_listing_call_whatever_the_users(
    app_world: AppWorld, conn: Connection, gateway: ReplicateGateway, control: httpx.Client
) -> None:
    control.post("/config", json={"page_size": 2})
    for n in range(4):
        app_world.add_user(f"user000{n}")
        app_world.train(f"user000{n}")
    before = counts(control)
    first = watch_pass(conn, gateway)
    # No bookmark yet: the first complete listing is the ledger sync's, never the watch's.
    assert not first.listed and calls_of(control, before) == (0, 0)

    sync_trainings(conn, gateway)  # what a scan does first: every page (here 2)
    control.post("/config", json={"training_seconds": 600})
    unfinished = [app_world.train("user0000", wait=False) for _ in range(2)]
    sync_trainings(conn, gateway)

    before = counts(control)
    report = watch_pass(conn, gateway)
    assert calls_of(control, before) == (1, 2)  # one listing call, one GET per unfinished
    assert (report.listed, report.new_trainings, report.refreshed) == (True, 0, 2)

    # Many more users, some naming trainings the ledger lacks (the ledger sync's business):
    # the same calls.
    for n in range(40):
        app_world.add_user(f"more{n:04d}", training_id=f"q{n:025d}" if n % 2 else None)
    before = counts(control)
    again = watch_pass(conn, gateway)
    assert calls_of(control, before) == (1, 2)
    assert again.queued == () and len(unfinished) == again.refreshed


def test_a_new_ended_training_gives_one_review_and_a_second_pass_none(
    app_world: AppWorld, conn: Connection, gateway: ReplicateGateway, control: httpx.Client
) -> None:
    app_world.add_user("anna0001")
    app_world.add_user("ben00002")
    app_world.train("anna0001")
    sync_trainings(conn, gateway)
    # The watch begins: what ended before is history, not reviewed.
    assert watch_pass(conn, gateway).queued == ()

    newer = app_world.train("anna0001")
    assert control.post("/trainings/next", json={"outcome": "fail"}).status_code == 201
    failed = app_world.train("ben00002")
    assert failed.status == "failed"
    before = counts(control)
    report = watch_pass(conn, gateway)

    assert calls_of(control, before) == (1, 0)
    assert sorted(queued_ids(report)) == sorted([newer.id, failed.id])
    assert reviews(conn) == {
        newer.id: ("anna0001", "succeeded", "queued"),
        failed.id: ("ben00002", "failed", "queued"),
    }
    second = watch_pass(conn, gateway)
    assert second.queued == () and len(reviews(conn)) == 2


def test_an_unfinished_training_that_ends_between_passes_is_caught_by_the_next(
    app_world: AppWorld, conn: Connection, gateway: ReplicateGateway, control: httpx.Client
) -> None:
    app_world.add_user("anna0001")
    app_world.train("anna0001")
    sync_trainings(conn, gateway)
    control.post("/config", json={"training_seconds": 600})
    running = app_world.train("anna0001", wait=False)

    first = watch_pass(conn, gateway)
    assert first.new_trainings == 1 and first.queued == ()
    assert reviews(conn) == {}

    control.post("/trainings/finish")
    before = counts(control)
    second = watch_pass(conn, gateway)
    assert calls_of(control, before) == (1, 1)  # the listing, and the one it had open
    assert second.refreshed == 1 and queued_ids(second) == [running.id]
    assert reviews(conn) == {running.id: ("anna0001", "succeeded", "queued")}


@pytest.fixture
def engine(console_database_url: str) -> Iterator[Engine]:
    """A database of its own: the passes commit, and two run at once."""
    made = make_engine(console_database_url)
    yield made
    made.dispose()


def add_user(engine: Engine, user_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(users).values(id=user_id, email=f"{user_id}@example.com"))
        conn.execute(
            insert(user_models).values(
                user_id=user_id, trigger_word=f"user{user_id[:8]}", training_status="completed"
            )
        )


def test_two_passes_at_once_queue_one_review(
    engine: Engine, app_world: AppWorld, gateway: ReplicateGateway
) -> None:
    add_user(engine, "anna0001")
    app_world.train("anna0001")
    sync_ledger(ops_engine=engine, app_engine=engine, gateway=gateway)
    run_watch(ops_engine=engine, app_engine=engine, gateway=gateway)
    newer = app_world.train("anna0001")

    start = threading.Barrier(2, timeout=30)
    outcomes: list[WatchReport | BaseException] = []

    def one_pass() -> None:
        try:
            start.wait()
            outcomes.append(run_watch(ops_engine=engine, app_engine=engine, gateway=gateway))
        except BaseException as exc:  # reported below, in the test's thread
            outcomes.append(exc)

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == 2, outcomes
    passes = [outcome for outcome in outcomes if isinstance(outcome, WatchReport)]
    assert len(passes) == 2, outcomes
    assert sorted(len(report.queued) for report in passes) == [0, 1]
    assert [ids for report in passes if (ids := queued_ids(report))] == [[newer.id]]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(retrain_reviews)).scalar_one() == 1


@pytest.fixture
def live_cli(
    console_database_url: str,
    sandbox: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The command line's environment: LIVE, on the test database and the sandbox."""
    for name in MODE_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", console_database_url)
    monkeypatch.setenv("REPLICATE_API_TOKEN", WORKER_TOKEN)
    monkeypatch.setenv("REPLICATE_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))


@pytest.mark.usefixtures("live_cli")
def test_the_command_prints_what_a_pass_queued_as_json(
    engine: Engine,
    app_world: AppWorld,
    gateway: ReplicateGateway,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_user(engine, "anna0001")
    app_world.train("anna0001")
    sync_ledger(ops_engine=engine, app_engine=engine, gateway=gateway)
    assert main(["--once", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["listed"], first["queued"], first["training_ids"]) == (True, 0, [])

    newer = app_world.train("anna0001")
    assert main(["--once", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    shown = json.loads(out)
    assert (shown["queued"], shown["training_ids"]) == (1, [newer.id])
    assert shown["reviews"] == [
        {"training_id": newer.id, "user_id": "anna0001", "training_status": "succeeded"}
    ]


def test_a_tick_runs_a_pass_only_once_the_last_is_an_interval_old(
    engine: Engine, gateway: ReplicateGateway, control: httpx.Client
) -> None:
    minute = timedelta(minutes=1)
    due = partial(
        run_watch_if_due, ops_engine=engine, app_engine=engine, gateway=gateway, tick=minute
    )
    assert due(interval=timedelta(minutes=5)) is not None  # never ran: due
    before = counts(control)
    assert due(interval=timedelta(minutes=5)) is None  # ran a moment ago
    assert calls_of(control, before) == (0, 0)
    assert due(interval=timedelta(0), tick=timedelta(0)) is not None  # an interval on


def test_the_periodic_job_runs_a_due_pass_and_skips_a_young_one(
    engine: Engine, app_world: AppWorld, gateway: ReplicateGateway, control: httpx.Client
) -> None:
    add_user(engine, "anna0001")
    app_world.train("anna0001")
    sync_ledger(ops_engine=engine, app_engine=engine, gateway=gateway)
    services = JobServices(engine, engine, gateway, lambda: pytest.fail("no photo is read"))

    def tick(interval: timedelta) -> None:
        context = SimpleNamespace(
            additional_context={
                SERVICES_KEY: services,
                WATCH_KEY: WatchSettings(interval=interval, tick=timedelta(0)),
            }
        )
        watch(cast(JobContext, context), timestamp=0)

    tick(timedelta(minutes=5))  # the first pass: the watch begins
    newer = app_world.train("anna0001")
    before = counts(control)
    tick(timedelta(minutes=5))  # the last pass is too young: nothing asked
    assert calls_of(control, before) == (0, 0)
    with engine.connect() as conn:
        assert reviews(conn) == {}
    tick(timedelta(0))
    with engine.connect() as conn:
        assert reviews(conn) == {newer.id: ("anna0001", "succeeded", "queued")}


def test_a_bookmark_replicate_no_longer_lists_does_not_make_a_full_listing(
    app_world: AppWorld, conn: Connection, gateway: ReplicateGateway, control: httpx.Client
) -> None:
    control.post("/config", json={"page_size": 2})
    app_world.add_user("anna0001")
    for _ in range(5):
        app_world.train("anna0001")
    sync_trainings(conn, gateway)
    bookmark = conn.execute(
        select(ledger_state.c.value).where(ledger_state.c.key == NEWEST_LISTED_KEY)
    ).scalar_one()
    # As if Replicate had dropped the bookmarked training: the listing never meets its id.
    conn.execute(update(trainings).where(trainings.c.id == bookmark).values(id="vanished"))
    conn.execute(
        update(ledger_state).where(ledger_state.c.key == NEWEST_LISTED_KEY).values(value="vanished")
    )
    before = counts(control)
    watch_pass(conn, gateway)
    assert calls_of(control, before) == (1, 0)  # not the three pages of a full listing


@pytest.mark.usefixtures("live_cli")
def test_the_command_says_in_one_line_when_replicate_fails_and_writes_nothing(
    engine: Engine,
    app_world: AppWorld,
    gateway: ReplicateGateway,
    control: httpx.Client,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_user(engine, "anna0001")
    app_world.train("anna0001")
    sync_ledger(ops_engine=engine, app_engine=engine, gateway=gateway)
    rule = {"status": 500, "path": r"^/v1/trainings$", "methods": ["GET"]}
    assert control.post("/faults", json=rule).status_code == 201

    assert main(["--once", "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(ledger_state.c.value).where(ledger_state.c.key == LAST_PASS_KEY)
            ).scalar_one_or_none()
            is None
        )  # no pass was recorded
