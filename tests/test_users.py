"""core.users: search and paging over the app's tables, and one user's facts from Replicate.

Real PostgreSQL (rows rolled back per test) and the real sandbox. The sandbox world is
made once per module (trainings take a moment), so this module never uses the
function-scoped ``sandbox`` fixture, which would empty it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypedDict, Unpack

import httpx
import pytest
from sqlalchemy import Connection, create_engine, func, select, text

from core.config import Mode
from core.db import create_app_tables
from core.errors import NotFound
from core.gateway.gateway import ReplicateGateway
from core.sandbox.catalog import FAST_FLUX_TRAINER_VERSION
from core.sandbox.server import RunningSandbox
from core.schema import users
from core.users import (
    LatestState,
    emails_of,
    latest_versions,
    load_user_detail,
    search_users,
    users_named,
)
from tests.user_world import (
    FILLERS,
    ReplicateWorld,
    UserWorld,
    gateway_on,
    insert_world,
    seed_replicate,
)


@pytest.fixture(scope="module")
def module_gateway(sandbox_server: RunningSandbox) -> Iterator[ReplicateGateway]:
    with gateway_on(sandbox_server.base_url) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def replicate_world(
    sandbox_server: RunningSandbox, module_gateway: ReplicateGateway
) -> Iterator[ReplicateWorld]:
    httpx.post(f"{sandbox_server.base_url}/_sandbox/reset").raise_for_status()
    yield seed_replicate(module_gateway)
    httpx.delete(f"{sandbox_server.base_url}/_sandbox/faults").raise_for_status()


@pytest.fixture
def world(conn: Connection, replicate_world: ReplicateWorld) -> UserWorld:
    return insert_world(conn, replicate_world)


@pytest.fixture
def replicate_down(sandbox_server: RunningSandbox) -> Iterator[None]:
    """Every API call answers 503 asking to come back in two minutes, beyond any retry budget,
    so the gateway gives up at once instead of retrying."""
    faults = f"{sandbox_server.base_url}/_sandbox/faults"
    httpx.post(faults, json={"status": 503, "retry_after": 120}).raise_for_status()
    yield
    httpx.delete(faults).raise_for_status()


class _Paging(TypedDict, total=False):
    page: int
    page_size: int


def _ids(conn: Connection, query: str, **paging: Unpack[_Paging]) -> list[str]:
    return [row.user_id for row in search_users(conn, query=query, **paging).rows]


# --- search ---------------------------------------------------------------------------------


def test_empty_query_lists_everyone_newest_first(conn: Connection, world: UserWorld) -> None:
    result = search_users(conn, page_size=500)
    assert result.total == conn.execute(select(func.count()).select_from(users)).scalar_one()
    assert [row.user_id for row in result.rows[:7]] == list(world.special)
    stamps = [row.updated_at for row in result.rows if row.updated_at is not None]
    assert stamps == sorted(stamps, reverse=True)


def test_search_by_email_any_case_and_substring(conn: Connection, world: UserWorld) -> None:
    assert _ids(conn, "5040000C@EXAMPLE") == [world.healthy]
    assert len(_ids(conn, "FILLER001", page_size=500)) == 10


def test_search_by_exact_user_id(conn: Connection, world: UserWorld) -> None:
    assert _ids(conn, "filler-0001") == ["filler-0001"]
    assert _ids(conn, "filler-000") == []  # ids match exactly, not as substrings
    assert _ids(conn, f"  {world.stale}  ") == [world.stale]


def test_search_by_trigger_word_and_model_id(conn: Connection, world: UserWorld) -> None:
    assert _ids(conn, "user51a1e000") == [world.stale]
    # Two rows point at the stale user's model: the stale user and the foreign one.
    assert set(_ids(conn, "stale001-selfie")) == {world.stale, world.foreign}


def test_like_wildcards_are_literal(conn: Connection, world: UserWorld) -> None:
    assert _ids(conn, "%") == []
    assert _ids(conn, "_") == []


def test_paging_is_done_by_the_database(conn: Connection, world: UserWorld) -> None:
    total = search_users(conn).total
    first, second = search_users(conn, page_size=10), search_users(conn, page=2, page_size=10)
    assert (first.first_row, first.last_row, second.first_row, second.last_row) == (1, 10, 11, 20)
    assert not {row.user_id for row in first.rows} & {row.user_id for row in second.rows}
    last = search_users(conn, page=999, page_size=10)  # a stale link lands on the last page
    assert last.page == first.page_count == -(-total // 10)
    assert last.last_row == total
    assert search_users(conn, page=0, page_size=10).page == 1
    with pytest.raises(ValueError, match="page_size"):
        search_users(conn, page_size=0)


def test_search_results_page_and_clamp_too(conn: Connection, world: UserWorld) -> None:
    third = search_users(conn, query="filler", page=3, page_size=10)
    assert (third.total, third.first_row, third.last_row) == (FILLERS, 21, 30)
    assert [row.user_id for row in third.rows] == [f"filler-{n:04d}" for n in range(20, 30)]
    past_the_end = search_users(conn, query="filler", page=99, page_size=10)
    assert past_the_end.page == past_the_end.page_count == 6 and past_the_end.last_row == FILLERS


def test_no_match_is_an_empty_first_page(conn: Connection, world: UserWorld) -> None:
    for page in (1, 5):
        result = search_users(conn, query="nobody-like-this", page=page)
        assert (result.total, result.page, result.page_count, result.first_row) == (0, 1, 1, 0)


def test_restricted_to_given_ids_with_or_without_a_query(
    conn: Connection, world: UserWorld
) -> None:
    """The Users page's finding filter: ids from schema ops (maybe another database)."""
    wanted = [world.stale, world.foreign, "filler-0007", "no-such-user", world.stale]
    among = search_users(conn, user_ids=wanted)
    assert [row.user_id for row in among.rows] == [world.stale, world.foreign, "filler-0007"]
    assert among.total == 3
    assert _ids(conn, "stale001-selfie") == [world.stale, world.foreign]  # unchanged
    narrowed = search_users(conn, query="stale001-selfie", user_ids=[world.foreign])
    assert [row.user_id for row in narrowed.rows] == [world.foreign] and narrowed.total == 1
    paged = search_users(
        conn, user_ids=[f"filler-{n:04d}" for n in range(25)], page=3, page_size=10
    )
    assert (paged.total, paged.first_row, paged.last_row) == (25, 21, 25)
    assert search_users(conn, user_ids=wanted, page=9, page_size=2).page == 2


def test_an_empty_id_list_matches_nobody(conn: Connection, world: UserWorld) -> None:
    for query in ("", "filler"):
        result = search_users(conn, query=query, user_ids=[])
        assert (result.total, result.rows, result.page, result.first_row) == (0, (), 1, 0)


def test_rows_show_stored_values_as_stored(conn: Connection, world: UserWorld) -> None:
    rows = {row.user_id: row for row in search_users(conn, page_size=500).rows}
    prefixed = rows[world.prefixed]
    assert prefixed.stored_version_short == "…:" + world.replicate.healthy_version[:12]
    assert rows[world.malformed].stored_version_short == "  not-a-vers"
    assert rows[world.malformed].model_id is None
    assert rows[world.malformed].training_status == "weird-status"
    assert rows[world.no_row].training_status is None and rows[world.no_row].trigger_word is None
    healthy = rows[world.healthy]
    assert healthy.stored_version_short == world.replicate.healthy_version[:12]
    assert (healthy.email, healthy.plan, healthy.trigger_word) == (
        world.email(world.healthy),
        "sselfie-studio",
        "user5040000c",
    )


def test_search_is_right_at_100k_users(fresh_database_url: str) -> None:
    """100k users with model rows, the app's indexes only. Its speed is a figure of
    `python -m core.bench --only users_page_query`, not a threshold here."""
    engine = create_engine(fresh_database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        create_app_tables(engine, mode=Mode.DEMO)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (id, email, updated_at) SELECT 'u' || n, 'person' || n || "
                    "'@example.test', timestamp '2026-01-01' + n * interval '1 second' "
                    "FROM generate_series(1, 100000) n"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO user_models (user_id, replicate_model_id, replicate_version_id, "
                    "trigger_word, training_status, updated_at) SELECT 'u' || n, "
                    "'sandrasocial/user-' || n || '-selfie-lora', md5(n::text) || md5(n::text), "
                    "'user' || n, 'completed', timestamp '2025-06-01' + n * interval '1 second' "
                    "FROM generate_series(1, 100000) n"
                )
            )
            connection.execute(text("ANALYZE users, user_models"))
        with engine.connect() as connection:
            for query, page in (
                ("", 1),
                ("", 1000),
                ("person4242@", 1),
                ("u77777", 1),
                ("user-99999-selfie", 1),
                ("user31337", 1),
            ):
                result = search_users(connection, query=query, page=page)
                assert result.rows, query
            assert search_users(connection).total == 100_000
            assert search_users(connection, query="u77777").rows[0].user_id == "u77777"
    finally:
        engine.dispose()


# --- the latest version per row ----------------------------------------------------------------


def test_latest_versions_keeps_each_outcome_with_its_model(
    module_gateway: ReplicateGateway,
    replicate_world: ReplicateWorld,
) -> None:
    found = latest_versions(
        module_gateway,
        [
            replicate_world.stale_model,
            replicate_world.healthy_model,
            "sandrasocial/gone",
            "not a model id",
            replicate_world.stale_model,
            "",
        ],
    )
    assert list(found) == [
        replicate_world.stale_model,
        replicate_world.healthy_model,
        "sandrasocial/gone",
        "not a model id",
    ]
    assert found[replicate_world.stale_model].version_id == replicate_world.stale_versions[0]
    assert found[replicate_world.healthy_model].state is LatestState.FOUND
    assert found["sandrasocial/gone"].state is LatestState.MODEL_MISSING
    assert found["not a model id"].state is LatestState.INVALID_ID


def test_latest_versions_when_replicate_is_down(
    module_gateway: ReplicateGateway,
    replicate_world: ReplicateWorld,
    replicate_down: None,
) -> None:
    found = latest_versions(module_gateway, [replicate_world.healthy_model])
    outcome = found[replicate_world.healthy_model]
    assert outcome.state is LatestState.UNREACHABLE
    assert outcome.message is not None and "try again" in outcome.message


# --- one user ---------------------------------------------------------------------------------


def test_healthy_user_detail(
    conn: Connection, world: UserWorld, module_gateway: ReplicateGateway
) -> None:
    detail = load_user_detail(conn, module_gateway, world.healthy)
    assert detail.record.user["email"] == world.email(world.healthy)
    assert detail.model is not None and detail.model.key == world.replicate.healthy_model
    assert [v.id for v in detail.versions] == [world.replicate.healthy_version]
    assert detail.versions[0].created_at is not None
    assert detail.training is not None and detail.training.status == "succeeded"
    assert detail.comparison.is_latest and detail.comparison.stored_is_bare
    assert detail.latest_version is not None
    assert detail.latest_version.id == world.replicate.healthy_version


def test_model_row_has_every_column_in_table_order(
    conn: Connection, world: UserWorld, module_gateway: ReplicateGateway
) -> None:
    from core.schema import user_models

    detail = load_user_detail(conn, module_gateway, world.stale)
    assert detail.record.model_row is not None
    assert list(detail.record.model_row) == [column.name for column in user_models.columns]
    assert list(detail.record.user) == [column.name for column in users.columns]


def test_stale_user_is_two_versions_behind(
    conn: Connection, world: UserWorld, module_gateway: ReplicateGateway
) -> None:
    detail = load_user_detail(conn, module_gateway, world.stale)
    comparison = detail.comparison
    assert [v.id for v in detail.versions] == list(world.replicate.stale_versions)
    assert comparison.latest == world.replicate.stale_versions[0]
    assert (comparison.is_latest, comparison.is_version_of_model, comparison.versions_behind) == (
        False,
        True,
        2,
    )
    training = detail.training
    assert training is not None and training.id == world.replicate.stale_trainings[-1].id
    assert training.input["trigger_word"] == "user51a1e000"
    assert training.version_hash == world.replicate.stale_versions[0]


def test_prefixed_and_foreign_values(
    conn: Connection, world: UserWorld, module_gateway: ReplicateGateway
) -> None:
    prefixed = load_user_detail(conn, module_gateway, world.prefixed).comparison
    assert not prefixed.stored_is_bare and prefixed.is_latest is True
    assert prefixed.normalised == world.replicate.healthy_version
    foreign = load_user_detail(conn, module_gateway, world.foreign).comparison
    assert foreign.normalised == FAST_FLUX_TRAINER_VERSION
    assert foreign.is_version_of_model is False


def test_malformed_row_never_crashes(
    conn: Connection, world: UserWorld, module_gateway: ReplicateGateway
) -> None:
    detail = load_user_detail(conn, module_gateway, world.malformed)
    assert detail.model is None and "No replicate_model_id" in (detail.model_problem or "")
    assert detail.training is None
    assert "not a Replicate training id" in (detail.training_problem or "")
    assert detail.comparison.normalised == "not-a-version"
    assert detail.comparison.is_latest is None
    assert detail.record.model_row is not None
    assert detail.record.model_row["replicate_version_id"] == "  not-a-version\n"


def test_missing_model_and_missing_row(
    conn: Connection, world: UserWorld, module_gateway: ReplicateGateway
) -> None:
    missing = load_user_detail(conn, module_gateway, world.missing_model)
    assert missing.model is None and "does not exist on Replicate (404)" in (
        missing.model_problem or ""
    )
    assert "No training_id" in (missing.training_problem or "")
    no_row = load_user_detail(conn, module_gateway, world.no_row)
    assert no_row.record.model_row is None and no_row.model is None
    assert "no user_models row" in (no_row.model_problem or "")


def test_unknown_user_says_how_to_find_them(
    conn: Connection, world: UserWorld, module_gateway: ReplicateGateway
) -> None:
    with pytest.raises(NotFound, match="Search the Users page"):
        load_user_detail(conn, module_gateway, "no-such-user")
    with pytest.raises(NotFound):
        load_user_detail(conn, module_gateway, "   ")


def test_replicate_down_keeps_the_database_part(
    conn: Connection, world: UserWorld, module_gateway: ReplicateGateway, replicate_down: None
) -> None:
    detail = load_user_detail(conn, module_gateway, world.stale)
    assert detail.record.model_row is not None
    assert detail.model is None and "unavailable" in (detail.model_problem or "")
    assert detail.versions_problem is not None
    assert detail.training is None and "unavailable" in (detail.training_problem or "")
    assert detail.comparison.is_latest is None


def test_fillers_are_in_the_world(conn: Connection, world: UserWorld) -> None:
    assert search_users(conn, query="filler").total == FILLERS


def test_users_are_named_exactly_by_id_or_by_email_in_any_case(
    conn: Connection, world: UserWorld
) -> None:
    conn.execute(
        users.insert(),
        [
            {"id": "named-1", "email": "Ann@Example.test"},
            {"id": "named-2", "email": "ann@example.test"},  # the app does not fold case
            {"id": "named-3", "email": "joann@example.test"},
        ],
    )
    assert {row.user_id for row in users_named(conn, " ANN@example.test ")} == {
        "named-1",
        "named-2",
    }
    assert [row.email for row in users_named(conn, "named-3")] == ["joann@example.test"]
    assert users_named(conn, "example.test") == ()  # a part of an email names nobody
    assert users_named(conn, "named-") == ()
    assert [row.user_id for row in users_named(conn, world.stale)] == [world.stale]


def test_emails_are_read_by_id_in_one_query(conn: Connection, world: UserWorld) -> None:
    found = emails_of(conn, [world.stale, world.healthy, world.stale, "nobody-here"])
    assert found == {
        world.stale: world.email(world.stale),
        world.healthy: world.email(world.healthy),
    }
    assert emails_of(conn, []) == {}
