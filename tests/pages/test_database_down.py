"""The database stopping under a running console: the pages say so with the next step,
never a traceback, and nothing is written half-way. A PostgreSQL of this module's own
(the session's server is shared by every other test), stopped for real mid-session."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import insert

from core.config import Mode
from core.db import (
    create_app_tables,
    embedded_postgres_url,
    make_engine,
    stop_embedded_postgres,
    upgrade_ops,
)
from core.sandbox.server import RunningSandbox
from core.schema import user_models, users
from tests.pages.conftest import AUTH, LIVE_ENV_NAMES, LIVE_TOKEN, ROLES, new_app, open_page


@pytest.fixture
def own_database(monkeypatch: pytest.MonkeyPatch, sandbox_server: RunningSandbox) -> Iterator[Path]:
    """LIVE settings aimed at a PostgreSQL of this test's own, with one user in it."""
    data_dir = Path(tempfile.mkdtemp(prefix="sselfie-db-down-"))
    url = embedded_postgres_url(data_dir)
    engine = make_engine(url)
    try:
        create_app_tables(engine, mode=Mode.DEMO)
        upgrade_ops(url)
        with engine.begin() as conn:
            conn.execute(insert(users).values(id="u-db-down", email="down@example.test"))
            conn.execute(
                insert(user_models).values(
                    user_id="u-db-down", trigger_word="userdbdown", training_status="pending"
                )
            )
    finally:
        engine.dispose()
    for name in LIVE_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("REPLICATE_API_TOKEN", LIVE_TOKEN)
    monkeypatch.setenv("REPLICATE_BASE_URL", sandbox_server.base_url)
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        yield data_dir
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
        stop_embedded_postgres(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_a_stopped_database_is_a_message_on_every_page(own_database: Path) -> None:
    at = new_app(
        email="support@staff.test",
        secrets={"auth": dict(AUTH), "roles": {k: list(v) for k, v in ROLES.items()}},
    ).run()
    assert not at.exception, at.exception
    assert "u-db-down" in set(at.dataframe[0].value["user"])

    assert stop_embedded_postgres(own_database)
    for page in ("users", "fleet", "user"):
        at = open_page(at, page, **({"user": "u-db-down"} if page == "user" else {}))
        assert not at.exception, (page, at.exception)
        messages = [error.value for error in at.error]
        assert any("The database is not answering" in text for text in messages), (page, messages)
        assert any("reload the page" in text for text in messages), page
