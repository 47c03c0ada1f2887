"""``python -m core.scan``: refuses bad settings with one line, before touching anything;
acts only as a staff member whose role allows a scan (admin), like the Fleet page.

The DEMO tests run the command in DEMO mode on a PostgreSQL of this module's own (DEMO's
database is always its DATA_DIR's ``postgres``, so the session's shared one cannot be
used) holding the personas' ``users`` rows, so DEMO takes its world as seeded (seeding
plays every history on the sandbox: 20-40 s; a scan only needs someone to scan), and
the session's sandbox as REPLICATE_BASE_URL (no sandbox process is spawned).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select

from core.config import Mode
from core.db import (
    create_app_tables,
    embedded_postgres_url,
    make_engine,
    stop_embedded_postgres,
    upgrade_ops,
)
from core.demo import PERSONAS
from core.sandbox.server import RunningSandbox
from core.scan.__main__ import main
from core.scan.tables import scans
from core.schema import audit_log, users
from core.staff import DEMO_ADMIN
from tests.workers import MODE_SETTINGS

ONE_USER = PERSONAS[0].user_id


def test_half_a_live_configuration_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.example.com/app")
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    assert main(["--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert "REPLICATE_API_TOKEN" in captured.err


def test_concurrency_must_be_at_least_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--concurrency", "0"])
    assert exited.value.code == 2
    assert "--concurrency must be 1 or more" in capsys.readouterr().err


def test_live_without_an_actor_is_refused_before_touching_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing answers at this address: reaching for it would fail differently.
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@127.0.0.1:9/app")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_Zx81kQm2Lp0Ws7Ty4Nc6Vb9")
    assert main(["--background"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("error: ConfigError: --actor EMAIL is required in LIVE")


# -- who may scan, in DEMO ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_dir() -> Iterator[tuple[Path, Engine]]:
    """A DATA_DIR whose embedded PostgreSQL has DEMO's tables and the personas' users.

    Outside pytest's basetemp: another pytest session starting meanwhile resets
    /tmp/pytest-of-<user> to 0700, which the server's own user then cannot enter."""
    data_dir = Path(tempfile.mkdtemp(prefix="sselfie-scan-cli-"))
    url = embedded_postgres_url(data_dir)
    engine = make_engine(url)
    try:
        create_app_tables(engine, mode=Mode.DEMO)
        upgrade_ops(url)
        with engine.begin() as conn:
            conn.execute(insert(users), [{"id": p.user_id, "email": p.email} for p in PERSONAS])
        yield data_dir, engine
    finally:
        engine.dispose()
        stop_embedded_postgres(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def demo_engine(
    demo_dir: tuple[Path, Engine],
    sandbox_server: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> Engine:
    """DEMO settings aimed at ``demo_dir``; its engine, to look at what was written."""
    for name in MODE_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    data_dir, engine = demo_dir
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    monkeypatch.setenv("REPLICATE_BASE_URL", sandbox_server.base_url)
    return engine


def _written(engine: Engine) -> tuple[int, int]:
    """(scan rows, audit records)."""
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(scans)).scalar_one(),
            conn.execute(select(func.count()).select_from(audit_log)).scalar_one(),
        )


def _refused(capsys: pytest.CaptureFixture[str]) -> str:
    """The one stderr line of a refusal (stdout empty), without the progress notes."""
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if not line.startswith("  ")]
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.timeout(120)
def test_someone_off_the_staff_list_is_refused_naming_who_may(
    demo_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _written(demo_engine)
    assert main(["--actor", "nobody@example.com", "--user", ONE_USER, "--json"]) == 1
    line = _refused(capsys)
    assert line.startswith("error: PermissionDenied: 'nobody@example.com' is not on the ")
    assert f"{DEMO_ADMIN.email} (admin)" in line  # who may
    assert main(["--actor", "nobody@example.com", "--background"]) == 1
    _refused(capsys)
    assert _written(demo_engine) == before  # no scan row, no audit record


@pytest.mark.timeout(120)
def test_a_support_member_is_refused_by_role(
    demo_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _written(demo_engine)
    assert main(["--actor", "Support@Demo.sselfie.test", "--user", ONE_USER]) == 1
    line = _refused(capsys)
    assert line.startswith("error: PermissionDenied: support@demo.sselfie.test (support) ")
    assert "needs the admin role" in line
    assert _written(demo_engine) == before


@pytest.mark.timeout(120)
def test_demo_acts_as_its_built_in_admin_without_an_actor(
    demo_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    scans_before, _ = _written(demo_engine)
    assert main(["--user", ONE_USER, "--no-datasets", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [user["user_id"] for user in printed["users"]] == [ONE_USER]
    with demo_engine.connect() as conn:
        scan = conn.execute(select(scans).where(scans.c.id == printed["scan_id"])).one()
        actors = set(
            conn.execute(
                select(audit_log.c.actor_email, audit_log.c.actor_role).where(
                    audit_log.c.details["scan_id"].as_integer() == scan.id
                )
            ).tuples()
        )
    assert (scan.status, scan.requested_by) == ("finished", DEMO_ADMIN.email)
    assert actors == {(DEMO_ADMIN.email, "admin")}
    assert _written(demo_engine)[0] == scans_before + 1
