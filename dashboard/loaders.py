"""What pages call for data: a connection from the runtime, a core service, a short cache.

Pages never see engines, SQL or HTTP. Database reads are not cached (the database is the
truth and the queries are cheap); Replicate facts for a page of rows are cached for a
minute, and never when Replicate failed, so a recovery shows on the next rerun.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import streamlit as st

from core import audit, repairs, users
from core.audit import AuditRecord
from core.facts import record as user_record
from core.staff import StaffMember, list_staff
from core.users import LatestState, LatestVersion, UserDetail, UsersPage
from dashboard.resources import read_only, runtime

PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 50
LATEST_TTL_SECONDS = 60
REPLICATE_WORKERS = 8


def last_undoable_repair(user_id: str) -> AuditRecord | None:
    """The user's newest repair that no undo names yet (read fresh: it changes on click)."""
    with read_only(runtime().engine) as conn:
        return repairs.last_undoable_repair(conn, user_id)


def emails_of(user_ids: Iterable[str]) -> dict[str, str | None]:
    """Each user's email by id (a user the app no longer has is missing)."""
    with read_only(runtime().engine) as conn:
        return users.emails_of(conn, user_ids)


def search_users(query: str, page: int, user_ids: Sequence[str] | None = None) -> UsersPage:
    """One page of the Users table (only ``user_ids`` when given: a finding filter)."""
    with read_only(runtime().engine) as conn:
        return users.search_users(
            conn, query=query, page=page, page_size=PAGE_SIZE, user_ids=user_ids
        )


class _NotCached(Exception):
    """Carries a result that must not be cached (some models could not be read)."""

    def __init__(self, result: dict[str, LatestVersion]) -> None:
        super().__init__("partial result")
        self.result = result


@st.cache_data(ttl=LATEST_TTL_SECONDS, max_entries=64, show_spinner=False)
def _cached_latest_versions(
    replicate_base_url: str, model_ids: tuple[str, ...]
) -> dict[str, LatestVersion]:
    result = users.latest_versions(runtime().gateway, model_ids, max_workers=REPLICATE_WORKERS)
    if any(item.state is LatestState.UNREACHABLE for item in result.values()):
        raise _NotCached(result)  # exceptions are not cached: ask again on the next rerun
    return result


def latest_versions(model_ids: Iterable[str | None]) -> dict[str, LatestVersion]:
    """Latest version per model id for the rows on screen (only those, 8 at a time)."""
    wanted = tuple(sorted({model_id for model_id in model_ids if model_id}))
    if not wanted:
        return {}
    try:
        return _cached_latest_versions(runtime().replicate_base_url, wanted)
    except _NotCached as partial:
        return partial.result


# Replicate's answers for a user's row are kept this long (the row itself is read on
# every run): a click or a dialog on the User page does not ask Replicate again.
REPLICATE_PARTS_TTL_SECONDS = 30


@st.cache_resource(
    ttl=REPLICATE_PARTS_TTL_SECONDS, max_entries=64, show_spinner="Reading this user's model…"
)
def _replicate_parts(
    replicate_base_url: str,
    user_id: str,
    has_row: bool,
    model_id: str | None,
    training_id: str | None,
    _record: user_record.UserRecord,
) -> user_record.ReplicateParts:
    # Frozen values holding Problems and read-only mappings: shared, not pickled.
    return user_record.read_replicate_parts(runtime().gateway, _record)


def user_detail(user_id: str) -> UserDetail:
    """The User page's facts: the row read now, Replicate's answers for it cached briefly.
    The connection is returned before Replicate is called."""
    rt = runtime()
    with read_only(rt.engine) as conn:
        record = user_record.read_user_record(conn, user_id)
    row = record.model_row or {}
    parts = _replicate_parts(
        rt.replicate_base_url,
        record.user_id,
        record.model_row is not None,
        _key(row.get("replicate_model_id")),
        _key(row.get("training_id")),
        record,
    )
    return user_record.user_detail_of(record, parts)


def _key(value: object) -> str | None:
    return None if value is None else str(value)


def forget_replicate_parts() -> None:
    _replicate_parts.clear()


@st.cache_data(ttl=30, max_entries=4, show_spinner=False)
def _cached_staff(ops_database: str) -> list[StaffMember]:
    with read_only(runtime().ops_engine) as conn:
        return list_staff(conn)


def staff_members() -> list[StaffMember]:
    """``ops.staff`` (cached 30 s: a removed member loses access within half a minute)."""
    ops_engine = runtime().ops_engine
    return _cached_staff(ops_engine.url.render_as_string(hide_password=True))


def audit_actions() -> list[str]:
    """Every action name in the audit log, for the Audit page's filter."""
    with read_only(runtime().ops_engine) as conn:
        return audit.distinct_actions(conn)


def audit_page(
    page: int, *, action: str | None, actor: str | None, user_id: str | None
) -> tuple[list[AuditRecord], int, int]:
    """One page of the audit log, newest first: (records, total, the page returned)."""
    filters = {"action": action, "actor": actor, "user_id": user_id}
    with read_only(runtime().ops_engine) as conn:
        total = audit.count_records(conn, **filters)
        pages = max(1, -(-total // AUDIT_PAGE_SIZE))
        page = min(max(1, page), pages)
        records = audit.list_records(
            conn, limit=AUDIT_PAGE_SIZE, offset=(page - 1) * AUDIT_PAGE_SIZE, **filters
        )
    return records, total, page
