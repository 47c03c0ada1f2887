"""Settings: mode selection, URL normalisation, placeholder tokens, the settings table."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from core.config import (
    Mode,
    Settings,
    get_settings,
    is_placeholder_token,
    normalize_database_url,
    settings_table,
)
from core.errors import ConfigError

DB = "postgresql://app:s3cret@ep-cool-1.eu-central-1.aws.neon.tech/neondb?sslmode=require"
TOKEN = "r8_N4hQz0bT7kLw2mPq9sXv3cYd5fGj8hKa1eRu6"
ENV_NAMES = (
    "DATABASE_URL",
    "OPS_DATABASE_URL",
    "REPLICATE_API_TOKEN",
    "REPLICATE_BASE_URL",
    "REPLICATE_OWNER",
    "REPLICATE_USERNAME",
    "DATA_DIR",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own shell or secrets must not decide these tests."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_no_configuration_is_demo() -> None:
    settings = get_settings()
    assert settings.mode is Mode.DEMO
    assert settings.database_url is None
    assert settings.effective_ops_database_url is None
    assert settings.replicate_owner == "sandrasocial"
    assert settings.data_dir == Path(".data")
    assert settings.embedded_pg_dir == Path(".data/pg")


def test_database_and_token_from_environment_is_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", DB)
    monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)
    settings = get_settings()
    assert settings.mode is Mode.LIVE
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == (
        "postgresql+psycopg://app:s3cret@ep-cool-1.eu-central-1.aws.neon.tech/neondb"
        "?sslmode=require"
    )
    assert settings.effective_ops_database_url == settings.database_url


def test_ops_database_url_overrides_default() -> None:
    settings = get_settings(
        database_url=DB, replicate_api_token=TOKEN, ops_database_url="postgres://o@h/ops"
    )
    assert settings.effective_ops_database_url is not None
    assert settings.effective_ops_database_url.get_secret_value() == (
        "postgresql+psycopg://o@h/ops"
    )


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"DATABASE_URL": DB}, "REPLICATE_API_TOKEN"),
        ({"REPLICATE_API_TOKEN": TOKEN}, "DATABASE_URL"),
        ({"DATABASE_URL": DB, "REPLICATE_API_TOKEN": "   "}, "REPLICATE_API_TOKEN"),
    ],
)
def test_half_configuration_is_refused_naming_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, given: dict[str, str], missing: str
) -> None:
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        get_settings()
    message = str(caught.value)
    assert f"{missing} is missing" in message
    assert "secrets.toml" in message
    assert "DEMO" in message


def test_ops_url_alone_is_refused() -> None:
    with pytest.raises(ConfigError, match="OPS_DATABASE_URL is set without DATABASE_URL"):
        get_settings(ops_database_url=DB)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u:p@h/db?sslmode=require", "postgresql+psycopg://u:p@h/db?sslmode=require"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("  POSTGRES://u@h/db  ", "postgresql+psycopg://u@h/db"),
    ],
)
def test_database_urls_are_normalised_to_psycopg3(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite:///x.db", "just-a-host", "postgres://"])
def test_non_postgres_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        get_settings(database_url=url, replicate_api_token=TOKEN)


@pytest.mark.parametrize(
    "token",
    [
        "r8_xxx",
        "r8_XXXXXXXXXXXX",
        "changeme",
        "CHANGE_ME",
        "your-replicate-api-token",
        "r8_...",
        "<token>",
        "${REPLICATE_API_TOKEN}",
        "placeholder",
        "r8_ abc",
        "xxx",
    ],
)
def test_placeholder_tokens_are_refused_in_live(token: str) -> None:
    assert is_placeholder_token(token)
    with pytest.raises(ConfigError, match="placeholder"):
        get_settings(database_url=DB, replicate_api_token=token)


def test_a_real_looking_token_is_accepted() -> None:
    assert not is_placeholder_token(TOKEN)
    assert get_settings(database_url=DB, replicate_api_token=TOKEN).mode is Mode.LIVE


def test_secrets_never_appear_in_repr() -> None:
    settings = get_settings(database_url=DB, replicate_api_token=TOKEN)
    shown = f"{settings!r} {settings}"
    assert TOKEN not in shown
    assert "s3cret" not in shown


def test_overrides_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", DB)
    monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)
    settings = get_settings(database_url=None, replicate_api_token=None, data_dir="/tmp/x")
    assert settings.mode is Mode.DEMO
    assert settings.data_dir == Path("/tmp/x")


def test_app_owner_variable_is_understood(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATE_USERNAME", "someone-else")
    assert get_settings().replicate_owner == "someone-else"
    monkeypatch.setenv("REPLICATE_OWNER", "console-owner")
    assert get_settings().replicate_owner == "console-owner"


def test_bad_values_are_config_errors_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="REPLICATE_BASE_URL"):
        get_settings(replicate_base_url="api.replicate.com")
    with pytest.raises(ConfigError, match="REPLICATE_OWNER"):
        get_settings(replicate_owner="not an owner")
    assert get_settings(replicate_base_url="http://127.0.0.1:9/").replicate_base_url == (
        "http://127.0.0.1:9"
    )


def test_settings_table_documents_every_setting() -> None:
    rows = {row.name: row for row in settings_table()}
    assert set(rows) == {
        "DATABASE_URL",
        "OPS_DATABASE_URL",
        "REPLICATE_API_TOKEN",
        "REPLICATE_BASE_URL",
        "REPLICATE_OWNER",
        "DATA_DIR",
        "REPLICATE_PREDICTION_CREATES_PER_MINUTE",
        "REPLICATE_CALLS_PER_MINUTE",
        "SCAN_SCHEDULE",
        "SCAN_HEARTBEAT_TIMEOUT_SECONDS",
        "RECOVERY_SECONDS",
        "HISTORY_FRESH_SECONDS",
        "WATCH_INTERVAL_SECONDS",
        "WATCH_DAILY_BUDGET_USD",
        "ALERT_WEBHOOK_URL",
        "CONSOLE_BASE_URL",
        "ALERT_DEADLINE_SECONDS",
        "WORKER_CONCURRENCY",
        "COMPARE_PRICE_PER_IMAGE_USD",
        "COMPARE_PRICE_PER_SECOND_USD",
        "COMPARE_DAILY_BUDGET_USD",
        "COMPARE_PREDICTION_TIMEOUT_SECONDS",
        "RETRAIN_AUTO_PROMOTE",
        "RETRAIN_PRICE_PER_TRAINING_USD",
        "SESSION_MAX_AGE_SECONDS",
    }
    assert len(rows) == len(Settings.model_fields)
    assert all(row.help for row in rows.values())
    assert {name for name, row in rows.items() if row.secret} == {
        "DATABASE_URL",
        "OPS_DATABASE_URL",
        "REPLICATE_API_TOKEN",
        "ALERT_WEBHOOK_URL",  # a Slack webhook's address is its credential
    }
    assert rows["REPLICATE_OWNER"].default == "sandrasocial"
    assert rows["DATA_DIR"].default == ".data"


def test_secret_inputs_accepted_as_secretstr() -> None:
    settings = get_settings(database_url=SecretStr(DB), replicate_api_token=SecretStr(TOKEN))
    assert settings.mode is Mode.LIVE


def test_the_watch_looks_every_five_minutes_in_live_unless_told_otherwise() -> None:
    live = {"database_url": SecretStr(DB), "replicate_api_token": SecretStr(TOKEN)}
    assert get_settings(**live).watch_seconds == 300.0
    assert get_settings().watch_seconds == 20.0  # DEMO: caught while someone watches
    assert get_settings(**live, watch_interval_seconds=30).watch_seconds == 30.0
    assert get_settings(watch_interval_seconds=60).watch_interval_seconds == 60.0
    assert get_settings(watch_interval_seconds=0).watch_seconds is None  # off
    with pytest.raises(ConfigError, match="WATCH_INTERVAL_SECONDS"):
        get_settings(watch_interval_seconds=1)


def test_the_alert_webhook_is_a_secret_checked_without_showing_it() -> None:
    settings = get_settings(alert_webhook_url="https://hooks.example/services/T0/B0/abc")
    assert "abc" not in repr(settings)
    with pytest.raises(ConfigError, match="ALERT_WEBHOOK_URL") as refused:
        get_settings(alert_webhook_url="hooks.example/services/T0/B0/xyz")
    assert "xyz" not in str(refused.value)
    assert get_settings(alert_webhook_url="  ").alert_webhook_url is None
    assert get_settings().console_url == "http://localhost:8501"
    assert get_settings(console_base_url="https://c.example/").console_url == "https://c.example"
