"""The scan's benchmark figures (registered in ``core.bench``; nothing asserts a target).

``scan_throughput``: a background fleet scan of ``BENCH_SCAN_USERS`` users (10,000 by
default) whose models exist on a standalone sandbox answering every ``/v1/`` request
50 ms late, run the way the console runs it: queued, then planned and checked in batches
by a worker process (``python -m core.worker``) whose client-side rate limit is raised to
``SCAN_CALLS_PER_MINUTE``. Replicate requests per second achieved against that limit
(from the worker picking the scan up to its end), and the speed-up over checking users
one after another in the foreground (measured on a sample, extrapolated per user).

``users_finding_filter``: the Users page's finding filter at 100,000 users with a finished
scan holding findings on a share of them: ``user_ids_with`` plus one page of the app's
users restricted to those ids, against loading everything into pandas.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, insert, select

from core.bench.common import median_seconds
from core.bench.jobs import bench_gateway, temporary_database, wait_until_idle, worker_processes
from core.drift import Finding, Fix, scan_error
from core.drift.findings import make_finding
from core.gateway.gateway import ReplicateGateway
from core.roles import Actor, Role
from core.scan.record import finish_scan, record_users, start_scan
from core.scan.request import ScanOptions, request_scan
from core.scan.run import run_scan
from core.scan.store import scan_summary, user_ids_with
from core.scan.values import UserScan
from core.schema import user_models, users

SCAN_USERS = 10_000
SCAN_USERS_ENV = "BENCH_SCAN_USERS"
SCAN_LATENCY_MS = 50
# Replicate's 3000/min raised so that 10k users take well under a minute; what the bench
# checks is that the scan keeps up with whatever limit is configured.
SCAN_CALLS_PER_MINUTE = 15_000.0
SCAN_CONCURRENCY = 32
WORKER_CONCURRENCY = 2  # batches at once in the worker, each on SCAN_CONCURRENCY threads
BASELINE_SAMPLE = 200
BENCH_ACTOR = Actor("bench@sselfie-console", Role.ADMIN)
OWNER = "sandrasocial"
FILTER_USERS = 100_000
FILTER_CODE = "STALE_VERSION"
FILTER_PAGE_SIZE = 50


def create_models(base_url: str, model_ids: list[str]) -> None:
    """POST every model, 16 at a time, straight to the sandbox (no trainings)."""
    headers = {"Authorization": "Bearer r8_bench"}

    def create(chunk: list[str]) -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
            for model_id in chunk:
                owner, name = model_id.split("/")
                http.post(
                    "/v1/models",
                    json={
                        "owner": owner,
                        "name": name,
                        "visibility": "private",
                        "hardware": "gpu-t4",
                    },
                ).raise_for_status()

    chunks = [model_ids[start::16] for start in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(create, chunks))


def _insert_users(engine: Engine, model_ids: list[str]) -> list[str]:
    """One user per model: most rows completed on a version the model does not have (a
    finding to store), the rest still pending (healthy). The models have no versions (no
    trainings), so each user costs one request (a model read); a trained user's model
    costs two (its versions too), which halves users/s but not requests/s."""
    rng = random.Random(4)
    user_rows, model_rows = [], []
    for index, model_id in enumerate(model_ids):
        user_id = f"bench-{index:06d}"
        completed = rng.random() < 0.7
        user_rows.append({"id": user_id, "email": f"{user_id}@example.com"})
        model_rows.append(
            {
                "user_id": user_id,
                "replicate_model_id": model_id,
                "trigger_word": f"u{index}",
                "training_status": "completed" if completed else "pending",
                "replicate_version_id": f"{rng.getrandbits(256):064x}" if completed else None,
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(users), user_rows)
        conn.execute(insert(user_models), model_rows)
    return [row["id"] for row in user_rows]


def _requests(base_url: str) -> int:
    counts = httpx.get(f"{base_url}/_sandbox/stats").json()["counts"]
    return sum(int(count) for route, count in counts.items() if " /v1/" in route)


def _foreground_scan(
    engine: Engine, gateway: ReplicateGateway, base_url: str, **options: Any
) -> tuple[float, int, int]:
    """(seconds, Replicate requests, users) of one scan in this process."""
    before = _requests(base_url)
    started = time.perf_counter()
    result = run_scan(
        app_engine=engine,
        ops_engine=engine,
        gateway=gateway,
        with_datasets=False,
        actor=Actor("bench@sselfie-console", Role.ADMIN),
        **options,
    )
    return time.perf_counter() - started, _requests(base_url) - before, len(result.users)


def _background_scan(
    engine: Engine, url: str, base_url: str, data_dir: Path
) -> tuple[float, int, int]:
    """(seconds from pick-up to end, Replicate requests, users) of a queued fleet scan
    run by one worker process."""
    settings = {"REPLICATE_CALLS_PER_MINUTE": str(SCAN_CALLS_PER_MINUTE)}
    with worker_processes(
        1,
        database_url=url,
        sandbox_url=base_url,
        data_dir=data_dir,
        engine=engine,
        settings=settings,
        arguments=("--concurrency", str(WORKER_CONCURRENCY)),
    ):
        before = _requests(base_url)
        with engine.begin() as conn:
            scan = request_scan(
                conn,
                BENCH_ACTOR,
                ScanOptions.of(with_datasets=False, concurrency=SCAN_CONCURRENCY),
                background=True,
            )
        wait_until_idle(engine)
        requests = _requests(base_url) - before
    with engine.connect() as conn:
        ended = scan_summary(conn, scan.id)
    if (
        ended is None
        or ended.status != "finished"
        or ended.finished_at is None
        or ended.picked_up_at is None
    ):
        raise RuntimeError(f"the bench's scan did not finish: {ended}")
    seconds = (ended.finished_at - ended.picked_up_at).total_seconds()
    return seconds, requests, ended.users_scanned


def scan_throughput(users_count: int | None = None) -> dict[str, Any]:
    """Requests/s of a background scan vs the configured limit, and its speed-up over a
    one-by-one scan (see the module docstring)."""
    from core.bench.common import standalone_sandbox

    count = users_count or int(os.environ.get(SCAN_USERS_ENV) or SCAN_USERS)
    model_ids = [f"{OWNER}/bench-{index:06d}-selfie-lora" for index in range(count)]
    with (
        tempfile.TemporaryDirectory() as tmp,
        standalone_sandbox(Path(tmp)) as base_url,
        temporary_database(pool_size=SCAN_CONCURRENCY) as (engine, url),
    ):
        create_models(base_url, model_ids)
        user_ids = _insert_users(engine, model_ids)
        httpx.post(
            f"{base_url}/_sandbox/faults", json={"latency_ms": SCAN_LATENCY_MS, "path": "^/v1/"}
        ).raise_for_status()
        gateway = bench_gateway(base_url, calls_per_minute=SCAN_CALLS_PER_MINUTE)
        try:
            sample = random.Random(9).sample(user_ids, min(BASELINE_SAMPLE, count))
            one_seconds, _, one_users = _foreground_scan(
                engine, gateway, base_url, user_ids=sample, concurrency=1
            )
        finally:
            gateway.close()
        seconds, requests, scanned = _background_scan(engine, url, base_url, Path(tmp))
    limit_per_second = SCAN_CALLS_PER_MINUTE / 60
    per_second = requests / seconds
    one_by_one_seconds = one_seconds / one_users * scanned
    return {
        "path": "queued scan, one worker process (python -m core.worker)",
        "users": scanned,
        "injected_latency_ms": SCAN_LATENCY_MS,
        "configured_calls_per_minute": SCAN_CALLS_PER_MINUTE,
        "worker_concurrency": WORKER_CONCURRENCY,
        "threads_per_batch": SCAN_CONCURRENCY,
        "scan_seconds": round(seconds, 2),
        "replicate_requests": requests,
        "requests_per_user": round(requests / max(scanned, 1), 2),
        "requests_per_second": round(per_second, 1),
        "configured_requests_per_second": round(limit_per_second, 1),
        "ratio_to_rate_limit": round(per_second / limit_per_second, 3),
        "baseline_sample_users": one_users,
        "baseline_seconds_per_user": round(one_seconds / one_users, 4),
        "baseline_extrapolated_seconds": round(one_by_one_seconds, 1),
        "speedup_over_one_by_one": round(one_by_one_seconds / seconds, 1),
    }


def users_finding_filter(users_count: int = FILTER_USERS, repeats: int = 5) -> dict[str, Any]:
    """The Users page filtered by a finding code at ``users_count`` users (see above)."""
    import pandas as pd
    from sqlalchemy import any_, bindparam, func
    from sqlalchemy.dialects.postgresql import ARRAY
    from sqlalchemy.types import String

    from core.demo import add_synthetic_users
    from core.scan.tables import scan_findings

    with temporary_database(pool_size=SCAN_CONCURRENCY) as (engine, _):
        add_synthetic_users(engine=engine, count=users_count)
        with engine.connect() as conn:
            all_ids = list(conn.execute(select(users.c.id)).scalars())
        started = time.perf_counter()
        with engine.begin() as conn:
            scan_id, _ = start_scan(
                conn, users_total=len(all_ids), requested_by="bench", options={"scope": "all"}
            )
            for start in range(0, len(all_ids), 5000):
                record_users(
                    conn,
                    scan_id,
                    [_synthetic_result(user_id) for user_id in all_ids[start : start + 5000]],
                )
            finish_scan(conn, scan_id)
        store_seconds = time.perf_counter() - started
        everything = select(
            users.c.id,
            users.c.email,
            users.c.plan,
            users.c.updated_at,
            user_models.c.replicate_model_id,
            user_models.c.trigger_word,
            user_models.c.replicate_version_id,
            user_models.c.training_status,
        ).select_from(users.outerjoin(user_models, user_models.c.user_id == users.c.id))
        page = (
            everything.add_columns(func.count().over().label("total"))
            .where(users.c.id == any_(bindparam("ids", type_=ARRAY(String))))
            .order_by(users.c.updated_at.desc(), users.c.id)
            .limit(FILTER_PAGE_SIZE)
        )
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")

            def in_database() -> list[Any]:
                ids = user_ids_with(conn, codes=[FILTER_CODE])
                return list(conn.execute(page, {"ids": ids}))

            shown = in_database()
            database = median_seconds(in_database, repeats)
            wanted = user_ids_with(conn, codes=[FILTER_CODE])
            filter_only = median_seconds(lambda: user_ids_with(conn, codes=[FILTER_CODE]), repeats)
            page_only = median_seconds(lambda: conn.execute(page, {"ids": wanted}).all(), repeats)

            def in_pandas() -> Any:
                frame = pd.read_sql(everything, conn)
                found = pd.read_sql(
                    select(scan_findings.c.user_id, scan_findings.c.code).where(
                        scan_findings.c.scan_id == scan_id
                    ),
                    conn,
                )
                wanted = found.loc[found["code"] == FILTER_CODE, "user_id"]
                hit = frame[frame["id"].isin(wanted)]
                return hit.sort_values(["updated_at", "id"], ascending=[False, True]).iloc[
                    :FILTER_PAGE_SIZE
                ]

            pandas = median_seconds(in_pandas, max(1, repeats // 2))
    return {
        "users": users_count,
        "users_with_code": int(shown[0].total) if shown else 0,
        "code": FILTER_CODE,
        "scan_store_seconds": round(store_seconds, 2),
        "filter_and_page_seconds": round(database, 4),
        "of_which_user_ids_with_seconds": round(filter_only, 4),
        "of_which_page_query_seconds": round(page_only, 4),
        "baseline_pandas_seconds": round(pandas, 4),
        "speedup_over_pandas": round(pandas / max(database, 1e-9), 1),
    }


_CODES_BY_SHARE = (
    ("STALE_VERSION", 0.05),
    ("TRIGGER_WORD_MISMATCH", 0.03),
    ("DUPLICATE_MODELS", 0.04),
    ("PARAMS_CHANGED", 0.15),
)


def _synthetic_result(user_id: str) -> UserScan:
    """A deterministic spread of findings: about a quarter of users have some."""
    draw = random.Random(user_id)
    findings: list[Finding] = [
        make_finding(
            code, evidence={"user_id": user_id}, fix=Fix(None, "bench"), **_TITLE_FIELDS[code]
        )
        for code, share in _CODES_BY_SHARE
        if draw.random() < share
    ]
    if draw.random() < 0.005:
        findings.append(scan_error(user_id, "Replicate is unavailable (bench)"))
    return UserScan(user_id, tuple(findings))


_TITLE_FIELDS: dict[str, dict[str, Any]] = {
    "STALE_VERSION": {"versions_behind": 1},
    "TRIGGER_WORD_MISMATCH": {"stored_trigger_word": "a", "trained_trigger_word": "b"},
    "DUPLICATE_MODELS": {"destination_count": 2, "row_model": "o/m"},
    "PARAMS_CHANGED": {"changed": "steps"},
}
