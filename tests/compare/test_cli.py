"""``python -m core.compare`` as a person runs it (LIVE settings aimed at the demo world's
database and sandbox): the blurry retrain's first version beats its second beyond the
noise floor; someone off the staff list is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, insert

from core.schema import staff
from tests.compare.conftest import USER_OF
from tests.demo_world import DemoWorld
from tests.workers import ROOT, worker_env

pytestmark = pytest.mark.timeout(300)
STAFF_EMAIL = "cli.product@staff.test"


def _cli(world: DemoWorld, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.compare", *args],
        cwd=ROOT,
        env=worker_env(database_url=world.url, sandbox_url=world.sandbox_url, data_dir=tmp_path),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_v1_beats_v2_of_the_blurry_retrain_beyond_noise_as_json(
    synced_world: DemoWorld, tmp_path: Path
) -> None:
    with synced_world.engine.begin() as conn:
        conn.execute(insert(staff).values(email=STAFF_EMAIL, role="product"))
    try:
        done = _cli(
            synced_world,
            tmp_path,
            "--user",
            USER_OF["blurry_retrain"],
            "--actor",
            STAFF_EMAIL,
            "--columns",
            "v1,v2",
            "--seeds",
            "2",
            "--json",
        )
        refused = _cli(
            synced_world, tmp_path, "--user", USER_OF["blurry_retrain"], "--actor", "x@y.z"
        )
    finally:
        with synced_world.engine.begin() as conn:
            conn.execute(delete(staff).where(staff.c.email == STAFF_EMAIL))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "finished"
    assert [column["name"] for column in result["columns"]] == ["v1", "v2"]
    second = result["stats"]["columns"][1]
    assert second["identity_vs_a"] > result["stats"]["noise_floor"]
    assert result["verdict"][0].startswith("A (v1) is closer to the user's photos than B (v2)")
    assert len(result["images"]) == 6 and all(i["status"] == "succeeded" for i in result["images"])
    assert refused.returncode == 1 and "not on the console's staff list" in refused.stderr
    assert refused.stdout == ""
