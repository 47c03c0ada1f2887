"""Finding a user and gathering the facts about their model: the Users and User pages' data.

The app's tables are only read here. Search pages on the server (LIMIT/OFFSET with a count)
and needs no index the app does not already have (see ``search_users``). Replicate facts
are fetched separately (``latest_versions``, ``load_user_detail``) so a slow or failing
Replicate never blocks the database part, and each failure stays with its section.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    String,
    and_,
    any_,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY

from core.errors import (
    DataRejected,
    ReplicateError,
)

# The user's record and the User page's facts live with everything else known about a
# user (``core.facts.record``); named here for the pages and tests that read them so.
from core.facts.record import (
    ReplicateParts,
    UserDetail,
    UserRecord,
    load_user_detail,
    read_replicate_parts,
    read_user_record,
    replicate_facts,
    user_detail_of,
)
from core.gateway.gateway import ReplicateGateway
from core.schema import user_models, users
from core.versions import short_version

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class UserRow:
    """One line of the Users table. Values are as stored (NULLs stay None)."""

    user_id: str
    email: str | None
    plan: str | None
    training_status: str | None
    stored_version: str | None
    trigger_word: str | None
    model_id: str | None
    updated_at: datetime | None

    @property
    def stored_version_short(self) -> str:
        """First 12 characters of the stored value, as stored; of an ``owner/name:hash``
        value, of the hash (what the app sends), marked ``…:`` so the prefix still shows."""
        stored = self.stored_version
        if stored is not None and ":" in stored:
            return "…:" + short_version(stored.rsplit(":", 1)[-1])
        return short_version(stored)


@dataclass(frozen=True)
class UsersPage:
    """One page of search results; ``page`` is the page actually returned (clamped)."""

    rows: tuple[UserRow, ...]
    total: int
    page: int
    page_size: int
    query: str

    @property
    def page_count(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def first_row(self) -> int:
        """1-based number of the first row shown (0 when there are none)."""
        return (self.page - 1) * self.page_size + 1 if self.rows else 0

    @property
    def last_row(self) -> int:
        return (self.page - 1) * self.page_size + len(self.rows)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: ColumnElement[str | None], pattern: str) -> ColumnElement[bool]:
    # lower() LIKE is about twice as fast as ILIKE in PostgreSQL and means the same here.
    return func.lower(column).like(func.lower(pattern), escape="\\")


def _search_condition(query: str) -> ColumnElement[bool]:
    """Email (substring, any case), exact user id, trigger word or model id (substring)."""
    pattern = _like_pattern(query)
    return or_(
        users.c.id == query,
        _contains(users.c.email, pattern),
        _contains(user_models.c.trigger_word, pattern),
        _contains(user_models.c.replicate_model_id, pattern),
    )


_JOINED = users.outerjoin(user_models, user_models.c.user_id == users.c.id)
# GREATEST ignores NULLs: the last change to the user or to their model row.
_UPDATED_AT = func.greatest(users.c.updated_at, user_models.c.updated_at)
_ROW_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.plan,
    user_models.c.training_status,
    user_models.c.replicate_version_id,
    user_models.c.trigger_word,
    user_models.c.replicate_model_id,
    _UPDATED_AT.label("updated_at"),
)


def _page_of(statement: Select[Any], page: int, page_size: int) -> Select[Any]:
    return (
        statement.select_from(_JOINED)
        .order_by(_UPDATED_AT.desc().nulls_last(), users.c.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )


def _user_row(row: Row[Any]) -> UserRow:
    return UserRow(
        user_id=row.id,
        email=row.email,
        plan=row.plan,
        training_status=row.training_status,
        stored_version=row.replicate_version_id,
        trigger_word=row.trigger_word,
        model_id=row.replicate_model_id,
        updated_at=row.updated_at,
    )


def _clamp(page: int, total: int, page_size: int) -> int:
    return min(max(1, page), max(1, -(-total // page_size)))


def search_users(
    conn: Connection,
    *,
    query: str = "",
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    user_ids: Sequence[str] | None = None,
) -> UsersPage:
    """One page of users matching ``query``, most recently updated first, then by id.

    ``query`` matches an email (substring, any case), an exact user id, or a trigger word or
    model id (substring, any case); empty lists everyone. ``page`` is clamped to the pages
    that exist, so a stale link shows the last page instead of nothing.

    ``user_ids`` restricts the result to those users (``users.id = ANY(...)``), e.g. the
    ones a scan found something on; the ids may come from another database (schema ops
    under OPS_DATABASE_URL), so they are passed as values. An empty list matches nobody.

    Uses the app's tables as they are, with no index added. Listing everyone is a count of
    ``users`` plus a top-N of the join; a search is ONE scan of the join that also counts
    its matches (a window count): 0.1-0.3 s at 100k users on a small machine.
    """
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, not {page_size}.")
    text = query.strip()
    if user_ids is not None:
        return _search_among(conn, text, list(dict.fromkeys(user_ids)), page, page_size)
    if not text:
        total = int(conn.execute(select(func.count()).select_from(users)).scalar_one())
        page = _clamp(page, total, page_size)
        found = conn.execute(_page_of(select(*_ROW_COLUMNS), page, page_size)).all()
        return UsersPage(
            rows=tuple(_user_row(row) for row in found),
            total=total,
            page=page,
            page_size=page_size,
            query=text,
        )
    return _search_where(conn, _search_condition(text), text, page, page_size)


def _search_among(
    conn: Connection, text: str, user_ids: list[str], page: int, page_size: int
) -> UsersPage:
    if not user_ids:
        return UsersPage(rows=(), total=0, page=1, page_size=page_size, query=text)
    # One array parameter, however many ids: no statement grows with the list.
    among = users.c.id == any_(bindparam("user_ids", user_ids, type_=ARRAY(String)))
    condition = and_(among, _search_condition(text)) if text else among
    return _search_where(conn, condition, text, page, page_size)


def _search_where(
    conn: Connection, condition: ColumnElement[bool], text: str, page: int, page_size: int
) -> UsersPage:
    """One scan of the join that pages and counts its matches (a window count)."""
    counted = select(*_ROW_COLUMNS, func.count().over().label("total")).where(condition)
    page = max(1, page)
    found = conn.execute(_page_of(counted, page, page_size)).all()
    if found:
        total = int(found[0].total)
    elif page == 1:
        total = 0
    else:  # a page past the end: count, then fetch the last page
        total = int(
            conn.execute(select(func.count()).select_from(_JOINED).where(condition)).scalar_one()
        )
        clamped = _clamp(page, total, page_size)
        if total and clamped != page:
            found = conn.execute(_page_of(counted, clamped, page_size)).all()
        page = clamped
    return UsersPage(
        rows=tuple(_user_row(row) for row in found),
        total=total,
        page=page,
        page_size=page_size,
        query=text,
    )


# --- latest versions for a page of rows -------------------------------------------------------


class LatestState(StrEnum):
    """What Replicate said about a model when asked for its latest version."""

    FOUND = "found"  # the model exists (``version_id`` None if it has no version)
    MODEL_MISSING = "missing"  # 404: the row points at a model that does not exist
    INVALID_ID = "invalid"  # the stored model id is not ``owner/name``
    UNREACHABLE = "unreachable"  # Replicate failed; ``message`` says what to do


@dataclass(frozen=True)
class LatestVersion:
    model_id: str
    state: LatestState
    version_id: str | None = None
    message: str | None = None


def latest_versions(
    gateway: ReplicateGateway, model_ids: Iterable[str], *, max_workers: int = 8
) -> dict[str, LatestVersion]:
    """The latest version of each distinct model id, fetched with bounded concurrency.

    A failure stays with its model: one unreachable or malformed id does not hide the rest.
    """
    distinct = list(dict.fromkeys(model_id for model_id in model_ids if model_id))
    found: dict[str, LatestVersion] = {}
    for outcome in gateway.get_models(distinct, max_workers=max_workers):
        model_id, error = outcome.item, outcome.error
        if error is None:
            model = outcome.value
            if model is None:
                found[model_id] = LatestVersion(model_id, LatestState.MODEL_MISSING)
            else:
                latest = model.latest_version.id if model.latest_version else None
                found[model_id] = LatestVersion(model_id, LatestState.FOUND, latest)
        elif isinstance(error, DataRejected):
            found[model_id] = LatestVersion(model_id, LatestState.INVALID_ID, message=str(error))
        elif isinstance(error, ReplicateError):
            found[model_id] = LatestVersion(model_id, LatestState.UNREACHABLE, message=str(error))
        else:
            raise error
    return found


# --- one user in detail -----------------------------------------------------------------------


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "LatestState",
    "LatestVersion",
    "ReplicateParts",
    "UserDetail",
    "UserRecord",
    "UserRow",
    "UsersPage",
    "latest_versions",
    "load_user_detail",
    "read_replicate_parts",
    "read_user_record",
    "replicate_facts",
    "search_users",
    "user_detail_of",
]


NAMED_AT_MOST = 20


def users_named(conn: Connection, typed: str) -> tuple[UserRow, ...]:
    """The users ``typed`` names exactly: by id, or by email in any case (a part of an
    email, a trigger word or a model id names nobody here: the Users page searches those).

    Several rows when several users share an email (the app does not forbid it), at most
    ``NAMED_AT_MOST``; one row per user even when they have several model rows.
    """
    wanted = typed.strip()
    if not wanted:
        return ()
    named = or_(users.c.id == wanted, func.lower(users.c.email) == wanted.lower())
    found = conn.execute(_page_of(select(*_ROW_COLUMNS).where(named), 1, NAMED_AT_MOST * 4)).all()
    rows: dict[str, UserRow] = {}
    for row in found:  # newest change first: a user's newest model row speaks for them
        rows.setdefault(row.id, _user_row(row))
    return tuple(rows.values())[:NAMED_AT_MOST]


def emails_of(conn: Connection, user_ids: Iterable[str]) -> dict[str, str | None]:
    """Each user's email by id, for tables that lead with the person (one query however
    many ids; the ids may come from ops, possibly another database, so they are values)."""
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return {}
    found = conn.execute(
        select(users.c.id, users.c.email).where(
            users.c.id == any_(bindparam("user_ids", wanted, type_=ARRAY(String)))
        )
    ).all()
    return {row.id: row.email for row in found}
