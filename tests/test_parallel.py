"""The suite's own plumbing, run as a new pytest process: the lanes and the groups that
``tests/conftest.py`` derives from each test's fixtures really take effect.

Why: both fail silently. A pytest upgrade once left pytest-xdist unable to read the groups
(pytest-dev/pytest-xdist#1386): nothing failed, the browser journeys started two consoles
and the demo world was seeded in both processes. A lane that stopped marking would put
chromium into the fast lane, or take tests out of CI's run without a word.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 240
PASSED = re.compile(r"^\[(gw\d+)\] \[ *\d+%\] PASSED (\S+)\s*$", re.MULTILINE)


def _pytest(*args: str, basetemp: Path, env: dict[str, str] | None = None) -> str:
    answer = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--basetemp={basetemp}", *args],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert answer.returncode == 0, answer.stdout[-3000:] + answer.stderr[-3000:]
    return answer.stdout


def test_a_modules_tests_run_in_one_process_under_xdist(tmp_path: Path) -> None:
    module = "tests/test_versions.py"
    output = _pytest("-n", "2", "--dist", "loadgroup", "-v", module, basetemp=tmp_path)
    passed = PASSED.findall(output)
    assert len(passed) > 2, output[-2000:]
    assert {nodeid.rsplit("@", 1)[-1] for _, nodeid in passed} == {module}
    assert len({worker for worker, _ in passed}) == 1, passed


def pytest_collection_finish(session: pytest.Session) -> None:
    """As a plugin (``-p tests.test_parallel``) of the pytest run below: each collected
    test's lanes, written where ``LANES_REPORT`` says."""
    report = os.environ.get("LANES_REPORT")
    if report:
        lanes = {
            item.nodeid: sorted({mark.name for mark in item.iter_markers()} & LANES)
            for item in session.items
        }
        Path(report).write_text(json.dumps(lanes), encoding="utf-8")


LANES = frozenset({"browser", "workers", "dlib", "apptest", "slow"})
# (tests whose node id starts so, exactly the lanes each is in): every lane is slow too.
EXPECTED: list[tuple[str, set[str]]] = [
    ("tests/test_versions.py::test_an_upper_case_latest_is_the_latest", set()),
    ("tests/browser/test_smoke.py::", {"browser", "slow"}),
    ("tests/pages/test_database_down.py::", {"apptest", "slow"}),  # AppTest through new_app
    ("tests/jobs/test_scan_jobs.py::test_a_background_scan_is_shared", {"workers", "slow"}),
    ("tests/scan/test_demo_scan.py::test_every_persona_gets", {"dlib", "slow"}),
    # A world of trained users: slow, in no other lane.
    ("tests/jobs/test_cli.py::test_a_worker_refuses_an_unknown_queue", {"slow"}),
]


def test_each_test_is_in_the_lanes_its_fixtures_say(tmp_path: Path) -> None:
    report = tmp_path / "lanes.json"
    _pytest(
        "--collect-only",
        "-q",
        "-p",
        "tests.test_parallel",
        basetemp=tmp_path / "run",
        env={"LANES_REPORT": str(report)},
    )
    lanes = json.loads(report.read_text(encoding="utf-8"))
    for prefix, wanted in EXPECTED:
        found = [set(marks) for nodeid, marks in lanes.items() if nodeid.startswith(prefix)]
        assert found, f"no test collected at {prefix}"
        assert all(marks == wanted for marks in found), (prefix, found)
    fast = [nodeid for nodeid, marks in lanes.items() if "slow" not in marks]
    assert not any(
        nodeid.startswith(("tests/browser/", "tests/retrain/test_crashes")) for nodeid in fast
    )
