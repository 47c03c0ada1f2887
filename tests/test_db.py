"""The mirrored app schema, the ops migrations, and the embedded PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, inspect, pool, text
from sqlalchemy.exc import IntegrityError

from core.compare import tables as compare_tables
from core.config import Mode
from core.db import (
    alembic_config,
    create_app_tables,
    embedded_postgres_url,
    make_engine,
    stop_embedded_postgres,
    upgrade_ops,
)
from core.errors import ConfigError
from core.ledger import reviews as watch_tables
from core.ledger import tables as ledger_tables
from core.retrain import tables as retrain_tables
from core.scan import tables as scan_tables
from core.schema import OPS_SCHEMA, app_metadata, ops_metadata, ops_objects_only

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SETTING_NAMES = ("DATABASE_URL", "OPS_DATABASE_URL", "REPLICATE_API_TOKEN", "REPLICATE_BASE_URL")

USERS_COLUMNS = {
    "id", "email", "display_name", "first_name", "last_name", "profile_image_url", "plan",
    "role", "monthly_generation_limit", "generations_used_this_month", "stripe_customer_id",
    "stripe_subscription_id", "gender", "ethnicity", "created_at", "updated_at",
    "last_login_at", "stack_auth_id", "supabase_user_id", "auth_id",
}  # fmt: skip

# (type as PostgreSQL reports it, nullable, default) for every user_models column.
USER_MODELS_COLUMNS: dict[str, tuple[str, bool, str | None]] = {
    "id": ("INTEGER", False, "nextval('user_models_id_seq'::regclass)"),
    "user_id": ("VARCHAR", False, None),
    "replicate_model_id": ("VARCHAR", True, None),
    "replicate_version_id": ("VARCHAR", True, None),
    "trigger_word": ("VARCHAR", False, None),
    "training_status": ("VARCHAR", True, "'pending'::character varying"),
    "training_id": ("VARCHAR", True, None),
    "lora_weights_url": ("VARCHAR", True, None),
    "lora_scale": ("NUMERIC", True, None),
    "training_progress": ("INTEGER", True, "0"),
    "failure_reason": ("TEXT", True, None),
    "model_name": ("VARCHAR", True, None),
    "model_type": ("VARCHAR", True, None),
    "trained_model_path": ("VARCHAR", True, None),
    "finetune_id": ("VARCHAR", True, None),
    "is_luxury": ("BOOLEAN", True, "false"),
    "is_test": ("BOOLEAN", True, "false"),
    "created_at": ("TIMESTAMP", True, "now()"),
    "updated_at": ("TIMESTAMP", True, "now()"),
    "started_at": ("TIMESTAMP", True, None),
    "completed_at": ("TIMESTAMP", True, None),
    "estimated_completion_time": ("TIMESTAMP", True, None),
}

OTHER_TABLE_COLUMNS = {
    "selfie_uploads": {
        "id", "user_id", "filename", "original_url", "processed_url", "processing_status",
        "validation_status", "error_details", "created_at",
    },
    "generated_images": {
        "id", "user_id", "model_id", "category", "subcategory", "prompt", "image_urls",
        "selected_url", "saved", "description", "created_at",
    },
    "ai_images": {
        "id", "user_id", "image_url", "prompt", "generated_prompt", "prediction_id",
        "generation_status", "source", "created_at",
    },
    "feed_posts": {"id", "user_id", "prediction_id"},
    "credit_transactions": {"id", "user_id", "amount", "transaction_type", "reference_id"},
}  # fmt: skip


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update(extra)
    return env


def _public_tables(connection: Connection) -> list[tuple[str, str, str]]:
    rows = connection.execute(
        text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        )
    )
    return [(row[0], row[1], row[2]) for row in rows]


def _start_time(url: str) -> Any:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT pg_postmaster_start_time()")).scalar_one()
    finally:
        engine.dispose()


# --- the mirrored app schema ------------------------------------------------------------


def test_users_table_has_the_apps_columns(conn: Connection) -> None:
    inspector = inspect(conn)
    columns = {column["name"]: column for column in inspector.get_columns("users")}
    assert set(columns) == USERS_COLUMNS
    assert inspector.get_pk_constraint("users")["constrained_columns"] == ["id"]
    assert str(columns["ethnicity"]["type"]) == "VARCHAR(100)"
    assert columns["plan"]["default"] == "'sselfie-studio'::character varying"
    assert columns["role"]["default"] == "'user'::character varying"
    uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("users")}
    assert uniques == {("email",), ("stack_auth_id",), ("auth_id",)}
    indexed = {tuple(i["column_names"]) for i in inspector.get_indexes("users")}
    assert ("supabase_user_id",) in indexed


def test_user_models_columns_types_nullability_defaults(conn: Connection) -> None:
    columns = {column["name"]: column for column in inspect(conn).get_columns("user_models")}
    actual = {
        name: (str(column["type"]), column["nullable"], column["default"])
        for name, column in columns.items()
    }
    assert actual == USER_MODELS_COLUMNS


def test_user_models_constraints_and_indexes(conn: Connection) -> None:
    inspector = inspect(conn)
    uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("user_models")}
    assert uniques == {("user_id",), ("trigger_word",)}
    (foreign_key,) = inspector.get_foreign_keys("user_models")
    assert foreign_key["constrained_columns"] == ["user_id"]
    assert foreign_key["referred_table"] == "users"
    assert foreign_key["referred_columns"] == ["id"]
    assert foreign_key["options"] == {"ondelete": "CASCADE", "onupdate": "CASCADE"}
    indexes = {tuple(i["column_names"]): i for i in inspector.get_indexes("user_models")}
    assert {("user_id",), ("training_status",), ("replicate_version_id",)} <= set(indexes)
    partial = indexes[("user_id", "is_test")]
    assert partial["dialect_options"]["postgresql_where"] == "(is_test = false)"


def test_all_app_timestamps_are_without_time_zone(conn: Connection) -> None:
    rows = conn.execute(
        text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type LIKE 'timestamp%'"
        )
    ).all()
    assert rows, "the app tables have timestamps"
    assert {row.data_type for row in rows} == {"timestamp without time zone"}


def test_other_app_tables_have_the_named_columns(conn: Connection) -> None:
    inspector = inspect(conn)
    assert set(inspector.get_table_names()) == set(app_metadata.tables)
    for table, expected in OTHER_TABLE_COLUMNS.items():
        names = {column["name"] for column in inspector.get_columns(table)}
        assert expected <= names, table
    (model_fk,) = inspector.get_foreign_keys("generated_images")
    assert (model_fk["referred_table"], model_fk["referred_columns"]) == ("user_models", ["id"])
    error_details = next(
        c for c in inspector.get_columns("selfie_uploads") if c["name"] == "error_details"
    )
    assert str(error_details["type"]) == "JSONB"


def test_user_models_constraints_behave_like_the_app(conn: Connection) -> None:
    conn.execute(text("INSERT INTO users (id, email) VALUES ('5040000c-1', 'a@x.test')"))
    conn.execute(
        text(
            "INSERT INTO user_models (user_id, trigger_word) VALUES ('5040000c-1', 'user5040000c')"
        )
    )
    row = conn.execute(text("SELECT * FROM user_models")).mappings().one()
    assert (row["training_status"], row["training_progress"]) == ("pending", 0)
    assert (row["is_test"], row["is_luxury"]) == (False, False)

    conn.execute(text("INSERT INTO users (id) VALUES ('45038279')"))
    for values in (
        "('5040000c-1', 'another')",  # second row for the same user
        "('45038279', 'user5040000c')",  # trigger word taken
        "('no-such-user', 'user00000000')",  # no such user
    ):
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(text(f"INSERT INTO user_models (user_id, trigger_word) VALUES {values}"))

    conn.execute(text("UPDATE users SET id = '5040000c-2' WHERE id = '5040000c-1'"))
    assert conn.execute(text("SELECT user_id FROM user_models")).scalar_one() == "5040000c-2"
    conn.execute(text("DELETE FROM users WHERE id = '5040000c-2'"))
    assert conn.execute(text("SELECT count(*) FROM user_models")).scalar_one() == 0


def test_create_app_tables_refuses_live(db_engine: Engine) -> None:
    with pytest.raises(ConfigError, match="Refusing to create the app's tables in LIVE"):
        create_app_tables(db_engine, mode=Mode.LIVE)


def test_create_app_tables_is_idempotent(db_engine: Engine, conn: Connection) -> None:
    before = _public_tables(conn)
    create_app_tables(db_engine, mode=Mode.DEMO)
    assert _public_tables(conn) == before


# --- ops migrations ---------------------------------------------------------------------


def test_migrations_on_an_empty_database_touch_only_schema_ops(fresh_database_url: str) -> None:
    upgrade_ops(fresh_database_url)
    upgrade_ops(fresh_database_url)  # a re-run is a no-op
    engine = make_engine(fresh_database_url)
    try:
        with engine.connect() as connection:
            assert _public_tables(connection) == []
            inspector = inspect(connection)
            assert set(inspector.get_table_names(schema=OPS_SCHEMA)) == {
                "alembic_version",
                "audit_log",
                "staff",
                "trainings",
                "dataset_facts",
                "ledger_state",
                "trainings_not_found",
                "scans",
                "scan_findings",
                "scan_users",
                "scan_batches",
                "scan_zips",
                "comparisons",
                "comparison_images",
                "training_photos",
                "retrains",
                "retrain_photos",
                "review_pairs",
                "review_votes",
                "compare_grants",
                "decisions",
                "retrain_reviews",
                "procrastinate_jobs",
                "procrastinate_events",
                "procrastinate_workers",
                "procrastinate_periodic_defers",
            }
            version = connection.execute(text("SELECT version_num FROM ops.alembic_version"))
            head = ScriptDirectory.from_config(
                alembic_config(fresh_database_url)
            ).get_current_head()
            assert head is not None and head >= "0013"
            assert version.scalar_one() == head
    finally:
        engine.dispose()


def test_migrations_leave_the_app_tables_unchanged(fresh_database_url: str) -> None:
    engine = make_engine(fresh_database_url)
    try:
        create_app_tables(engine, mode=Mode.DEMO)
        with engine.connect() as connection:
            before = _public_tables(connection)
        upgrade_ops(fresh_database_url)
        upgrade_ops(fresh_database_url)
        with engine.connect() as connection:
            assert _public_tables(connection) == before
    finally:
        engine.dispose()


def test_migrated_ops_schema_matches_the_metadata(conn: Connection) -> None:
    assert ledger_tables.trainings.metadata is ops_metadata  # the ledger's tables count too
    assert scan_tables.scans.metadata is ops_metadata  # and the scan's
    assert compare_tables.comparisons.metadata is ops_metadata  # and the comparisons'
    assert retrain_tables.retrains.metadata is ops_metadata  # and the retrains'
    assert watch_tables.retrain_reviews.metadata is ops_metadata  # and the watch's
    context = MigrationContext.configure(
        conn,
        opts={
            "include_schemas": True,
            "include_name": ops_objects_only,
            "version_table_schema": OPS_SCHEMA,
        },
    )
    assert compare_metadata(context, ops_metadata) == []


def test_migrations_downgrade_and_upgrade_again(fresh_database_url: str) -> None:
    upgrade_ops(fresh_database_url)
    command.downgrade(alembic_config(fresh_database_url), "base")
    engine = make_engine(fresh_database_url)
    try:
        with engine.connect() as connection:
            assert inspect(connection).get_table_names(schema=OPS_SCHEMA) == ["alembic_version"]
        upgrade_ops(fresh_database_url)
        with engine.connect() as connection:
            assert "audit_log" in inspect(connection).get_table_names(schema=OPS_SCHEMA)
    finally:
        engine.dispose()


def test_two_processes_migrating_at_once_both_succeed(fresh_database_url: str) -> None:
    script = "import sys; from core.db import upgrade_ops; upgrade_ops(sys.argv[1])"
    runs = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", script, fresh_database_url],
            cwd=PROJECT_ROOT,
            env=_clean_env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=60)
        assert run.returncode == 0, stderr


# --- embedded PostgreSQL ----------------------------------------------------------------


def test_a_second_call_reuses_the_running_server(embedded_data_dir: Path) -> None:
    url = embedded_postgres_url(embedded_data_dir)
    started = _start_time(url)
    assert embedded_postgres_url(embedded_data_dir) == url

    # Another process on the same folder finds the same server (it did not start one: the
    # server's start time is unchanged; how fast is core.bench's business, not a test's).
    script = (
        "import sys; from core.db import embedded_postgres_url; "
        "print(embedded_postgres_url(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, str(embedded_data_dir)],
        cwd=PROJECT_ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == url
    assert _start_time(url) == started


def test_two_processes_starting_a_new_folder_share_one_server(tmp_path: Path) -> None:
    script = (
        "import sys; from core.db import embedded_postgres_url; "
        "print(embedded_postgres_url(sys.argv[1]))"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", script, str(tmp_path)],
            cwd=PROJECT_ROOT,
            env=_clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        outputs = [run.communicate(timeout=120) for run in runs]
        for run, (_, stderr) in zip(runs, outputs, strict=True):
            assert run.returncode == 0, stderr
        urls = {stdout.strip() for stdout, _ in outputs}
        assert len(urls) == 1
        (url,) = urls
        postmaster_pid = (tmp_path / "pg" / "postmaster.pid").read_text().split()[0]
        engine = create_engine(url, poolclass=pool.NullPool)
        try:
            with engine.connect() as connection:
                assert connection.execute(text("SELECT 1")).scalar_one() == 1
        finally:
            engine.dispose()
        # The server outlived both processes; stopping and starting again keeps the data dir.
        assert stop_embedded_postgres(tmp_path) is True
        assert stop_embedded_postgres(tmp_path) is False
        assert embedded_postgres_url(tmp_path) == url
        restarted_pid = (tmp_path / "pg" / "postmaster.pid").read_text().split()[0]
        assert restarted_pid != postmaster_pid
    finally:
        stop_embedded_postgres(tmp_path)


def test_cli_url_and_upgrade_in_demo(embedded_data_dir: Path) -> None:
    env = _clean_env(DATA_DIR=str(embedded_data_dir))
    url = subprocess.run(
        [sys.executable, "-W", "error", "-m", "core.db", "url"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert url.stdout.strip() == embedded_postgres_url(embedded_data_dir)
    upgrade = subprocess.run(
        [sys.executable, "-W", "error", "-m", "core.db", "upgrade"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "schema ops is at head" in upgrade.stdout


def test_cli_refuses_half_configuration() -> None:
    env = _clean_env(DATABASE_URL="postgresql://u:p@h/db")
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "core.db", "upgrade"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "REPLICATE_API_TOKEN is missing" in done.stderr
    assert "u:p@" not in done.stderr + done.stdout
