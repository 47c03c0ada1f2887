"""A training ZIP URL no download can read does not fail a foreground fleet scan.

Measured before: one user's ZIP URL whose host has a label over 63 characters made the
download raise a raw UnicodeError (socket's idna codec), which nothing translated, so
the whole scan failed. Now that URL is that user's rejected ZIP, cached with its reason,
and that user's dataset checks say so in a SCAN_ERROR note; the other users are checked
as if nothing happened.

The world is made the app's way on the sandbox: three users, each trained once into
their own model with a ZIP in the blob store; the third user's ``input_images`` names
that blob under a host no resolver can be asked about. The sandbox's trainer reads its
own blobs by path whatever the host, so Replicate's record is a succeeded training with
exactly that string as its input, synced into the ledger by the scan itself: no ledger
row is written by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256

import httpx
import pytest
from sqlalchemy import Connection, Engine, insert, select

from core.db import make_engine
from core.gateway.gateway import ReplicateGateway
from core.imaging.faces import FaceReader
from core.ledger.datasets import load_dataset_facts
from core.ledger.tables import dataset_facts, trainings
from core.roles import Actor, Role
from core.sandbox.server import RunningSandbox
from core.scan import run_scan
from core.scan.datasets import RECHECK_HINT
from core.scan.store import latest_findings
from core.schema import user_models, users
from tests.photos import selfie_zip
from tests.user_world import train

OWNER = "sandrasocial"
ADMIN = Actor("ada@example.test", Role.ADMIN)
FINE = ("f1e0a000-0000-4000-8000-000000000001", "f1e0b000-0000-4000-8000-000000000002")
BAD = "badb0000-0000-4000-8000-000000000003"
BAD_HOST = f"{'a' * 64}.blob.example.com"  # a label of 64 characters: idna refuses it
# A query of 3,000 characters: the URL is readable, but too long to be a key of the facts
# cache or of the scan's rows (PostgreSQL refused the row; the scan failed). Not a
# signature: that is never kept, so it cannot make a key too long.
LONG_QUERY = "filter=" + "".join(sha256(b"%d" % n).hexdigest() for n in range(47))


@dataclass(frozen=True)
class BadUrlWorld:
    engine: Engine
    zip_urls: dict[str, str]  # user -> the ZIP URL of their one training


@pytest.fixture
def bad_url_world(
    request: pytest.FixtureRequest,
    console_database_url: str,
    gateway: ReplicateGateway,
    sandbox: RunningSandbox,
) -> Iterator[BadUrlWorld]:
    """Three users trained once each; BAD's ZIP URL is ``request.param`` formatted with
    the sandbox's base URL and the blob's path."""
    engine = make_engine(console_database_url)
    zip_urls: dict[str, str] = {}
    try:
        for user_id in (*FINE, BAD):
            path = f"training/{user_id}/1767225600000-images.zip"
            content = selfie_zip(5, long_side=300)
            httpx.put(f"{sandbox.base_url}/_blob/{path}", content=content).raise_for_status()
            url = f"{sandbox.base_url}/_blob/{path}"
            if user_id == BAD:
                url = request.param.format(base=sandbox.base_url, path=path)
            model = f"{OWNER}/user-{user_id[:8]}-selfie-lora"
            gateway.create_model(model)
            training = train(gateway, model, url, f"user{user_id[:8]}")
            zip_urls[user_id] = url
            with engine.begin() as conn:
                conn.execute(insert(users).values(id=user_id, email=f"{user_id[:8]}@example.com"))
                conn.execute(
                    insert(user_models).values(
                        user_id=user_id,
                        trigger_word=f"user{user_id[:8]}",
                        replicate_model_id=model,
                        replicate_version_id=training.version_hash,
                        training_id=training.id,
                        training_status="completed",
                    )
                )
        yield BadUrlWorld(engine, zip_urls)
    finally:
        engine.dispose()


def _computed_at(conn: Connection) -> dict[str, datetime]:
    rows = conn.execute(select(dataset_facts.c.url, dataset_facts.c.computed_at))
    return {row.url: row.computed_at for row in rows}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "bad_url_world", [f"https://{BAD_HOST}/_blob/{{path}}?token=s3cr3t"], indirect=True
)
def test_a_zip_url_with_an_unencodable_host_is_that_user_s_note_not_a_failed_scan(
    bad_url_world: BadUrlWorld, gateway: ReplicateGateway, face_reader: FaceReader
) -> None:
    engine, zip_urls = bad_url_world.engine, bad_url_world.zip_urls
    result = run_scan(
        app_engine=engine, ops_engine=engine, gateway=gateway, actor=ADMIN, face_reader=face_reader
    )  # raised the UnicodeError (and marked the scan failed) before
    found = {user.user_id: user.findings for user in result.users}
    assert set(found) == {*FINE, BAD}

    # The others: their photos read and measured, no note about them.
    with engine.connect() as conn:
        synced = {row.user_id: row.input for row in conn.execute(select(trainings))}
        facts = load_dataset_facts(conn, zip_urls.values())
        stored = latest_findings(conn, [*FINE, BAD])
        computed_at = _computed_at(conn)
    # The ledger holds the bad URL, without its token.
    assert synced[BAD]["input_images"] == zip_urls[BAD].replace("s3cr3t", "[redacted]")
    for user_id in FINE:
        assert facts[zip_urls[user_id]].error is None
        assert facts[zip_urls[user_id]].image_count == 5
        assert "SCAN_ERROR" not in [finding.code for finding in found[user_id]]

    # The bad one: rejected for good with the reason, and said on the user's note.
    reason = facts[zip_urls[BAD]].error
    assert reason is not None and "a label of 64 characters; DNS allows 63" in reason
    (note,) = [finding for finding in stored[BAD] if finding.code == "SCAN_ERROR"]
    message = str(note.evidence["message"])
    assert message.startswith("the photos of 1 training(s) could not be used")
    assert f"Cannot download 'https://{BAD_HOST}/_blob/" in message  # cut at 120
    assert "a label of 64 characters; DNS allows 63" in message
    assert "trying again cannot help" in message and RECHECK_HINT in message
    assert "s3cr3t" not in message and "token=" not in message
    assert "the photos of 1 training(s) could not be used" in note.title

    # Cached as rejected: the next scan reads nothing again and says the same.
    again = run_scan(app_engine=engine, ops_engine=engine, gateway=gateway, actor=ADMIN)
    with engine.connect() as conn:
        assert _computed_at(conn) == computed_at
    notes = {
        user.user_id: [f.evidence["message"] for f in user.findings if f.code == "SCAN_ERROR"]
        for user in again.users
    }
    assert notes == {FINE[0]: [], FINE[1]: [], BAD: [message]}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("bad_url_world", [f"{{base}}/_blob/{{path}}?{LONG_QUERY}"], indirect=True)
def test_a_zip_url_too_long_to_keep_is_that_user_s_note_not_a_failed_scan(
    bad_url_world: BadUrlWorld, gateway: ReplicateGateway, face_reader: FaceReader
) -> None:
    engine, zip_urls = bad_url_world.engine, bad_url_world.zip_urls
    result = run_scan(
        app_engine=engine, ops_engine=engine, gateway=gateway, actor=ADMIN, face_reader=face_reader
    )  # PostgreSQL refused the URL as a key of scan_zips and the scan failed before
    found = {user.user_id: user.findings for user in result.users}
    with engine.connect() as conn:
        facts = load_dataset_facts(conn, zip_urls.values())
    assert set(facts) == {zip_urls[user_id] for user_id in FINE}  # the long one: no row
    for user_id in FINE:
        assert facts[zip_urls[user_id]].error is None
        assert "SCAN_ERROR" not in [finding.code for finding in found[user_id]]
    (note,) = [finding for finding in found[BAD] if finding.code == "SCAN_ERROR"]
    message = str(note.evidence["message"])
    assert message.startswith("the photos of 1 training(s) cannot be read")
    assert "more than the 2,600 the console can keep track of" in message
    assert "filter=" not in message and RECHECK_HINT not in message
