"""``python -m core.bench [--only NAME]``: performance figures as one JSON object.

Each figure is measured in one run against a baseline measured in the same run, and
reported with their ratio: the machine is shared and noisy, so absolute times alone say
little. Nothing here asserts a threshold; the README says what each figure should reach.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from core.bench.common import median_seconds, standalone_sandbox

Figure = Callable[[], dict[str, Any]]


def _hammer(
    urls: list[str], *, clients: int, seconds: float, headers: dict[str, str]
) -> tuple[int, int]:
    """(successful responses, failures) from ``clients`` keep-alive clients in parallel."""
    done = [0] * clients
    failed = [0] * clients
    stop = time.monotonic() + seconds

    def run(index: int) -> None:
        with httpx.Client(headers=headers, timeout=10) as http:
            position = index
            while time.monotonic() < stop:
                response = http.get(urls[position % len(urls)])
                if response.status_code == 200:
                    done[index] += 1
                else:
                    failed[index] += 1
                position += clients

    threads = [threading.Thread(target=run, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), sum(failed)


def sandbox_model_reads(clients: int = 16, seconds: float = 4.0) -> dict[str, Any]:
    """Model reads per second the standalone sandbox serves to 16 concurrent clients,
    against its own cheapest endpoint (the health check) as the baseline."""
    headers = {"Authorization": "Bearer r8_bench"}
    with tempfile.TemporaryDirectory() as tmp, standalone_sandbox(Path(tmp)) as base_url:
        with httpx.Client(base_url=base_url, headers=headers) as http:
            for index in range(200):
                http.post(
                    "/v1/models",
                    json={
                        "owner": "sandrasocial",
                        "name": f"user-{index:04d}-selfie-lora",
                        "visibility": "private",
                        "hardware": "gpu-t4",
                    },
                ).raise_for_status()
        model_urls = [
            f"{base_url}/v1/models/sandrasocial/user-{index:04d}-selfie-lora"
            for index in range(200)
        ]
        _hammer(model_urls, clients=clients, seconds=0.5, headers=headers)  # warm up
        reads, read_failures = _hammer(
            model_urls, clients=clients, seconds=seconds, headers=headers
        )
        health, _ = _hammer(
            [f"{base_url}/_sandbox/health"], clients=clients, seconds=seconds, headers=headers
        )
    reads_per_second = reads / seconds
    health_per_second = health / seconds
    return {
        "clients": clients,
        "model_reads_per_second": round(reads_per_second, 1),
        "failed_reads": read_failures,
        "baseline_health_checks_per_second": round(health_per_second, 1),
        "ratio_reads_to_baseline": round(reads_per_second / max(health_per_second, 1e-9), 3),
    }


def users_page_query(users: int = 100_000, repeats: int = 5) -> dict[str, Any]:
    """The Users page's query (search + one page of 50) at ``users`` users in a real
    PostgreSQL, against loading every row into pandas and filtering there."""
    import pandas as pd
    from sqlalchemy import select

    from core.config import Mode
    from core.db import (
        create_app_tables,
        embedded_postgres_url,
        make_engine,
        stop_embedded_postgres,
    )
    from core.demo import add_synthetic_users
    from core.schema import user_models
    from core.schema import users as users_table
    from core.users import search_users

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(embedded_postgres_url(tmp))
        try:
            create_app_tables(engine, mode=Mode.DEMO)
            started = time.perf_counter()
            add_synthetic_users(engine=engine, count=users)
            seed_seconds = time.perf_counter() - started
            query = "user4"  # matches emails, ids and trigger words: a realistic partial search
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                found = search_users(conn, query=query, page=3, page_size=50)
                database = median_seconds(
                    lambda: search_users(conn, query=query, page=3, page_size=50), repeats
                )

                def in_pandas() -> pd.DataFrame:
                    frame = pd.read_sql(
                        select(
                            users_table.c.id,
                            users_table.c.email,
                            users_table.c.plan,
                            users_table.c.updated_at,
                            user_models.c.replicate_model_id,
                            user_models.c.trigger_word,
                            user_models.c.replicate_version_id,
                            user_models.c.training_status,
                        ).select_from(
                            users_table.outerjoin(
                                user_models, user_models.c.user_id == users_table.c.id
                            )
                        ),
                        conn,
                    )
                    hit = (
                        frame["email"].str.contains(query, case=False, na=False)
                        | (frame["id"] == query)
                        | (frame["trigger_word"] == query)
                        | frame["replicate_model_id"].str.contains(query, na=False)
                    )
                    return (
                        frame[hit]
                        .sort_values(["updated_at", "id"], ascending=[False, True])
                        .iloc[100:150]
                    )

                pandas = median_seconds(in_pandas, max(1, repeats // 2))
        finally:
            engine.dispose()
            stop_embedded_postgres(tmp)
    return {
        "users": users,
        "matching_users": found.total,
        "seed_seconds": round(seed_seconds, 2),
        "query_page_seconds": round(database, 4),
        "baseline_pandas_seconds": round(pandas, 4),
        "speedup_over_pandas": round(pandas / max(database, 1e-9), 1),
    }


def scan_throughput() -> dict[str, Any]:
    """The fleet scan's requests/s against the configured rate limit, and its speed-up
    over one user after another (``core.bench.scan``; ``BENCH_SCAN_USERS`` sets the size)."""
    from core.bench.scan import scan_throughput as figure

    return figure()


def dataset_facts_workers() -> dict[str, Any]:
    """Photos/s reading the demo ZIPs with one worker process and with two
    (``core.bench.jobs``)."""
    from core.bench.jobs import dataset_facts_workers as figure

    return figure()


def users_page_replicate_down() -> dict[str, Any]:
    """The Users page's Replicate part with Replicate up, answering plain 503s and hanging
    (``core.bench.users``)."""
    from core.bench.users import users_page_replicate_down as figure

    return figure()


def users_finding_filter() -> dict[str, Any]:
    """The Users page's finding filter at 100k users vs pandas (``core.bench.scan``)."""
    from core.bench.scan import users_finding_filter as figure

    return figure()


def compare() -> dict[str, Any]:
    """A comparison's wall time against its slowest prediction, scoring per image, and
    memory after 100 comparisons (``core.bench.compare``)."""
    from core.bench.compare import compare_figures

    return compare_figures()


def retrain() -> dict[str, Any]:
    """The retrain wizard's per-photo checks of 25 photos of 12 MP on every core vs a bare
    decode, and 20 concurrent submits of one retrain vs one submit (``core.bench.retrain``)."""
    from core.bench.retrain import retrain_figures

    return retrain_figures()


def photo_measurements() -> dict[str, Any]:
    """dlib runs per training photo of one user across a scan, a User page visit, a
    comparison's reference and a retrain draft (``core.bench.photos``; goal: 1)."""
    from core.bench.photos import photo_measurements as figure

    return figure()


def page_loads_browser() -> dict[str, Any]:
    """Each page's load in chromium against DEMO with 1,500 extra users, and two clicks
    (``core.bench.browser``; target: every one at most 3 s)."""
    from core.bench.browser import page_loads_browser as figure

    return figure()


def page_loads() -> dict[str, Any]:
    """Each page's first load and rerun through the real entry at 1,500 demo users and at
    100,000: time, Replicate calls (fleet listings apart) and SQL statements, vs the
    Settings page (``core.bench.page_loads``)."""
    from core.bench.page_loads import page_loads as figure

    return figure()


def watch_latency() -> dict[str, Any]:
    """Replicate calls of a watch pass at 1,500 users vs the demo world alone, with 0, 5
    and 50 new trainings; seconds from a training's end to its review's verdict with the
    workers watching every 10 s, vs the review's own comparison (``core.bench.watch``)."""
    from core.bench.watch import watch_figures

    return watch_figures()


FIGURES: dict[str, Figure] = {
    "sandbox_model_reads": sandbox_model_reads,
    "users_page_query": users_page_query,
    "scan_throughput": scan_throughput,
    "dataset_facts_workers": dataset_facts_workers,
    "users_finding_filter": users_finding_filter,
    "users_page_replicate_down": users_page_replicate_down,
    "compare": compare,
    "retrain": retrain,
    "photo_measurements": photo_measurements,
    "page_loads": page_loads,
    "page_loads_browser": page_loads_browser,
    "watch_latency": watch_latency,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.bench", description=__doc__)
    parser.add_argument(
        "--only", choices=sorted(FIGURES), action="append", help="run just this figure (repeatable)"
    )
    args = parser.parse_args(argv)
    results = {name: FIGURES[name]() for name in (args.only or FIGURES)}
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
