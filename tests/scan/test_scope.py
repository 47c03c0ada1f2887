"""Who a scan looks at, and how one user's trouble stays theirs: small worlds of literal
rows in a database of their own, models on the session's sandbox (never reset here)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from core.gateway.gateway import ReplicateGateway
from core.roles import Actor, Role
from core.scan import last_scan, run_scan
from core.scan.batch import UNKNOWN_USER
from core.scan.scope import Scope
from core.scan.tables import scan_users, scans
from core.schema import user_models
from tests.scan.conftest import SmallWorld

ADMIN = Actor("ada@example.test", Role.ADMIN)


def new_model(gateway: ReplicateGateway) -> str:
    """A model of its own on the sandbox, with no version yet."""
    model_id = f"sandrasocial/scan-{uuid.uuid4().hex[:10]}"
    gateway.create_model(model_id)
    return model_id


def test_each_users_trouble_stays_with_that_user(
    small_world: SmallWorld, gateway: ReplicateGateway
) -> None:
    small_world.add("fine-1", model_id=new_model(gateway))
    small_world.add("junk-model", model_id="not a model id")
    small_world.add("gone-model", model_id="sandrasocial/never-created-here")
    small_world.add("fine-2", model_id=new_model(gateway))
    result = run_scan(
        app_engine=small_world.engine, ops_engine=small_world.engine, gateway=gateway, actor=ADMIN
    )
    found = {user.user_id: user.findings for user in result.users}
    assert [user.user_id for user in result.users] == sorted(found)  # id order, all of them
    assert [f.code for f in found["junk-model"]] == ["SCAN_ERROR"]
    assert "not a Replicate model id" in found["junk-model"][0].title
    assert [f.code for f in found["gone-model"]] == ["MODEL_NOT_FOUND"]  # a fact, not an error
    assert found["fine-1"] == found["fine-2"] == ()


def test_given_ids_are_scanned_in_order_and_unknown_ones_are_not_called_healthy(
    small_world: SmallWorld,
    gateway: ReplicateGateway,
) -> None:
    small_world.add("has-row", model_id=new_model(gateway))
    small_world.add("no-row", with_model_row=False)  # signed up, never trained
    small_world.add("not-asked", model_id="sandrasocial/not-asked")
    result = run_scan(
        app_engine=small_world.engine,
        ops_engine=small_world.engine,
        gateway=gateway,
        user_ids=["no-row", "nobody", "has-row", "no-row"],
        actor=Actor("sam@example.test", Role.ADMIN),
    )
    assert [(user.user_id, [f.code for f in user.findings]) for user in result.users] == [
        ("has-row", []),
        ("no-row", []),
        ("nobody", ["SCAN_ERROR"]),
    ]
    assert UNKNOWN_USER in result.users[-1].findings[0].title
    with small_world.engine.connect() as conn:
        row = conn.execute(select(scans)).one()
        stored = set(conn.execute(select(scan_users.c.user_id)).scalars())
    assert (row.users_total, row.users_scanned, row.requested_by) == (3, 3, "sam@example.test")
    assert row.options["scope"] == "users"
    assert row.options["user_ids"] == ["no-row", "nobody", "has-row"]
    assert stored == {"has-row", "no-row", "nobody"}


def test_pages_cover_every_row_once_in_the_databases_order(small_world: SmallWorld) -> None:
    ids = ["b-2", "A-1", "a-3", "c", "B-10", "_x", "a-20"]
    for user_id in ids:
        small_world.add(user_id)
    pages = list(Scope.of(None).pages(small_world.engine, page_size=3))
    assert [len(page.rows) for page in pages] == [3, 3, 1]
    read = [row.user_id for page in pages for row in page.rows]
    with small_world.engine.connect() as conn:
        in_db_order = list(
            conn.execute(select(user_models.c.user_id).order_by(user_models.c.user_id)).scalars()
        )
    assert read == in_db_order and sorted(read) == sorted(ids)


def test_an_empty_scope_is_a_finished_scan_of_nobody(
    small_world: SmallWorld, gateway: ReplicateGateway
) -> None:
    calls: list[tuple[int, int]] = []
    result = run_scan(
        app_engine=small_world.engine,
        ops_engine=small_world.engine,
        gateway=gateway,
        actor=ADMIN,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert result.users == () and calls == [(0, 0)]
    with small_world.engine.connect() as conn:
        summary = last_scan(conn)
    assert summary is not None and (summary.status, summary.users_total) == ("finished", 0)


def test_a_failure_outside_the_users_marks_the_scan_failed(
    small_world: SmallWorld, gateway: ReplicateGateway
) -> None:
    """E.g. Streamlit stopping the script (the user left the page) inside ``progress``."""
    for index in range(3):
        small_world.add(f"user-{index}", model_id=new_model(gateway))

    def progress(done: int, total: int) -> None:
        if done:
            raise RuntimeError("the page went away")

    with pytest.raises(RuntimeError, match="the page went away"):
        run_scan(
            app_engine=small_world.engine,
            ops_engine=small_world.engine,
            gateway=gateway,
            actor=ADMIN,
            concurrency=1,
            progress=progress,
        )
    with small_world.engine.connect() as conn:
        summary = last_scan(conn)
        stored = conn.execute(select(scan_users.c.user_id)).scalars().all()
    assert summary is not None and summary.status == "failed"
    assert summary.error == "RuntimeError: the page went away"
    assert summary.finished_at is not None and summary.users_scanned == len(stored) > 0


def test_a_single_id_string_is_refused() -> None:
    with pytest.raises(TypeError, match="not one string"):
        Scope.of("45038279")
