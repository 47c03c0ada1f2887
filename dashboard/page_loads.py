"""``python -m dashboard.page_loads --user ID``: the measuring half of the ``page_loads``
bench figure (``core.bench.page_loads`` builds the world and starts this process with
LIVE settings aimed at it). Prints one JSON object; asserts no threshold.

Each page is opened in a new AppTest session of the real entry, logged in as an admin,
straight at the page's address (``?user=ID`` for User, Compare and Retrain), as a visitor
opening a link does:

- ``first_load_s``: that session's first run, with fresh caches: ``st.cache_data`` and
  the User page's cached facts (``dashboard.diagnosis.forget_facts``) are cleared first.
  The console's runtime (engines, gateway, schema ops checked) is kept in
  ``st.cache_resource``: clearing it would measure connecting and checking the
  migrations, which a deployed console does once per process, not per page;
- ``rerun_s``: the same session run again at once (what a click costs, caches warm);
- ``replicate_calls_*``: requests the sandbox answered under ``/v1/`` during each (its
  ``/_sandbox/stats`` before and after), ``replicate_routes_first`` by route, and
  ``fleet_listings``: ``GET /v1/trainings`` (the account's whole training list) in the
  first load and the rerun together;
- ``file_requests_first``: other sandbox addresses asked in the first load (ZIPs, the
  outputs whose URL the User page checks with a HEAD): not Replicate's API, but calls;
- ``sql_statements_*``: statements sent by any SQLAlchemy engine of this process
  (``before_cursor_execute`` on ``Engine``; AppTest runs the script in this process).

The baseline is the Settings page measured the same way in the same run: it costs what
every page costs (the entry's login and role, the runtime, the staff list, the admin's
job-queue sidebar, the navigation) and almost nothing of its own, so ``first_load_s``
over it says how much the page's own work weighs, whatever the machine's speed at the
moment (a new AppTest session's first run also carries the harness's own set-up, which
a rerun does not: another reason to compare first loads with a first load);
``ratio_first_to_rerun`` says what the caches save. Times are the median of
``--repeats`` sessions per page; counts are the first measured session's. Every page is
opened once before measuring, so imports (pandas, plotly) and the runtime's start are
not counted against the first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import streamlit as st
from sqlalchemy import Engine, event
from streamlit.testing.v1 import AppTest

from dashboard import navigation
from dashboard.diagnosis import forget_facts

APP = str(Path(__file__).resolve().parent / "app.py")
RUN_TIMEOUT_SECONDS = 120.0
ADMIN_EMAIL = "bench-admin@staff.test"
SECRETS: dict[str, Any] = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "page-loads-bench-cookie-secret",
        "client_id": "sselfie-console",
        "client_secret": "page-loads-bench-client-secret",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
    },
    "roles": {"admin": [ADMIN_EMAIL]},
}
LISTING = "GET /v1/trainings"
FILES = "files"
# Model paths are kept literally in the sandbox's stats; grouped by shape here.
_MODEL_ROUTE = re.compile(r"^(\w+) /v1/models/[^/]+/[^/]+(/versions(?:/\{id\})?)?$")


@dataclass(frozen=True)
class Page:
    name: str
    path: str  # as registered in dashboard.navigation
    title: str  # how its title starts: the run checks it landed on this page
    opens_user: bool = False
    headed_by_user: bool = False  # its title is the user's email (their id under it)


PAGES = (
    Page("Users", navigation.USERS, "Users"),
    Page("User", navigation.USER, "", opens_user=True, headed_by_user=True),
    Page("Fleet", navigation.FLEET, "Fleet drift"),
    Page("Compare", navigation.COMPARE, "Compare", opens_user=True),
    Page("Review", navigation.REVIEW, "Blind review"),
    Page("Retrain", navigation.RETRAIN, "Retrain", opens_user=True),
    Page("Audit", navigation.AUDIT, "Audit log"),
)
BASELINE = Page("Settings", navigation.SETTINGS, "Settings")


class _Statements:
    """SQL statements sent by every engine of this process (thread-safe count)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        with self._lock:
            self.count += 1


def _route(key: str) -> str:
    matched = _MODEL_ROUTE.match(key)
    if matched is None:
        return key
    return f"{matched.group(1)} /v1/models/{{owner}}/{{name}}{matched.group(2) or ''}"


class _Sandbox:
    """Requests the sandbox answered, from its own stats: Replicate's API by route, and
    every other address it serves (the training ZIPs and outputs) as ``FILES``."""

    def __init__(self, base_url: str) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=30)

    def counts(self) -> Counter[str]:
        answer = self._http.get("/_sandbox/stats")
        answer.raise_for_status()
        found: Counter[str] = Counter()
        for key, count in answer.json()["counts"].items():
            if " /v1/" in key:
                found[_route(key)] += int(count)
            elif " /_sandbox/" not in key:
                found[FILES] += int(count)
        return found


@dataclass(frozen=True)
class _Run:
    seconds: float
    statements: int
    requests: Counter[str]

    @property
    def replicate(self) -> Counter[str]:
        return Counter({key: n for key, n in self.requests.items() if key != FILES})


def _open(page: Page, user_id: str) -> AppTest:
    """A new session of the entry, logged in as the admin, addressed to ``page``."""
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_SECONDS)
    at.secrets = {name: dict(section) for name, section in SECRETS.items()}
    at.user = {"is_logged_in": True, "email": ADMIN_EMAIL}
    if page.path != navigation.USERS:  # the default page, served at "/"
        # Before a session's first run AppTest finds the page by its file name, which is
        # each of these pages' url_path: the first run is the page itself.
        at.switch_page(page.path)
    if page.opens_user:
        at.query_params[navigation.OPENED_PARAM] = user_id
    return at


def _run(at: AppTest, statements: _Statements, sandbox: _Sandbox) -> _Run:
    calls_before, sql_before = sandbox.counts(), statements.count
    started = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - started
    if at.exception:
        raise RuntimeError(f"the page raised: {at.exception[0].value}")
    return _Run(seconds, statements.count - sql_before, sandbox.counts() - calls_before)


def _fresh_caches() -> None:
    """What a new session finds after the caches' time to live: nothing cached but the
    runtime (see the module docstring)."""
    st.cache_data.clear()
    forget_facts()


def _load(
    page: Page, user_id: str, statements: _Statements, sandbox: _Sandbox
) -> tuple[_Run, _Run]:
    """One session of ``page``: its first run with fresh caches, then a rerun."""
    _fresh_caches()
    at = _open(page, user_id)
    first = _run(at, statements, sandbox)
    shown = str(at.title[0].value) if at.title else ""
    landed = (
        any(str(caption.value).startswith(f"User {user_id}") for caption in at.caption)
        if page.headed_by_user
        else shown.startswith(page.title)
    )
    if not shown or not landed:
        raise RuntimeError(f"opening {page.path} showed {shown!r}, not the {page.name} page")
    return first, _run(at, statements, sandbox)


def _median(runs: Sequence[_Run]) -> float:
    return sorted(run.seconds for run in runs)[len(runs) // 2]


def _figures(firsts: list[_Run], reruns: list[_Run], baseline: float) -> dict[str, Any]:
    first, rerun = _median(firsts), _median(reruns)
    return {
        "first_load_s": round(first, 3),
        "rerun_s": round(rerun, 3),
        "ratio_first_to_baseline": round(first / max(baseline, 1e-9), 2),
        "ratio_first_to_rerun": round(first / max(rerun, 1e-9), 2),
        "replicate_calls_first": sum(firsts[0].replicate.values()),
        "replicate_calls_rerun": sum(reruns[0].replicate.values()),
        "replicate_routes_first": dict(sorted(firsts[0].replicate.items())),
        "fleet_listings": firsts[0].replicate[LISTING] + reruns[0].replicate[LISTING],
        "file_requests_first": firsts[0].requests[FILES],
        "sql_statements_first": firsts[0].statements,
        "sql_statements_rerun": reruns[0].statements,
    }


def measure_pages(user_id: str, *, repeats: int, replicate_base_url: str) -> dict[str, Any]:
    """Every page's figures and the baseline's (see the module docstring). The rounds go
    through every page in turn, so a busy moment of the machine falls on all of them."""
    statements = _Statements()
    sandbox = _Sandbox(replicate_base_url)
    pages = (BASELINE, *PAGES)
    for page in pages:  # imports and the runtime, before anything is timed
        _load(page, user_id, statements, sandbox)
    firsts: dict[str, list[_Run]] = {page.name: [] for page in pages}
    reruns: dict[str, list[_Run]] = {page.name: [] for page in pages}
    for _ in range(repeats):
        for page in pages:
            first, rerun = _load(page, user_id, statements, sandbox)
            firsts[page.name].append(first)
            reruns[page.name].append(rerun)
    baseline = _median(firsts[BASELINE.name])
    result: dict[str, Any] = {
        "baseline": {
            "page": BASELINE.name,
            **_figures(firsts[BASELINE.name], reruns[BASELINE.name], baseline),
        }
    }
    for page in PAGES:
        result[page.name] = _figures(firsts[page.name], reruns[page.name], baseline)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.page_loads", description=__doc__)
    parser.add_argument(
        "--user", required=True, help="the user the User, Compare and Retrain pages open"
    )
    parser.add_argument("--repeats", type=int, default=3, help="sessions per page (median time)")
    args = parser.parse_args(argv)
    base_url = os.environ["REPLICATE_BASE_URL"]
    result = measure_pages(args.user, repeats=args.repeats, replicate_base_url=base_url)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
