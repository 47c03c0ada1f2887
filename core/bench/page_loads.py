"""Benchmark figure: each page's load through the real entry (registered in
``core.bench`` as ``page_loads``; nothing asserts a threshold).

The world is the one ``python -m core.demo --users N`` builds (``seed_demo_world``: the
personas' histories on the sandbox and their rows; ``add_synthetic_users``: N users'
rows, whose models do not exist on the sandbox), on a temporary embedded PostgreSQL and
a standalone sandbox. Then what DEMO's worker would have done by the time someone opens
a page: one foreground fleet scan without the photo checks (it syncs the training
ledger, and gives the Users and Fleet pages findings to show, as DEMO's first scan
does), and the opened user's training ZIPs read (``core.compare.photos.read_missing``:
their dataset facts and thumbnails), so the User page shows them instead of queueing
them again on every run for workers that do not run here. The pages are measured at
that size, then again once bulk rows (``users`` and ``user_models`` only, inserted with
``generate_series``; nothing on Replicate) bring the database to ``large_users`` users.

The pages run in Streamlit's AppTest, in LIVE mode aimed at that database and sandbox as
a deployment is, logged in as an admin (every page visible). AppTest runs the script in
the process that calls it, and nothing under ``core/`` imports Streamlit
(``tests/test_house.py``), so the measuring is ``python -m dashboard.page_loads``, a
process of its own started with the LIVE settings (as the other figures start workers);
this module builds the world and reads that process's JSON. What each page's numbers
are, and the baseline, is said there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from core.bench.common import standalone_sandbox
from core.bench.jobs import BENCH_TOKEN, bench_gateway, temporary_database
from core.bench.scan import BENCH_ACTOR
from core.compare.photos import read_missing
from core.demo import PERSONAS, add_synthetic_users, seed_demo_world
from core.detached import PROJECT_DIR
from core.gateway.gateway import ReplicateGateway
from core.imaging.faces import FaceReader
from core.scan.datasets import succeeded_trainings
from core.scan.run import run_scan

DEMO_USERS = 1_500
LARGE_USERS = 100_000
# A persona trained twice, both trainings succeeded: the User, Compare and Retrain pages
# have two versions, their trainings and photos to show.
OPENED_PERSONA = "healthy_retrained"
SCAN_CONCURRENCY = 8
MEASURE_TIMEOUT_SECONDS = 900.0
# Settings the measuring process must not inherit from this one.
LIVE_NAMES = (
    "DATABASE_URL",
    "OPS_DATABASE_URL",
    "REPLICATE_API_TOKEN",
    "REPLICATE_BASE_URL",
    "REPLICATE_OWNER",
    "DATA_DIR",
    "HISTORY_FRESH_SECONDS",
)
TARGET = (
    "no page makes a fleet-wide Replicate call (fleet_listings 0); a User page load makes "
    "at most one model read and one versions read; every page in at most 3 s"
)

# Bulk rows: about the synthetic users' shares (12% never trained; of the rest 78%
# completed, 11% pending, 8% failed, 3% training), sign-ups over the last 18 months.
BULK_USERS_SQL = """
INSERT INTO users (id, email, display_name, plan, role, created_at, updated_at, last_login_at)
SELECT 'bulk-' || lpad(n::text, 6, '0'),
       'bulk-' || lpad(n::text, 6, '0') || '@example.com',
       'Bulk User ' || n,
       (ARRAY['sselfie-studio', 'content-creator-studio', 'one-time-session'])[1 + n % 3],
       'user',
       signed_up, signed_up + (now() - signed_up) * 0.5, signed_up + (now() - signed_up) * 0.5
FROM (
    SELECT n, now() - make_interval(secs => (n * 7919 % 46656000)) AS signed_up
    FROM generate_series(1, :count) AS n
) AS made
"""
BULK_MODELS_SQL = """
INSERT INTO user_models (user_id, replicate_model_id, replicate_version_id, trigger_word,
                         training_status, training_id, model_name, model_type,
                         created_at, updated_at)
SELECT 'bulk-' || lpad(n::text, 6, '0'),
       :owner || '/bulk-' || lpad(n::text, 6, '0') || '-selfie-lora',
       CASE WHEN status = 'completed' THEN md5(n::text) || md5('v' || n) END,
       'bulk' || n,
       status,
       CASE WHEN status <> 'pending' THEN substr(md5('t' || n), 1, 26) END,
       'bulk-' || lpad(n::text, 6, '0') || '-selfie-lora',
       'flux-dev-lora',
       now() - make_interval(secs => (n * 7919 % 46656000)),
       now() - make_interval(secs => (n * 7919 % 46656000)) * 0.5
FROM (
    SELECT n,
           CASE WHEN n * 37 % 100 < 78 THEN 'completed' WHEN n * 37 % 100 < 89 THEN 'pending'
                WHEN n * 37 % 100 < 97 THEN 'failed' ELSE 'training' END AS status
    FROM generate_series(1, :count) AS n
    WHERE n % 25 >= 3
) AS made
"""


def _users(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM users")).scalar_one())


def add_bulk_users(engine: Engine, *, total: int, owner: str = "sandrasocial") -> int:
    """Users (and most a model row) until the database has ``total``; returns how many."""
    count = max(0, total - _users(engine))
    if count:
        with engine.begin() as conn:
            conn.execute(text(BULK_USERS_SQL), {"count": count})
            conn.execute(text(BULK_MODELS_SQL), {"count": count, "owner": owner})
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    return count


def opened_user() -> str:
    """The user the User, Compare and Retrain pages open (``?user=``)."""
    return next(persona.user_id for persona in PERSONAS if persona.key == OPENED_PERSONA)


def read_opened_photos(engine: Engine, gateway: ReplicateGateway) -> None:
    """Read the opened user's training ZIPs, as the job the User page queues would."""
    user_id = opened_user()
    with engine.connect() as conn:
        found = succeeded_trainings(conn, [user_id]).get(user_id, [])
    urls = [training.zip_url for training in found if training.zip_url]
    problems = read_missing(engine, gateway, FaceReader(), urls)
    if problems or not urls:
        raise RuntimeError(f"the opened user's photos were not read: {problems or 'no ZIP'}")


def _measure_pages(
    database_url: str, sandbox_url: str, data_dir: Path, repeats: int
) -> dict[str, Any]:
    """``python -m dashboard.page_loads`` in LIVE mode against this world; its JSON."""
    env = {name: value for name, value in os.environ.items() if name not in LIVE_NAMES}
    env.update(
        DATABASE_URL=database_url,
        REPLICATE_API_TOKEN=BENCH_TOKEN,
        REPLICATE_BASE_URL=sandbox_url,
        DATA_DIR=str(data_dir),
        # The scan synced the training history just before, and no worker runs here to
        # sync it again: pages must not take it for stale halfway through the figure.
        HISTORY_FRESH_SECONDS="86400",
        PYTHONPATH=str(PROJECT_DIR),
    )
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "dashboard.page_loads",
            "--user",
            opened_user(),
            "--repeats",
            str(repeats),
        ],
        cwd=PROJECT_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=MEASURE_TIMEOUT_SECONDS,
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"measuring the pages failed:\n{finished.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return result


def page_loads(
    users: int = DEMO_USERS, large_users: int = LARGE_USERS, repeats: int = 3
) -> dict[str, Any]:
    """Each page's first load and rerun at ``users`` synthetic users plus the personas,
    then at ``large_users`` users (see the module docstring)."""
    if large_users <= users + len(PERSONAS):
        raise ValueError("large_users must be more than the demo world's users")
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as tmp,
        standalone_sandbox(Path(tmp) / "sandbox") as sandbox_url,
        temporary_database() as (engine, database_url),
    ):
        gateway = bench_gateway(sandbox_url)
        try:
            personas = seed_demo_world(engine=engine, gateway=gateway, sandbox_url=sandbox_url)
            seeding = time.perf_counter()
            add_synthetic_users(engine=engine, count=users)
            synthetic_seconds = time.perf_counter() - seeding
            scanning = time.perf_counter()
            run_scan(
                app_engine=engine,
                ops_engine=engine,
                gateway=gateway,
                actor=BENCH_ACTOR,
                with_datasets=False,
                concurrency=SCAN_CONCURRENCY,
                via="bench",
            )
            scan_seconds = time.perf_counter() - scanning
            reading = time.perf_counter()
            read_opened_photos(engine, gateway)
            photos_seconds = time.perf_counter() - reading
        finally:
            gateway.close()
        worlds: dict[str, Any] = {}
        demo_total = _users(engine)
        worlds[f"{demo_total}_users"] = _measure_pages(
            database_url, sandbox_url, Path(tmp), repeats
        )
        growing = time.perf_counter()
        add_bulk_users(engine, total=large_users)
        bulk_seconds = time.perf_counter() - growing
        worlds[f"{_users(engine)}_users"] = _measure_pages(
            database_url, sandbox_url, Path(tmp), repeats
        )
    return {
        "opened_user": f"{OPENED_PERSONA} ({opened_user()})",
        "seed_personas_seconds": round(personas.seconds, 1),
        "seed_synthetic_users_seconds": round(synthetic_seconds, 1),
        "scan_seconds": round(scan_seconds, 1),
        "photos_seconds": round(photos_seconds, 1),
        "bulk_rows_seconds": round(bulk_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "repeats": repeats,
        "worlds": worlds,
        "target": TARGET,
    }
