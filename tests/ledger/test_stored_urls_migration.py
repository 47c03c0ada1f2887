"""Migration 0012: URLs kept with their secrets before the console stored them without are
rewritten the way it now stores them; a cache row that then says the same as one already
stored that way is dropped; running it again changes nothing."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import insert, select, text

from core.db import alembic_config, make_engine, upgrade_ops
from core.ledger.tables import dataset_facts, training_photos, trainings
from core.redaction import stored_url
from core.schema import OPS_SCHEMA, audit_log
from tests.scan.test_stored_urls import secrets_in_ops

pytestmark = pytest.mark.timeout(300)

SIGNED = "https://bucket.s3.amazonaws.com/z.zip?X-Amz-Signature=abc&X-Amz-Credential=k"
RESIGNED = "https://bucket.s3.amazonaws.com/z.zip?X-Amz-Signature=def&X-Amz-Credential=k"
LOGIN = "https://user:pass@files.example.test/a.zip"
PLAIN = "https://replicate.delivery/x/weights.tar"


def test_secrets_written_before_are_rewritten_and_duplicate_cache_rows_dropped(
    fresh_database_url: str,
) -> None:
    config = alembic_config(fresh_database_url)
    upgrade_ops(fresh_database_url)
    command.downgrade(config, "0011")
    engine = make_engine(fresh_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(trainings).values(
                    id="t1",
                    user_id="u1",
                    attached_by="training_id",
                    trainer_model="replicate/fast-flux-trainer",
                    trainer_version="f" * 64,
                    status="succeeded",
                    input={"input_images": SIGNED, "trigger_word": "zoe1", "steps": 1000},
                    output_weights=PLAIN,
                )
            )
            # The same ZIP cached three times: twice with a signature, once as now stored.
            for url in (SIGNED, RESIGNED, stored_url(SIGNED)):
                conn.execute(insert(dataset_facts).values(url=url, facts={"image_count": 5}))
            conn.execute(insert(training_photos).values(zip_url=LOGIN, member="a.jpg"))
            conn.execute(
                insert(audit_log).values(
                    actor_email="ada@example.test",
                    actor_role="admin",
                    action="scan:run",
                    details={"zips": [SIGNED, PLAIN], "note": f"read {LOGIN} again"},
                )
            )
        with engine.connect() as conn:
            assert secrets_in_ops(conn)  # the world as the old code left it

        command.upgrade(config, "0012")
        with engine.connect() as conn:
            assert secrets_in_ops(conn) == []
            assert conn.execute(select(trainings.c.input["input_images"].astext)).scalar_one() == (
                stored_url(SIGNED)
            )
            assert conn.execute(select(trainings.c.output_weights)).scalar_one() == PLAIN
            assert conn.execute(select(dataset_facts.c.url)).scalars().all() == [stored_url(SIGNED)]
            assert conn.execute(select(training_photos.c.zip_url)).scalar_one() == (
                "https://[redacted]@files.example.test/a.zip"
            )
            details = conn.execute(select(audit_log.c.details)).scalar_one()
            assert details == {
                "zips": [stored_url(SIGNED), PLAIN],
                "note": "read https://[redacted]@files.example.test/a.zip again",
            }
            before = _dump(conn)

        command.downgrade(config, "0011")
        command.upgrade(config, "0012")  # again: nothing changes
        with engine.connect() as conn:
            assert _dump(conn) == before
    finally:
        engine.dispose()


def _dump(conn: object) -> list[str]:
    rows = []
    for table in ("trainings", "dataset_facts", "training_photos", "audit_log"):
        rows.extend(
            conn.execute(  # type: ignore[attr-defined]
                text(f"SELECT to_jsonb(t)::text FROM {OPS_SCHEMA}.{table} t")
            ).scalars()
        )
    return sorted(rows, key=repr)
