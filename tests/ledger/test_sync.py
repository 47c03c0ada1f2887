"""sync_trainings() against the real sandbox and PostgreSQL: paging, bookmarks, fetches by
the app's training ids, refreshes, aborted trainings and attachment."""

from __future__ import annotations

import httpx
from sqlalchemy import Connection, func, select, text, update

from core.gateway.gateway import ReplicateGateway
from core.ledger import ledger_for_user, sync_trainings
from core.ledger.sync import (
    NEWEST_LISTED_KEY,
    NOT_FOUND_RECHECK,
    last_listing,
    sync_user_trainings,
)
from core.ledger.tables import ledger_state, trainings, trainings_not_found
from core.schema import user_models
from tests.ledger.conftest import AppWorld


def listing_requests(control: httpx.Client) -> int:
    return int(control.get("/stats").json()["counts"].get("GET /v1/trainings", 0))


def training_reads(control: httpx.Client) -> int:
    return int(control.get("/stats").json()["counts"].get("GET /v1/trainings/{id}", 0))


def ledger(conn: Connection) -> dict[str, tuple[str | None, str | None, str]]:
    rows = conn.execute(
        select(trainings.c.id, trainings.c.user_id, trainings.c.attached_by, trainings.c.status)
    )
    return {row.id: (row.user_id, row.attached_by, row.status) for row in rows}


def test_first_sync_reads_every_page_and_attaches(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    control: httpx.Client,
) -> None:
    control.post("/config", json={"page_size": 2})
    anna = [app_world.train("anna0001") for _ in range(3)]
    ben = [app_world.train("ben00002") for _ in range(2)]
    app_world.add_user(
        "anna0001", model_id="sandrasocial/user-anna0001-selfie-lora", training_id=anna[-1].id
    )
    app_world.add_user("ben00002")  # no model id, no training id: the trigger word decides
    before = listing_requests(control)

    report = sync_trainings(conn, gateway)

    assert listing_requests(control) - before == 3  # pages of 2, 2 and 1
    assert report.full_listing and report.listed == 5
    assert (report.inserted, report.updated, report.unattached) == (5, 0, 0)
    assert dict(report.attached) == {"training_id": 1, "output_model": 2, "trigger_word": 2}
    rows = ledger(conn)
    assert rows[anna[-1].id] == ("anna0001", "training_id", "succeeded")
    assert rows[anna[0].id] == ("anna0001", "output_model", "succeeded")
    assert {rows[t.id][:2] for t in ben} == {("ben00002", "trigger_word")}
    assert (
        conn.execute(
            select(ledger_state.c.value).where(ledger_state.c.key == NEWEST_LISTED_KEY)
        ).scalar_one()
        == ben[-1].id
    )

    records = ledger_for_user(conn, "anna0001")
    assert [record.id for record in records] == [t.id for t in anna]  # oldest first
    assert records[-1].version_hash == anna[-1].version_hash
    assert records[-1].trigger_word == "useranna0001"
    assert records[-1].destination == "sandrasocial/user-anna0001-selfie-lora"
    assert records[-1].dataset is None  # no facts computed yet


def test_second_sync_stops_at_the_newest_known_id(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    control: httpx.Client,
) -> None:
    control.post("/config", json={"page_size": 2})
    app_world.add_user("anna0001")
    for _ in range(5):
        app_world.train("anna0001")
    sync_trainings(conn, gateway)
    newer = app_world.train("anna0001")
    before = listing_requests(control)

    report = sync_trainings(conn, gateway)

    assert listing_requests(control) - before == 1  # the first page holds the known id
    assert not report.full_listing
    assert (report.listed, report.inserted, report.updated) == (1, 1, 0)
    assert ledger(conn)[newer.id] == ("anna0001", "trigger_word", "succeeded")

    before = listing_requests(control)
    assert sync_trainings(conn, gateway).listed == 0
    assert listing_requests(control) - before == 1
    before = listing_requests(control)
    assert sync_trainings(conn, gateway, full=True).listed == 6
    assert listing_requests(control) - before == 3


def test_a_training_id_only_in_user_models_is_fetched(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    control: httpx.Client,
) -> None:
    old = app_world.train("anna0001")
    newest = app_world.train("ben00002")
    app_world.add_user("anna0001", training_id=f" {old.id} ")  # whitespace junk, as in the app
    app_world.add_user("ben00002", trigger_word="userben0", training_id="not/an id")
    app_world.add_user("carl0003", training_id="qqqqqqqqqqqqqqqqqqqqqqqqqq")  # Replicate: 404
    # As if an earlier sync had listed down to ``newest`` while the ledger lacked ``old``:
    # the incremental listing will not reach ``old`` again.
    conn.execute(ledger_state.insert().values(key=NEWEST_LISTED_KEY, value=newest.id))
    reads = training_reads(control)

    report = sync_trainings(conn, gateway)

    assert report.listed == 0 and report.fetched_for_rows == 1
    assert training_reads(control) - reads == 2  # old, and the id that is not on Replicate
    assert report.not_found == ("qqqqqqqqqqqqqqqqqqqqqqqqqq",)
    assert report.errors == {"not/an id": "not a Replicate training id; not fetched"}
    assert ledger(conn) == {old.id: ("anna0001", "training_id", "succeeded")}


def test_an_id_replicate_answered_404_for_is_not_asked_again_until_a_full_sync(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    control: httpx.Client,
) -> None:
    app_world.add_user("carl0003", training_id="qqqqqqqqqqqqqqqqqqqqqqqqqq")  # Replicate: 404
    first = sync_trainings(conn, gateway)
    assert first.not_found == ("qqqqqqqqqqqqqqqqqqqqqqqqqq",) and first.skipped_not_found == 0
    reads = training_reads(control)

    again = sync_trainings(conn, gateway)
    assert training_reads(control) == reads  # remembered: not asked again
    assert (again.not_found, again.skipped_not_found) == ((), 1)

    # Long after, it is asked again (and still answers 404).
    conn.execute(
        update(trainings_not_found).values(last_answered_at=func.now() - NOT_FOUND_RECHECK * 2)
    )
    later = sync_trainings(conn, gateway)
    assert later.not_found == ("qqqqqqqqqqqqqqqqqqqqqqqqqq",)
    assert training_reads(control) == reads + 1
    full = sync_trainings(conn, gateway, full=True)  # a full sync asks about everything
    assert full.not_found == ("qqqqqqqqqqqqqqqqqqqqqqqqqq",)
    assert training_reads(control) == reads + 2


def test_a_training_once_missing_and_then_found_is_forgotten_as_missing(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
) -> None:
    found = app_world.train("anna0001")
    app_world.add_user("anna0001", training_id=found.id)
    conn.execute(trainings_not_found.insert().values(id=found.id))
    sync_trainings(conn, gateway, full=True)
    assert ledger(conn)[found.id][0] == "anna0001"
    assert conn.execute(select(trainings_not_found.c.id)).scalars().all() == []


def test_aborted_and_failed_trainings_are_stored_as_such(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    control: httpx.Client,
) -> None:
    app_world.add_user("anna0001")
    control.post("/trainings/next", json={"outcome": "abort"})
    aborted = app_world.train("anna0001")
    control.post("/trainings/next", json={"outcome": "fail", "error": "CUDA out of memory"})
    failed = app_world.train("anna0001")
    assert (aborted.status, failed.status) == ("aborted", "failed")

    sync_trainings(conn, gateway)

    records = {record.id: record for record in ledger_for_user(conn, "anna0001")}
    assert records[aborted.id].status == "aborted"
    assert records[failed.id].status == "failed"
    assert records[failed.id].error == "CUDA out of memory"
    assert records[failed.id].output_version is None and records[failed.id].destination is None


def test_running_trainings_are_refreshed_until_terminal(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    control: httpx.Client,
) -> None:
    app_world.add_user("anna0001")
    control.post("/config", json={"training_seconds": 600})
    running = app_world.train("anna0001", wait=False)
    first = sync_trainings(conn, gateway)
    assert ledger(conn)[running.id][2] in ("starting", "processing")
    assert first.refreshed == 0

    control.post("/trainings/finish")
    reads = training_reads(control)
    second = sync_trainings(conn, gateway)

    assert second.listed == 0 and second.refreshed == 1  # the bookmark is this training
    assert training_reads(control) - reads == 1
    assert ledger(conn)[running.id] == ("anna0001", "trigger_word", "succeeded")
    assert ledger_for_user(conn, "anna0001")[0].version_hash is not None


def test_attachments_survive_the_app_forgetting_and_loose_ones_are_retried(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
) -> None:
    first = app_world.train("anna0001", trigger_word="stranger")
    app_world.add_user("anna0001", trigger_word="useranna0001", training_id=first.id)
    stray = app_world.train(
        "dora0004", trigger_word="userdora0004", destination="sandrasocial/shared-lora"
    )
    sync_trainings(conn, gateway)
    assert ledger(conn)[first.id][:2] == ("anna0001", "training_id")
    assert ledger(conn)[stray.id][:2] == (None, None)

    # The app resets the row for a retrain (training_id NULL); Dora's row appears.
    conn.execute(
        user_models.update().where(user_models.c.user_id == "anna0001").values(training_id=None)
    )
    app_world.add_user("dora0004")
    report = sync_trainings(conn, gateway, full=True)

    assert ledger(conn)[first.id][:2] == ("anna0001", "training_id")  # kept
    assert ledger(conn)[stray.id][:2] == ("dora0004", "trigger_word")
    assert report.unattached == 0


def test_sync_only_reads_the_app_tables(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
) -> None:
    app_world.train("anna0001")
    app_world.add_user("anna0001", training_id="qqqqqqqqqqqqqqqqqqqqqqqqqq", status="training")
    snapshot = conn.execute(text("SELECT * FROM user_models ORDER BY id")).all()
    sync_trainings(conn, gateway)
    assert conn.execute(text("SELECT * FROM user_models ORDER BY id")).all() == snapshot


def test_one_sync_attaches_a_page_of_users(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    control: httpx.Client,
) -> None:
    control.post("/config", json={"page_size": 100})
    zip_url = app_world.put_zip("anna0001", b"")  # the trainer fails it: still a training
    for index in range(60):
        app_world.train(f"user{index:04d}", zip_url=zip_url, wait=False)
    for index in range(60):
        app_world.add_user(f"user{index:04d}")
    reads_before = training_reads(control)
    report = sync_trainings(conn, gateway)
    assert report.listed == 60 and report.inserted == 60 and report.unattached == 0
    # No round trip per row: the listing carries what the ledger stores.
    assert training_reads(control) == reads_before


def test_one_users_refresh_reads_their_trainings_by_id_and_lists_nothing(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    control: httpx.Client,
) -> None:
    older = app_world.train("anna0001")
    newest = app_world.train("anna0001")
    bens = app_world.train("ben00002")
    app_world.add_user("anna0001", training_id=newest.id)
    app_world.add_user("ben00002", training_id=bens.id)
    listings, reads = listing_requests(control), training_reads(control)

    report = sync_user_trainings(conn, gateway, "anna0001")

    assert listing_requests(control) == listings  # nothing fleet-wide
    assert training_reads(control) - reads == 1  # the row's training, by id
    assert not report.full_listing and report.fetched_for_rows == 1
    # Only anna's row's training: her older one waits for the workers' listing.
    assert ledger(conn) == {newest.id: ("anna0001", "training_id", "succeeded")}
    assert older.id not in ledger(conn) and bens.id not in ledger(conn)
    assert last_listing(conn) is None  # no listing completed: the history is not fresh
    again = sync_user_trainings(conn, gateway, "anna0001")
    assert training_reads(control) - reads == 1 and again.fetched_for_rows == 0


def test_a_completed_listing_is_recorded_and_a_users_refresh_leaves_it(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
) -> None:
    app_world.add_user("anna0001", training_id=app_world.train("anna0001").id)
    assert last_listing(conn) is None
    sync_trainings(conn, gateway)
    listing = last_listing(conn)
    assert listing is not None
    mark, age = listing
    assert age.total_seconds() >= 0
    conn.execute(update(trainings).values(status="processing"))  # an unfinished one
    report = sync_user_trainings(conn, gateway, "anna0001")
    assert report.refreshed == 1  # read again by id, now final
    listed_again = last_listing(conn)
    assert listed_again is not None and listed_again[0] == mark
