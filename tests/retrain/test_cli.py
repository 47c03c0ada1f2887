"""``python -m core.retrain`` as a person runs it (LIVE settings aimed at a world of the
test's own on the instant sandbox): ``check`` reports every photo's verdict, the dataset
gate and the parameters; a support actor's ``submit`` is refused before anything is
created; an admin's starts exactly one training and follows it to its new version without
touching the app's row; ``status`` lists the retrain; ``promote`` writes the new bare
hash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, insert, select

from core.gateway.values import is_version_hash
from core.retrain.tables import retrains
from core.schema import staff
from tests.jobs.conftest import World
from tests.photos import face_photo
from tests.retrain.drafts import app_row as _app_row
from tests.workers import ROOT, Workers, wait_for

pytestmark = pytest.mark.timeout(300)
ADMIN_EMAIL = "cli.admin@staff.test"
SUPPORT_EMAIL = "cli.support@staff.test"
PHOTOS = 12


def _cli(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.retrain", *args],
        cwd=ROOT,
        env=world.env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@contextmanager
def _staff(world: World, **roles: str) -> Iterator[None]:
    """``email=role`` pairs on the staff list for the test's duration."""
    with world.engine.begin() as conn:
        conn.execute(
            insert(staff), [{"email": email, "role": role} for email, role in roles.items()]
        )
    try:
        yield
    finally:
        with world.engine.begin() as conn:
            conn.execute(delete(staff).where(staff.c.email.in_(list(roles))))


def _photo_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "new-photos"
    folder.mkdir()
    for index in range(PHOTOS):
        (folder / f"selfie-{index:02d}.jpg").write_bytes(face_photo(index, long_side=1280))
    return folder


def _creates(world: World) -> int:
    counts = httpx.get(f"{world.sandbox_url}/_sandbox/stats").json()["counts"]
    return int(counts.get("trainings.create", 0))


def _retrain(world: World, retrain_id: int) -> Any:
    with world.engine.connect() as conn:
        return conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one()


def _check(world: World, folder: Path) -> dict[str, Any]:
    done = _cli(
        world,
        "check",
        "--user",
        world.users.stale_user,
        "--actor",
        ADMIN_EMAIL,
        "--json",
        str(folder),
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_check_prints_each_photo_s_verdict_the_gate_and_the_parameters(
    world: World, tmp_path: Path
) -> None:
    folder = _photo_folder(tmp_path)
    user_id = world.users.stale_user
    with _staff(world, **{ADMIN_EMAIL: "admin"}):
        shown = _cli(world, "check", "--user", user_id, "--actor", ADMIN_EMAIL, str(folder))
        # Files one by one this time, as JSON.
        files = sorted(str(path) for path in folder.iterdir())
        as_json = _cli(world, "check", "--user", user_id, "--actor", ADMIN_EMAIL, "--json", *files)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.startswith("draft retrain #")
    for index in range(PHOTOS):
        assert f"selfie-{index:02d}.jpg (upload)" in text
    assert "v1/" in text and "(previous" in text  # the earlier trainings' photos, checked
    assert "passes the gate" in text or "BLOCKED" in text
    assert "IGNORED by this trainer" in text and "trigger_word" in text
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    assert isinstance(result["retrain_id"], int) and result["retrain_id"] != int(
        text.split("#", 1)[1].split(" ", 1)[0]
    )
    uploads = [photo for photo in result["photos"] if photo["source"] == "upload"]
    previous = [photo for photo in result["photos"] if photo["source"] == "previous"]
    assert [photo["name"] for photo in uploads] == [f"selfie-{i:02d}.jpg" for i in range(PHOTOS)]
    assert all(photo["verdict"] in ("ok", "warn") and photo["kept"] for photo in uploads)
    # The world's earlier photos are 400 px on their long side: too small, each says so.
    assert len(previous) == 10
    assert all(photo["verdict"] in ("warn", "reject") and photo["reasons"] for photo in previous)
    assert result["kept"] == sum(1 for photo in result["photos"] if photo["kept"])
    assert result["parameters"]["image_count"] == result["kept"]
    assert {"steps", "lora_rank"} <= set(result["parameters"]["ignored"])
    assert set(result["gate"]) == {"passed", "blocks", "warnings", "figures"}
    assert _retrain(world, result["retrain_id"]).status == "draft"


def test_support_is_refused_then_submit_trains_once_and_promote_writes_the_new_version(
    world: World, workers: Workers, tmp_path: Path
) -> None:
    user_id = world.users.stale_user
    row_before = _app_row(world, user_id)
    folder = _photo_folder(tmp_path)
    reason = ["--reason", "images got worse after the last retrain"]
    with _staff(world, **{ADMIN_EMAIL: "admin", SUPPORT_EMAIL: "support"}):
        checked = _check(world, folder)  # an admin's draft
        retrain_id = checked["retrain_id"]
        override = [] if checked["gate"]["passed"] else ["--override-reason", "test photos"]
        creates_before = _creates(world)
        refused = _cli(
            world,
            "submit",
            "--user",
            user_id,
            "--actor",
            SUPPORT_EMAIL,
            "--retrain",
            str(retrain_id),
            *reason,
            "--override-reason",
            "the user asked",
        )
        creates_after_refusal = _creates(world)
        draft_after_refusal = _retrain(world, retrain_id)
        submitted = _cli(
            world, "submit", "--user", user_id, "--actor", ADMIN_EMAIL, *reason, *override, "--json"
        )
        creates_after = _creates(world)
        row_after_submit = _app_row(world, user_id)
        status = _cli(world, "status", "--user", user_id, "--json")
        decide = ["--user", user_id, "--actor", ADMIN_EMAIL, "--reason", "looks like her"]
        too_early = _cli(world, "promote", *decide)  # the gate's comparison has not run
        workers.start(concurrency=2)  # the submit handed the gate to the workers
        wait_for(
            lambda: _retrain(world, retrain_id).gate_read_at is not None,
            timeout=180,
            what="the workers to run and read the promotion gate's comparison",
        )
        promoted = _cli(world, "promote", *decide)
    # Support may not retrain: refused in core, one line on stderr, nothing created.
    assert refused.returncode == 1
    assert "may not" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert refused.stdout == ""
    assert creates_after_refusal == creates_before
    assert draft_after_refusal.status == "draft" and draft_after_refusal.confirm_token is None

    # The admin's submit, in the foreground: one training, followed to its new version.
    assert submitted.returncode == 0, submitted.stderr
    result = json.loads(submitted.stdout)
    assert result["retrain_id"] == retrain_id and result["status"] == "succeeded"
    assert is_version_hash(result["new_version"])
    assert result["new_version"] != row_before["replicate_version_id"]
    assert "step " in submitted.stderr  # progress, as it changed
    assert creates_after - creates_before == 1  # exactly one paid training
    assert row_after_submit == row_before  # the user keeps their version until promoted

    assert status.returncode == 0, status.stderr
    listed = json.loads(status.stdout)
    assert listed["current_version"] == row_before["replicate_version_id"]
    assert [item["retrain_id"] for item in listed["retrains"]] == [retrain_id]
    assert listed["retrains"][0]["status"] == "succeeded"
    assert listed["retrains"][0]["new_version"] == result["new_version"]

    assert too_early.returncode == 1 and "once it has ended" in too_early.stderr
    assert promoted.returncode == 0, promoted.stderr
    assert f"{row_before['replicate_version_id']} -> {result['new_version']}" in promoted.stdout
    row_after = _app_row(world, user_id)
    assert row_after["replicate_version_id"] == result["new_version"]  # the bare hash
    assert row_after["trigger_word"] == row_before["trigger_word"]
    assert _retrain(world, retrain_id).decision == "promoted"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["check", "--user", "u", "--actor", "a@b.c", "/no/such/photo.jpg"],
        ["submit", "--user", "u", "--actor", "a@b.c", "--reason", "  "],
        ["submit", "--user", "u", "--actor", "a@b.c", "--reason", "x", "--deadline-seconds", "0"],
        ["promote", "--user", "u", "--reason", "x"],
    ],
)
def test_wrong_arguments_exit_2_before_anything_starts(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "core.retrain", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and "usage: python -m core.retrain" in done.stderr
