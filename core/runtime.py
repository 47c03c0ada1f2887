"""Everything a running console needs, built once from the settings.

DEMO: the embedded PostgreSQL under ``DATA_DIR/pg`` with the app's tables created, the
Replicate sandbox process for ``DATA_DIR/sandbox``, and the demo world seeded on first
start. LIVE: the app's database as it is (never created or altered), api.replicate.com
(or ``REPLICATE_BASE_URL``). Both: schema ``ops`` migrated to the newest revision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from core.config import Mode, Settings
from core.db import create_app_tables, embedded_postgres_url, make_engine, upgrade_ops
from core.errors import ConfigError
from core.gateway.gateway import ReplicateGateway, build_client
from core.gateway.limits import RateLimits
from core.gateway.retry import RetryPolicy
from core.sandbox.service import ensure_sandbox

log = logging.getLogger(__name__)

REPLICATE_API = "https://api.replicate.com"
# Any non-placeholder token: the sandbox only checks that one is sent.
DEMO_TOKEN = "r8_demo_sandbox"


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    mode: Mode
    engine: Engine        # the app's database: users, user_models, ...
    ops_engine: Engine    # schema ops: audit log, staff, the console's own tables
    gateway: ReplicateGateway
    replicate_base_url: str


# A page waits for Replicate at most this long before it shows "Replicate is unavailable";
# batch work (the fleet scan) passes a longer policy.
INTERACTIVE_RETRIES = RetryPolicy(total_seconds=10.0)


def start_runtime(settings: Settings, *, seed_demo: bool = True,
                  progress: Callable[[str], None] | None = None,
                  retry_policy: RetryPolicy = INTERACTIVE_RETRIES) -> Runtime:
    """Connect (and in DEMO, start) everything; raise ``ConfigError`` with the next step."""
    say = progress or (lambda message: log.info("%s", message))
    if settings.mode is Mode.DEMO:
        return _start_demo(settings, seed_demo=seed_demo, say=say, policy=retry_policy)
    return _start_live(settings, policy=retry_policy)


def _start_demo(settings: Settings, *, seed_demo: bool, say: Callable[[str], None],
                policy: RetryPolicy) -> Runtime:
    say("Starting the embedded PostgreSQL")
    url = embedded_postgres_url(settings.data_dir)
    engine = make_engine(url)
    create_app_tables(engine, mode=Mode.DEMO)
    upgrade_ops(url)
    say("Starting the Replicate sandbox")
    base_url = settings.replicate_base_url or ensure_sandbox(settings.data_dir / "sandbox")
    token = (settings.replicate_api_token.get_secret_value()
             if settings.replicate_api_token else DEMO_TOKEN)
    runtime = Runtime(settings, Mode.DEMO, engine, engine,
                      _gateway(settings, token, base_url, policy), base_url)
    if seed_demo:
        from core.demo import is_seeded, seed_demo_world

        if not is_seeded(engine=engine):
            say("Seeding the demo world (first start only)")
            seed_demo_world(engine=engine, gateway=runtime.gateway, sandbox_url=base_url,
                            owner=settings.replicate_owner, progress=say)
    return runtime


def _start_live(settings: Settings, *, policy: RetryPolicy) -> Runtime:
    if settings.database_url is None or settings.replicate_api_token is None:
        raise ConfigError("LIVE needs both DATABASE_URL and REPLICATE_API_TOKEN.")
    engine = make_engine(settings.database_url)
    ops_url = settings.effective_ops_database_url or settings.database_url
    ops_engine = engine if ops_url == settings.database_url else make_engine(ops_url)
    upgrade_ops(ops_url)
    base_url = settings.replicate_base_url or REPLICATE_API
    gateway = _gateway(settings, settings.replicate_api_token.get_secret_value(), base_url,
                       policy)
    return Runtime(settings, Mode.LIVE, engine, ops_engine, gateway, base_url)


def _gateway(settings: Settings, token: str, base_url: str,
             policy: RetryPolicy) -> ReplicateGateway:
    """One gateway per process: its rate limits are shared by every page and thread."""
    limits = RateLimits.per_minute(settings.replicate_prediction_creates_per_minute,
                                   settings.replicate_calls_per_minute)
    return ReplicateGateway(build_client(token, base_url), limits=limits, policy=policy)
