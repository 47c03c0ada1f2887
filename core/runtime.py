"""Everything a running console needs, built once from the settings.

DEMO: the embedded PostgreSQL under ``DATA_DIR/pg`` with the app's tables created, the
Replicate sandbox process for ``DATA_DIR/sandbox``, the demo world seeded on first start,
DEMO's worker process (``DATA_DIR/worker``) and, until a fleet scan has been asked for
once, a first scan queued for it. LIVE: the app's database as it is (never created or
altered), api.replicate.com (or ``REPLICATE_BASE_URL``); workers are deployed, not
started here. Both: schema ``ops`` migrated to the newest revision (with the job queue).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy.engine import Engine

from core.config import Mode, Settings
from core.db import create_app_tables, embedded_postgres_url, make_engine, upgrade_ops
from core.demo.comparisons import queue_demo_comparisons
from core.errors import ConfigError, Conflict
from core.gateway.breaker import CircuitBreaker
from core.gateway.client import DEFAULT_TIMEOUT
from core.gateway.gateway import ReplicateGateway, build_client
from core.gateway.limits import RateLimits
from core.gateway.retry import RetryPolicy
from core.jobs.service import ensure_worker
from core.roles import Actor, Role
from core.sandbox.service import ensure_sandbox
from core.scan.request import ScanOptions, request_scan
from core.scan.store import last_fleet_scan

log = logging.getLogger(__name__)

REPLICATE_API = "https://api.replicate.com"
# Any non-placeholder token: the sandbox only checks that one is sent.
DEMO_TOKEN = "r8_demo_sandbox"
# The first DEMO scan's audit identity: nobody clicked for it.
FIRST_START_ACTOR = Actor("first-start@sselfie-console", Role.ADMIN)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    mode: Mode
    engine: Engine  # the app's database: users, user_models, ...
    ops_engine: Engine  # schema ops: audit log, staff, the console's own tables
    gateway: ReplicateGateway
    replicate_base_url: str


@dataclass(frozen=True)
class ReplicateProfile:
    """How long a process waits for Replicate, and whether it stops asking while it is down."""

    policy: RetryPolicy
    timeout: httpx.Timeout
    breaker: bool


# Pages: a call gives up within about 2.5 s (a hanging Replicate included), and after two
# such failures in a row the breaker answers "unavailable" at once for a while, so a page
# with Replicate down renders in seconds with the database's facts.
INTERACTIVE = ReplicateProfile(
    RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=0.5, total_seconds=1.5),
    httpx.Timeout(2.5, connect=2.0),
    breaker=True,
)
# Workers and the command line: long work waits out a short outage.
BATCH = ReplicateProfile(RetryPolicy(total_seconds=30), DEFAULT_TIMEOUT, breaker=False)


def start_runtime(
    settings: Settings,
    *,
    seed_demo: bool = True,
    progress: Callable[[str], None] | None = None,
    replicate: ReplicateProfile = INTERACTIVE,
    start_worker: bool = True,
) -> Runtime:
    """Connect (and in DEMO, start) everything; raise ``ConfigError`` with the next step.

    ``start_worker``: DEMO's worker process is started (a worker itself passes False).
    """
    say = progress or (lambda message: log.info("%s", message))
    if settings.mode is Mode.DEMO:
        return _start_demo(
            settings, seed_demo=seed_demo, say=say, profile=replicate, start_worker=start_worker
        )
    return _start_live(settings, profile=replicate)


def _start_demo(
    settings: Settings,
    *,
    seed_demo: bool,
    say: Callable[[str], None],
    profile: ReplicateProfile,
    start_worker: bool,
) -> Runtime:
    say("Starting the embedded PostgreSQL")
    url = embedded_postgres_url(settings.data_dir)
    engine = make_engine(url)
    create_app_tables(engine, mode=Mode.DEMO)
    upgrade_ops(url)
    say("Starting the Replicate sandbox")
    base_url = settings.replicate_base_url or ensure_sandbox(settings.data_dir / "sandbox")
    token = (
        settings.replicate_api_token.get_secret_value()
        if settings.replicate_api_token
        else DEMO_TOKEN
    )
    runtime = Runtime(
        settings, Mode.DEMO, engine, engine, _gateway(settings, token, base_url, profile), base_url
    )
    # Seeding and the first start's own calls are batch work: the pages' short timeouts
    # (INTERACTIVE) would give up on a training create a busy machine answers in 3 s.
    setup = _gateway(settings, token, base_url, BATCH) if seed_demo else None
    try:
        if setup is not None:
            from core.demo import is_seeded, seed_demo_world

            if not is_seeded(engine=engine):
                say("Seeding the demo world (first start only)")
                seed_demo_world(
                    engine=engine,
                    gateway=setup,
                    sandbox_url=base_url,
                    owner=settings.replicate_owner,
                    progress=say,
                )
        if start_worker:
            say("Starting the background worker")
            ensure_worker(settings)
            if setup is not None:
                _queue_first_scan(engine, say)
                queue_demo_comparisons(engine, setup, FIRST_START_ACTOR, say)
    finally:
        if setup is not None:
            setup.close()
    return runtime


def _queue_first_scan(engine: Engine, say: Callable[[str], None]) -> None:
    """Until a fleet scan has been asked for once, queue one, so support's first look at
    the Users page has findings without anyone clicking *Scan now*."""
    with engine.begin() as conn:
        if last_fleet_scan(conn) is not None:
            return
        say("Queueing the first scan of the demo world")
        try:
            request_scan(
                conn, FIRST_START_ACTOR, ScanOptions.of(), background=True, via="first start"
            )
        except Conflict:  # another process starting the demo queued it a moment ago
            return


def _start_live(settings: Settings, *, profile: ReplicateProfile) -> Runtime:
    if settings.database_url is None or settings.replicate_api_token is None:
        raise ConfigError("LIVE needs both DATABASE_URL and REPLICATE_API_TOKEN.")
    engine = make_engine(settings.database_url)
    ops_url = settings.effective_ops_database_url or settings.database_url
    ops_engine = engine if ops_url == settings.database_url else make_engine(ops_url)
    upgrade_ops(ops_url)
    base_url = settings.replicate_base_url or REPLICATE_API
    gateway = _gateway(settings, settings.replicate_api_token.get_secret_value(), base_url, profile)
    return Runtime(settings, Mode.LIVE, engine, ops_engine, gateway, base_url)


def _gateway(
    settings: Settings, token: str, base_url: str, profile: ReplicateProfile
) -> ReplicateGateway:
    """One gateway per process: its rate limits are shared by every page and thread."""
    limits = RateLimits.per_minute(
        settings.replicate_prediction_creates_per_minute, settings.replicate_calls_per_minute
    )
    return ReplicateGateway(
        build_client(token, base_url, timeout=profile.timeout),
        limits=limits,
        policy=profile.policy,
        breaker=CircuitBreaker() if profile.breaker else None,
    )
