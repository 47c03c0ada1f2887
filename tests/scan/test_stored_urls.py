"""No table of schema ops keeps a URL's secrets, and the work that needs them still works.

The app hands Replicate a presigned ZIP URL (S3's ``X-Amz-Signature``) or one with a
``user:password@``. The console used to keep those URLs as given in the ledger, the photo
caches, the scan's rows and its jobs' arguments. Now every write keeps them without their
secrets, and a download of a ZIP so stored asks Replicate's record of the training for the
full URL. The sandbox's blob store refuses a signature or password that reads
``[redacted]`` (as S3 refuses a wrong one), so the photos below can only be read from the
full URL.

The guard is ``secrets_in_ops``: it reads every text, JSON and array column of every table
in schema ops (procrastinate's jobs included) and names where a secret is found.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Connection, Engine, insert, select, text

from core.compare.photos import photos_of, queue_reads, read_missing
from core.db import make_engine
from core.gateway.gateway import ReplicateGateway
from core.imaging.faces import FaceReader
from core.ledger.datasets import load_dataset_facts
from core.ledger.tables import trainings
from core.redaction import stored_url
from core.roles import Actor, Role
from core.sandbox.server import RunningSandbox
from core.scan import run_scan
from core.schema import OPS_SCHEMA, user_models, users
from tests.photos import selfie_zip
from tests.user_world import train

OWNER = "sandrasocial"
ADMIN = Actor("ada@example.test", Role.ADMIN)
SIGNED = "5e9e0000-0000-4000-8000-000000000001"
LOGIN = "10910000-0000-4000-8000-000000000002"
SECRETS = ("X-Amz-Signature=abc", "X-Amz-Credential=k", "user:pass")
TEXT_TYPES = ("text", "character varying", "jsonb", "json", "ARRAY")


@dataclass(frozen=True)
class SecretWorld:
    engine: Engine
    zip_urls: dict[str, str]  # user -> the full ZIP URL the app gave Replicate


def secrets_in_ops(conn: Connection) -> list[str]:
    """Where in schema ops any of ``SECRETS`` is found: "table.column" for each."""
    columns = conn.execute(
        text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = :schema AND data_type = ANY(:types) "
            "ORDER BY table_name, column_name"
        ),
        {"schema": OPS_SCHEMA, "types": list(TEXT_TYPES)},
    ).all()
    assert len({table for table, _ in columns}) > 10  # every table, procrastinate's too
    found = []
    for table, column in columns:
        for secret in SECRETS:
            hits = conn.execute(
                text(
                    f'SELECT count(*) FROM {OPS_SCHEMA}."{table}" '
                    f'WHERE strpos("{column}"::text, :secret) > 0'
                ),
                {"secret": secret},
            ).scalar_one()
            if hits:
                found.append(f"{table}.{column} holds {secret!r}")
    return found


@pytest.fixture
def secret_world(
    console_database_url: str, gateway: ReplicateGateway, sandbox: RunningSandbox
) -> Iterator[SecretWorld]:
    """Two users trained once each, the app's way, on a ZIP in the blob store: SIGNED's
    URL presigned, LOGIN's with a user and password."""
    engine = make_engine(console_database_url)
    base = urlsplit(sandbox.base_url)
    zip_urls: dict[str, str] = {}
    try:
        for user_id in (SIGNED, LOGIN):
            path = f"training/{user_id}/1767225600000-images.zip"
            content = selfie_zip(5, long_side=300)
            httpx.put(f"{sandbox.base_url}/_blob/{path}", content=content).raise_for_status()
            if user_id == SIGNED:
                url = f"{sandbox.base_url}/_blob/{path}?X-Amz-Signature=abc&X-Amz-Credential=k"
            else:
                url = f"{base.scheme}://user:pass@{base.netloc}/_blob/{path}"
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
        yield SecretWorld(engine, zip_urls)
    finally:
        engine.dispose()


def test_the_sandbox_refuses_a_redacted_signature_or_password(
    sandbox: RunningSandbox, gateway: ReplicateGateway
) -> None:
    """What makes the test below mean something: a stored URL does not download."""
    path = "training/redacted/1767225600000-images.zip"
    httpx.put(f"{sandbox.base_url}/_blob/{path}", content=b"zip").raise_for_status()
    base = urlsplit(sandbox.base_url)
    full = f"{sandbox.base_url}/_blob/{path}?X-Amz-Signature=abc"
    assert httpx.get(full).status_code == 200
    assert httpx.get(stored_url(full)).status_code == 403
    login = f"{base.scheme}://user:pass@{base.netloc}/_blob/{path}"
    assert httpx.get(login).status_code == 200
    assert httpx.get(stored_url(login)).status_code == 403


@pytest.mark.timeout(180)
def test_no_ops_table_keeps_a_zip_url_s_secrets_and_the_photos_are_still_read(
    secret_world: SecretWorld, gateway: ReplicateGateway, face_reader: FaceReader
) -> None:
    engine, zip_urls = secret_world.engine, secret_world.zip_urls
    result = run_scan(
        app_engine=engine, ops_engine=engine, gateway=gateway, actor=ADMIN, face_reader=face_reader
    )
    found = {user.user_id: [finding.code for finding in user.findings] for user in result.users}
    assert set(found) == {SIGNED, LOGIN}
    for codes in found.values():
        assert "SCAN_ERROR" not in codes  # the photos were read: from the full URL

    with engine.connect() as conn:
        synced = {row.user_id: row.input["input_images"] for row in conn.execute(select(trainings))}
        facts = load_dataset_facts(conn, zip_urls.values())
    assert synced == {user_id: stored_url(url) for user_id, url in zip_urls.items()}
    assert synced[SIGNED].endswith("?X-Amz-Signature=[redacted]&X-Amz-Credential=[redacted]")
    assert "://[redacted]@" in synced[LOGIN]
    for url in zip_urls.values():
        assert facts[url].error is None and facts[url].image_count == 5

    # The User page's pictures: queued by whatever URL the page has, read by the job's way.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM ops.training_photos"))
        assert sorted(queue_reads(conn, list(zip_urls.values()))) == sorted(synced.values())
    assert read_missing(engine, gateway, face_reader, sorted(synced.values())) == []
    with engine.connect() as conn:
        for url in zip_urls.values():
            assert len(photos_of(conn, url)) == 5

    with engine.connect() as conn:
        assert secrets_in_ops(conn) == []
