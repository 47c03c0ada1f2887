"""Synthetic users for scale: COPY-loaded, unique where the app's schema says so."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from core.config import Mode
from core.db import create_app_tables, make_engine
from core.demo import add_synthetic_users
from core.schema import user_models, users


@pytest.fixture
def empty_engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url)
    create_app_tables(engine, mode=Mode.DEMO)
    yield engine
    engine.dispose()


def test_synthetic_users_are_added_with_unique_ids_and_trigger_words(
    empty_engine: Engine,
) -> None:
    assert add_synthetic_users(engine=empty_engine, count=3000) == 3000
    assert add_synthetic_users(engine=empty_engine, count=2000) == 2000
    assert add_synthetic_users(engine=empty_engine, count=0) == 0
    with empty_engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(users)).scalar_one()
        ids = conn.execute(select(users.c.id)).scalars().all()
        rows = conn.execute(select(user_models)).mappings().all()
    assert count == len(set(ids)) == 5000
    triggers = [row["trigger_word"] for row in rows]
    assert len(triggers) == len(set(triggers))
    assert all(row["trigger_word"] == f"user{row['user_id'][:8]}" for row in rows)
    assert 0.8 < len(rows) / count < 0.95  # some users never trained
    statuses = {row["training_status"] for row in rows}
    assert statuses == {"completed", "pending", "failed", "training"}
    legacy = sum(1 for user_id in ids if user_id.isdigit())
    assert 0.1 < legacy / count < 0.3
    completed = [row for row in rows if row["training_status"] == "completed"]
    assert all(len(row["replicate_version_id"]) == 64 for row in completed)
