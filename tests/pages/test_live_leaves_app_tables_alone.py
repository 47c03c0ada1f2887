"""LIVE against another PostgreSQL that holds the app's tables, with the sandbox standing
in for Replicate: every page works for every role, and afterwards the app's tables are
exactly as they were, in shape and in content (the console only migrates schema ops)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, text
from streamlit.testing.v1 import AppTest

from tests.pages.conftest import open_page
from tests.user_world import UserWorld

APP_TABLES = (
    "users",
    "user_models",
    "selfie_uploads",
    "generated_images",
    "ai_images",
    "feed_posts",
    "credit_transactions",
)


def _fingerprint(database_url: str) -> dict[str, Any]:
    """Every public table, column, constraint and index, and an md5 of each app table's
    rows in a stable order."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            shape = {
                "tables": conn.execute(
                    text(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = 'public' ORDER BY 1"
                    )
                )
                .scalars()
                .all(),
                "columns": conn.execute(
                    text(
                        "SELECT table_name, column_name, data_type, is_nullable, column_default "
                        "FROM information_schema.columns WHERE table_schema = 'public' "
                        "ORDER BY 1, 2"
                    )
                ).all(),
                "constraints": conn.execute(
                    text(
                        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                        "FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
                        "ORDER BY 1, 2"
                    )
                ).all(),
                "indexes": conn.execute(
                    text(
                        "SELECT tablename, indexname, indexdef FROM pg_indexes "
                        "WHERE schemaname = 'public' ORDER BY 1, 2"
                    )
                ).all(),
            }
            content = {
                table: conn.execute(
                    text(
                        f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                        f"FROM {table} t"
                    )
                ).scalar_one()
                for table in APP_TABLES
            }
    finally:
        engine.dispose()
    return {"shape": shape, "content": content}


def test_live_pages_leave_the_app_tables_unchanged(
    app_as: Callable[..., AppTest],
    world: UserWorld,
    pages_database_url: str,
) -> None:
    before = _fingerprint(pages_database_url)
    assert before["content"]["users"] != before["content"]["selfie_uploads"]  # rows exist
    for role in ("support", "product", "admin"):
        at = app_as(role)
        assert not at.exception
        at = open_page(at, "users", q="example")
        assert not at.exception
        for user_id in world.special:
            at = open_page(at, "user", user=user_id)
            assert not at.exception, (role, user_id)
        at = open_page(at, "fleet")
        assert not at.exception
        if role == "admin":
            for page in ("settings", "audit"):
                at = open_page(at, page)
                assert not at.exception, page
    assert _fingerprint(pages_database_url) == before
