"""The console's settings: one typed object read from the environment.

``streamlit run`` copies root-level keys of ``.streamlit/secrets.toml`` into ``os.environ``,
so the same plain names work from a shell, a container or Streamlit secrets.

Mode is decided by the two settings that reach the real world:

    neither DATABASE_URL nor REPLICATE_API_TOKEN  -> DEMO (embedded PostgreSQL, sandbox)
    both                                          -> LIVE
    only one of them                              -> ConfigError naming the missing one

Every setting's help text lives in its ``Field(description=...)``; ``settings_table()``
turns them into rows the README and the UI render.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

from croniter import croniter
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

POSTGRES_DRIVER_SCHEME = "postgresql+psycopg"
_POSTGRES_SCHEMES = frozenset(
    {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2", "postgresql+psycopg3"}
)
# A shorter watch would list trainings more often than anything needs.
MIN_WATCH_INTERVAL_SECONDS = 10
# The watch's interval when WATCH_INTERVAL_SECONDS is unset: LIVE reads Replicate every 5
# minutes; DEMO's sandbox is ours, and a demo retrain should be caught while one watches.
LIVE_WATCH_INTERVAL_SECONDS = 300.0
DEMO_WATCH_INTERVAL_SECONDS = 20.0
# Where alerts link to when CONSOLE_BASE_URL is unset (Streamlit's own address).
DEFAULT_CONSOLE_URL = "http://localhost:8501"
# How long an alert is tried for when ALERT_DEADLINE_SECONDS is unset: a quarter of an
# hour rides out a webhook's short outage and still reaches someone while it matters.
DEFAULT_ALERT_DEADLINE_SECONDS = 900.0
_SECRETS_HINT = "in the environment or as a root-level key in .streamlit/secrets.toml"

# Values copied from templates and docs rather than from Replicate's token page.
_PLACEHOLDER_TOKEN = re.compile(
    r"""^(?:
        (?:r8_)?(?:x+|0+|\.+|\*+|-+|_*)
      | (?:r8_)?change[-_ ]?me
      | (?:r8_)?(?:your|my)[-_ ]?(?:replicate[-_ ]?)?(?:api[-_ ]?)?(?:token|key)(?:[-_ ]?here)?
      | (?:r8_)?(?:placeholder|dummy|example|fake|test|todo|token|secret|none|null|undefined)
      | <.*> | \{\{.*\}\} | \$\{.*\}
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
# Real tokens are r8_ plus letters and digits; these only appear in hand-written stand-ins.
_NOT_TOKEN_TEXT = re.compile(r"[\s<>{}$*]|\.\.")


class Mode(StrEnum):
    """Where the console reads and writes."""

    DEMO = "demo"
    LIVE = "live"


def normalize_database_url(url: str, *, setting: str = "DATABASE_URL") -> str:
    """Return ``url`` with the psycopg 3 driver scheme; raise ConfigError if it is not PostgreSQL.

    Accepts ``postgres://`` (Heroku/Neon style), ``postgresql://`` and explicit driver
    variants; everything after the scheme is kept as given (``sslmode`` and friends).
    """
    stripped = url.strip()
    scheme, sep, rest = stripped.partition("://")
    if not sep or scheme.lower() not in _POSTGRES_SCHEMES:
        shown = scheme if sep else "(no scheme)"
        raise ConfigError(
            f"{setting} scheme {shown!r} is not PostgreSQL. Use a URL like "
            "postgresql://user:password@host/dbname (postgres:// also works)."
        )
    if not rest:
        raise ConfigError(f"{setting} has nothing after the scheme; give host and database.")
    return f"{POSTGRES_DRIVER_SCHEME}://{rest}"


def is_placeholder_token(token: str) -> bool:
    """True for empty, template or obviously fake Replicate tokens (``r8_xxx``, ``changeme``)."""
    stripped = token.strip()
    if not stripped or _NOT_TOKEN_TEXT.search(stripped):
        return True
    return bool(_PLACEHOLDER_TOKEN.match(stripped))


class Settings(BaseSettings):
    """Everything the console reads from its environment. Build with ``get_settings()``."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        frozen=True,
    )

    database_url: SecretStr | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description=(
            "PostgreSQL URL of the app's database (Neon). Unset in DEMO; with "
            "REPLICATE_API_TOKEN it selects LIVE. postgres:// and postgresql:// are accepted."
        ),
    )
    ops_database_url: SecretStr | None = Field(
        default=None,
        validation_alias="OPS_DATABASE_URL",
        description=(
            "PostgreSQL URL for the console's own schema `ops` (audit log, staff). "
            "Defaults to DATABASE_URL."
        ),
    )
    replicate_api_token: SecretStr | None = Field(
        default=None,
        validation_alias="REPLICATE_API_TOKEN",
        description=(
            "Replicate API token (r8_...) from replicate.com/account/api-tokens. Unset in "
            "DEMO, where the local sandbox answers instead."
        ),
    )
    replicate_base_url: str | None = Field(
        default=None,
        validation_alias="REPLICATE_BASE_URL",
        description=(
            "Base URL of the Replicate API. Unset means api.replicate.com in LIVE and the "
            "local sandbox in DEMO."
        ),
    )
    replicate_owner: str = Field(
        default="sandrasocial",
        validation_alias=AliasChoices("REPLICATE_OWNER", "REPLICATE_USERNAME"),
        description=(
            "Replicate account that owns the users' LoRA models (the app's "
            "REPLICATE_USERNAME is read too)."
        ),
    )
    data_dir: Path = Field(
        default=Path(".data"),
        validation_alias="DATA_DIR",
        description=(
            "Folder for local state: the DEMO database (<DATA_DIR>/pg) and the sandbox. "
            "Relative to the working directory."
        ),
    )
    replicate_prediction_creates_per_minute: float = Field(
        default=600.0,
        gt=0,
        validation_alias="REPLICATE_PREDICTION_CREATES_PER_MINUTE",
        description="Client-side pace for prediction creates (Replicate allows 600/min).",
    )
    replicate_calls_per_minute: float = Field(
        default=3000.0,
        gt=0,
        validation_alias="REPLICATE_CALLS_PER_MINUTE",
        description="Client-side pace for every other Replicate call (Replicate allows 3000/min).",
    )

    scan_schedule: str = Field(
        default="0 3 * * *",
        validation_alias="SCAN_SCHEDULE",
        description=(
            "When the workers start a fleet scan on their own, as a cron line (UTC; a 6th "
            "field is seconds); empty turns it off. Always off in DEMO."
        ),
    )
    scan_heartbeat_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        validation_alias="SCAN_HEARTBEAT_TIMEOUT_SECONDS",
        description=(
            "A running scan whose workers have not shown a sign of life for this long is "
            "marked failed and no longer blocks a new one (its workers died or stopped)."
        ),
    )
    recovery_seconds: float = Field(
        default=60.0,
        ge=2,
        le=3600,
        validation_alias="RECOVERY_SECONDS",
        description=(
            "How long paid or long work may show no sign of life before it is taken for "
            "dead and resumed: a claim on a paid create (a live worker renews it every "
            "third of this; once it lapses, Replicate is searched for the create before "
            "anything else), a job whose worker stopped beating, a step nobody queued. The "
            "maintenance job looks every quarter of this."
        ),
    )
    history_fresh_seconds: float = Field(
        default=300.0,
        ge=10,
        le=86400,
        validation_alias="HISTORY_FRESH_SECONDS",
        description=(
            "How old the training history (the ledger's last listing of the account's "
            "trainings) may be before a page asks the workers for a fresh one; a retrain "
            "draft opens only on a history this fresh. The workers' maintenance job keeps "
            "it fresher than this on its own."
        ),
    )
    watch_interval_seconds: float | None = Field(
        default=None,
        ge=0,
        le=86400,
        validation_alias="WATCH_INTERVAL_SECONDS",
        description=(
            "How often the workers' watch reads what is new on Replicate (only the "
            "trainings since its last look, and the unfinished ones by id) and queues a "
            "retrain review for each user whose training ended since. Unset: every 300 s "
            "in LIVE and every 20 s in DEMO (so a demo retrain is caught while you "
            "watch); 0 turns it off."
        ),
    )
    watch_daily_budget_usd: float = Field(
        default=2.0,
        ge=0,
        validation_alias="WATCH_DAILY_BUDGET_USD",
        description=(
            "What the retrain reviews' automatic comparisons may be estimated at per UTC "
            "day, all users together; over it a review says so and compares nothing "
            "(the row and dataset checks still run). 0 turns the comparisons off."
        ),
    )
    alert_webhook_url: SecretStr | None = Field(
        default=None,
        validation_alias="ALERT_WEBHOOK_URL",
        description=(
            "A Slack-compatible incoming webhook (https://hooks.slack.com/services/...) "
            "that gets one message per retrain the watch judges worse or broken. Unset: "
            "no alerts (the verdicts are still on Fleet and the User page). A secret: "
            "it is never shown."
        ),
    )
    console_base_url: str | None = Field(
        default=None,
        validation_alias="CONSOLE_BASE_URL",
        description=(
            "The console's address as staff open it (https://console.example.com), for "
            "the links in alerts. Unset: http://localhost:8501."
        ),
    )
    alert_deadline_seconds: float = Field(
        default=DEFAULT_ALERT_DEADLINE_SECONDS,
        ge=1,
        le=86400,
        validation_alias="ALERT_DEADLINE_SECONDS",
        description=(
            "How long the workers keep trying to send one alert, from when its review "
            "queued it: an unreachable webhook, a 429 or a 5xx is tried again after 1, 5, "
            "15 and 45 s, then every 2 minutes; past this the alert is recorded as not "
            "sent, with the reason, and audited. A webhook that refuses the message (any "
            "other 4xx) fails it at once."
        ),
    )
    worker_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        validation_alias="WORKER_CONCURRENCY",
        description=(
            "Jobs one worker process runs at once (python -m core.worker --concurrency "
            "overrides it; DEMO's own worker uses it)."
        ),
    )

    compare_price_per_image_usd: float = Field(
        default=0.03,
        ge=0,
        validation_alias="COMPARE_PRICE_PER_IMAGE_USD",
        description=(
            "What one comparison image is estimated to cost before it runs (a FLUX LoRA "
            "prediction at the app's settings); the estimate is what the budget counts."
        ),
    )
    compare_price_per_second_usd: float = Field(
        default=0.001525,
        ge=0,
        validation_alias="COMPARE_PRICE_PER_SECOND_USD",
        description=(
            "Replicate's price per second of prediction time on the LoRA's hardware: the "
            "actual cost of a comparison is its predictions' metrics.predict_time times this."
        ),
    )
    compare_daily_budget_usd: float = Field(
        default=5.0,
        ge=0,
        validation_alias="COMPARE_DAILY_BUDGET_USD",
        description=(
            "What one person's comparisons may be estimated at per UTC day; an admin can "
            "grant more for a day (audited)."
        ),
    )
    compare_prediction_timeout_seconds: float = Field(
        default=900.0,
        gt=0,
        validation_alias="COMPARE_PREDICTION_TIMEOUT_SECONDS",
        description=(
            "A comparison image still not finished this long after its create is cancelled "
            "on Replicate and shown as failed (it can be retried alone)."
        ),
    )
    retrain_auto_promote: bool = Field(
        default=False,
        validation_alias="RETRAIN_AUTO_PROMOTE",
        description=(
            "Let the promotion gate promote a retrain's new version by itself when its "
            "comparison shows it is not worse than the current one beyond the noise floor "
            "(audited as the gate; undone like a repair). Off: an admin decides."
        ),
    )
    retrain_price_per_training_usd: float = Field(
        default=2.0,
        ge=0,
        validation_alias="RETRAIN_PRICE_PER_TRAINING_USD",
        description=(
            "What one training is estimated at on the Retrain page's confirmation (fast-flux-"
            "trainer bills by time; a 1,400-step LoRA costs about this)."
        ),
    )

    session_max_age_seconds: int = Field(
        default=28800,
        ge=1,
        le=2_592_000,
        validation_alias="SESSION_MAX_AGE_SECONDS",
        description=(
            "LIVE: how long one login lasts. Once the login (the ID token's iat) is older, "
            "or the ID token has expired (its exp; identity providers often give an hour), "
            "the session acts as nobody: the console shows the login page saying why, and "
            "Log in again starts a new login. Streamlit's own login cookie lasts 30 days "
            "and checks neither."
        ),
    )

    @field_validator("database_url", "ops_database_url", mode="before")
    @classmethod
    def _normalize_url(cls, value: Any, info: ValidationInfo) -> Any:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if isinstance(raw, str):
            setting = (info.field_name or "DATABASE_URL").upper()
            return SecretStr(normalize_database_url(raw, setting=setting))
        return value

    @field_validator("replicate_api_token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, value: Any) -> Any:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        return SecretStr(raw.strip()) if isinstance(raw, str) else value

    @field_validator("replicate_base_url", mode="before")
    @classmethod
    def _check_base_url(cls, value: Any) -> Any:
        return _http_url(
            value,
            lambda: (
                f"REPLICATE_BASE_URL {value!r} is not an http(s) URL; give e.g. "
                "https://api.replicate.com or unset it."
            ),
        )

    @field_validator("replicate_owner", mode="before")
    @classmethod
    def _check_owner(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(
            r"[A-Za-z0-9][A-Za-z0-9_.-]*", value.strip()
        ):
            raise ConfigError(
                f"REPLICATE_OWNER {value!r} is not a Replicate account name "
                "(letters, digits, '-', '_', '.')."
            )
        return value.strip() if isinstance(value, str) else value

    @field_validator("scan_schedule", mode="before")
    @classmethod
    def _check_schedule(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return ""
        if isinstance(value, str):
            if not croniter.is_valid(value.strip()):
                raise ConfigError(
                    f"SCAN_SCHEDULE {value!r} is not a cron line; give e.g. '0 3 * * *' "
                    "(03:00 UTC every day) or leave it empty for no scheduled scan."
                )
            return value.strip()
        return value

    @field_validator("alert_webhook_url", mode="before")
    @classmethod
    def _check_webhook(cls, value: Any) -> Any:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        url = _http_url(
            raw,
            # The value is a secret: the message names the setting, not the value.
            lambda: (
                "ALERT_WEBHOOK_URL is not an http(s) URL; give the incoming webhook's "
                "address (https://hooks.slack.com/services/...) or unset it."
            ),
            keep_slash=True,
        )
        return SecretStr(url) if isinstance(url, str) else url

    @field_validator("console_base_url", mode="before")
    @classmethod
    def _check_console_url(cls, value: Any) -> Any:
        return _http_url(
            value,
            lambda: (
                f"CONSOLE_BASE_URL {value!r} is not an http(s) URL; give the address "
                "staff open the console at, e.g. https://console.example.com."
            ),
        )

    @field_validator("watch_interval_seconds")
    @classmethod
    def _check_watch_interval(cls, value: float | None) -> float | None:
        if value is not None and 0 < value < MIN_WATCH_INTERVAL_SECONDS:
            raise ConfigError(
                f"WATCH_INTERVAL_SECONDS {value:g} is too short: give at least "
                f"{MIN_WATCH_INTERVAL_SECONDS} seconds, or 0 to turn the watch off."
            )
        return value

    @property
    def watch_seconds(self) -> float | None:
        """The watch's interval in seconds, or None when it is off (0); unset, the
        mode's default."""
        if self.watch_interval_seconds is None:
            return (
                LIVE_WATCH_INTERVAL_SECONDS
                if self.mode is Mode.LIVE
                else DEMO_WATCH_INTERVAL_SECONDS
            )
        return self.watch_interval_seconds or None

    @property
    def console_url(self) -> str:
        """Where staff open the console: CONSOLE_BASE_URL, else Streamlit's default."""
        return self.console_base_url or DEFAULT_CONSOLE_URL

    @property
    def scan_cron(self) -> str | None:
        """The nightly scan's cron line, or None (off, and always off in DEMO)."""
        return self.scan_schedule or None if self.mode is Mode.LIVE else None

    @property
    def mode(self) -> Mode:
        """DEMO or LIVE; construction already refused every other combination."""
        return Mode.LIVE if self.database_url is not None else Mode.DEMO

    @property
    def effective_ops_database_url(self) -> SecretStr | None:
        """The URL for schema ``ops``: OPS_DATABASE_URL, else DATABASE_URL (None in DEMO)."""
        return self.ops_database_url or self.database_url

    @property
    def embedded_pg_dir(self) -> Path:
        """Where DEMO keeps its embedded PostgreSQL data directory."""
        return self.data_dir / "pg"

    def model_post_init(self, context: Any, /) -> None:
        _check_mode(self)


def _http_url(value: Any, refusal: Callable[[], str], *, keep_slash: bool = False) -> Any:
    """An http(s) URL setting stripped (and without its trailing slash unless
    ``keep_slash``), None when blank; ``ConfigError(refusal())`` for anything else."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        return value
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(refusal())
    return value.strip() if keep_slash else value.strip().rstrip("/")


def _check_mode(settings: Settings) -> None:
    has_db = settings.database_url is not None
    has_token = settings.replicate_api_token is not None
    if has_db and not has_token:
        raise ConfigError(
            "DATABASE_URL is set but REPLICATE_API_TOKEN is missing, so the console is neither "
            f"DEMO nor LIVE. For LIVE set REPLICATE_API_TOKEN (an r8_ token) {_SECRETS_HINT}; "
            "for DEMO unset DATABASE_URL."
        )
    if has_token and not has_db:
        raise ConfigError(
            "REPLICATE_API_TOKEN is set but DATABASE_URL is missing, so the console is neither "
            f"DEMO nor LIVE. For LIVE set DATABASE_URL (the app's Neon PostgreSQL URL) "
            f"{_SECRETS_HINT}; for DEMO unset REPLICATE_API_TOKEN."
        )
    if not has_db and settings.ops_database_url is not None:
        raise ConfigError(
            "OPS_DATABASE_URL is set without DATABASE_URL. DEMO keeps schema ops in its "
            "embedded database: unset OPS_DATABASE_URL, or set DATABASE_URL and "
            "REPLICATE_API_TOKEN for LIVE."
        )
    token = settings.replicate_api_token
    if has_db and token is not None and is_placeholder_token(token.get_secret_value()):
        raise ConfigError(
            "REPLICATE_API_TOKEN looks like a placeholder, not a real token. Paste the token "
            f"from replicate.com/account/api-tokens {_SECRETS_HINT}."
        )


def get_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment; keyword overrides (field names) win.

    Not cached here: the dashboard caches it, tests build their own.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']).upper() or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"Invalid settings: {problems}. Fix them and restart.") from None


@dataclass(frozen=True)
class SettingHelp:
    """One row of the settings table: environment name, default shown to humans, help."""

    name: str
    default: str
    help: str
    secret: bool


def written(value: object) -> str:
    """A setting's value as a person writes it: 600, not 600.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def settings_table() -> tuple[SettingHelp, ...]:
    """Every setting with its default and one-line help, in declaration order."""
    rows: list[SettingHelp] = []
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            env_name = str(alias.choices[0])
        elif isinstance(alias, str):
            env_name = alias
        else:
            env_name = field_name.upper()
        default = field.default
        if field_name == "ops_database_url":
            shown = "same as DATABASE_URL"
        elif default is None:
            shown = "(unset)"
        else:
            shown = written(default)
        secret = field.annotation is SecretStr or SecretStr in get_args(field.annotation)
        rows.append(SettingHelp(env_name, shown, field.description or "", secret))
    return tuple(rows)
