"""Finding a user and gathering the facts about their model: the Users and User pages' data.

The app's tables are only read here. Search pages on the server (LIMIT/OFFSET with a count)
and needs no index the app does not already have (see ``search_users``). Replicate facts
are fetched separately (``latest_versions``, ``load_user_detail``) so a slow or failing
Replicate never blocks the database part, and each failure stays with its section.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
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

from core.drift.facts import ModelFacts
from core.errors import (
    DataRejected,
    NotFound,
    Problem,
    ProblemKind,
    ReplicateError,
    ReplicateNotFound,
)
from core.gateway.gateway import ReplicateGateway
from core.gateway.values import ModelVersion, ReplicateModel, Training, is_training_id
from core.schema import user_models, users
from core.versions import VersionComparison, compare_versions, short_version

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


@dataclass(frozen=True)
class UserRecord:
    """The database part of a user: the ``users`` row and their ``user_models`` row.

    Both are name→value mappings in table order, values exactly as stored.
    """

    user_id: str
    user: Mapping[str, Any]
    model_row: Mapping[str, Any] | None


@dataclass(frozen=True)
class UserDetail:
    """Everything the User page shows. A ``*_problem`` says why a section has no facts
    (nothing stored, not on Replicate, or Replicate failing); the other sections still show.
    """

    record: UserRecord
    model_id: str | None
    model: ReplicateModel | None
    model_problem: Problem | None
    versions: tuple[ModelVersion, ...]
    versions_problem: Problem | None
    training_id: str | None
    training: Training | None
    training_problem: Problem | None
    comparison: VersionComparison

    def known_models(self) -> dict[str, ModelFacts]:
        """The row's model as this detail read it, for the diagnosis not to read it again
        (empty when it was not read)."""
        found_parts = ReplicateParts(
            self.model,
            self.model_problem,
            self.versions,
            self.versions_problem,
            self.training,
            self.training_problem,
        )
        key = self.model_id.strip() if self.model_id is not None else None
        found = found_parts.model_facts(key)
        return {} if found is None or key is None else {key: found}

    @property
    def user_id(self) -> str:
        return self.record.user_id

    @property
    def latest_version(self) -> ModelVersion | None:
        if self.model is not None and self.model.latest_version is not None:
            return self.model.latest_version
        return self.versions[0] if self.versions else None


def read_user_record(conn: Connection, user_id: str) -> UserRecord:
    """The user's rows, or ``NotFound`` saying how to find the right id."""
    wanted = user_id.strip()
    user = (
        conn.execute(select(users).where(users.c.id == wanted)).mappings().first()
        if wanted
        else None
    )
    if user is None:
        raise NotFound(
            f"No user with id {user_id!r} in the app's database. Search the Users page by "
            "email, trigger word or model id and open the user from the results."
        )
    model_row = (
        conn.execute(select(user_models).where(user_models.c.user_id == wanted)).mappings().first()
    )
    return UserRecord(
        user_id=wanted,
        user=MappingProxyType(dict(user)),
        model_row=MappingProxyType(dict(model_row)) if model_row is not None else None,
    )


def load_user_detail(conn: Connection, gateway: ReplicateGateway, user_id: str) -> UserDetail:
    """The user's rows plus what Replicate says about their model, versions and training.

    Raises ``NotFound`` for an unknown user. Replicate failures and malformed stored values
    are reported per section in the result, never raised. (Callers that want to free the
    connection before the HTTP calls use ``read_user_record`` then ``replicate_facts``.)
    """
    return replicate_facts(gateway, read_user_record(conn, user_id))


def _text(value: Any) -> str | None:
    """A stored varchar as text; blanks count as nothing stored."""
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


@dataclass(frozen=True)
class ReplicateParts:
    """What Replicate says of a user's row: its model, the model's versions and the row's
    training, each with why it is missing (``Problem``)."""

    model: ReplicateModel | None
    model_problem: Problem | None
    versions: tuple[ModelVersion, ...]
    versions_problem: Problem | None
    training: Training | None
    training_problem: Problem | None

    def model_facts(self, model_id: str | None) -> ModelFacts | None:
        """The model as the diagnosis reads it (None when it was not read), so that the
        page's diagnosis does not ask Replicate again."""
        if model_id is None:
            return None
        if self.model is not None:
            if self.versions_problem is not None:
                return None  # the versions could not be read: the diagnosis tries itself
            return ModelFacts(model_id, found=True, versions=self.versions)
        gone = self.model_problem is not None and self.model_problem.kind is ProblemKind.NOT_FOUND
        return ModelFacts(model_id, found=False) if gone else None


def read_replicate_parts(gateway: ReplicateGateway, record: UserRecord) -> ReplicateParts:
    """Replicate's answers for ``record``: one model read, one versions read, one training
    read at most."""
    row = record.model_row or {}
    model_id = _text(row.get("replicate_model_id"))
    model, model_problem, versions, versions_problem = _model_facts(gateway, model_id, record)
    training, training_problem = _training_facts(gateway, _text(row.get("training_id")), record)
    return ReplicateParts(
        model, model_problem, versions, versions_problem, training, training_problem
    )


def replicate_facts(gateway: ReplicateGateway, record: UserRecord) -> UserDetail:
    """Complete ``record`` with the Replicate model, its versions and the row's training."""
    return user_detail_of(record, read_replicate_parts(gateway, record))


def user_detail_of(record: UserRecord, parts: ReplicateParts) -> UserDetail:
    """The User page's facts from the row read now and Replicate's answers (pure)."""
    row = record.model_row or {}
    model_id = _text(row.get("replicate_model_id"))
    stored = _text(row.get("replicate_version_id"))
    model, versions = parts.model, parts.versions
    latest = (
        model.latest_version.id if model is not None and model.latest_version is not None else None
    )
    comparison = compare_versions(
        stored,
        latest=latest,
        version_ids=[version.id for version in versions]
        if parts.versions_problem is None
        else None,
    )
    return UserDetail(
        record=record,
        model_id=model_id,
        model=model,
        model_problem=parts.model_problem,
        versions=versions,
        versions_problem=parts.versions_problem,
        training_id=_text(row.get("training_id")),
        training=parts.training,
        training_problem=parts.training_problem,
        comparison=comparison,
    )


def _model_facts(
    gateway: ReplicateGateway, model_id: str | None, record: UserRecord
) -> tuple[ReplicateModel | None, Problem | None, tuple[ModelVersion, ...], Problem | None]:
    if record.model_row is None:
        problem = Problem(
            ProblemKind.ABSENT, "This user has no user_models row: they never started a training."
        )
        return None, problem, (), problem
    if model_id is None:
        problem = Problem(
            ProblemKind.ABSENT,
            "No replicate_model_id is stored, so there is no model to compare with. "
            "Look for the user's trainings on Replicate to find their model.",
        )
        return None, problem, (), problem
    try:
        model = gateway.get_model(model_id.strip())
    except (ReplicateError, DataRejected) as exc:
        failed = Problem.of(exc)
        return None, failed, (), Problem(failed.kind, f"Versions not read: {exc}")
    if model is None:
        problem = Problem(
            ProblemKind.NOT_FOUND,
            f"Model {model_id} does not exist on Replicate (404). The row points at a "
            "deleted or never-created model; find the user's real model from their "
            "trainings.",
        )
        return None, problem, (), problem
    try:
        versions = tuple(gateway.list_versions(model_id.strip()))
    except ReplicateError as exc:
        return model, None, (), Problem.of(exc)
    return model, None, versions, None


def _training_facts(
    gateway: ReplicateGateway, training_id: str | None, record: UserRecord
) -> tuple[Training | None, Problem | None]:
    if record.model_row is None:
        return None, Problem(ProblemKind.ABSENT, "No user_models row, so no training is recorded.")
    if training_id is None:
        return None, Problem(
            ProblemKind.ABSENT,
            "No training_id is stored (the app clears it when a retrain starts "
            "over, and sets it when Replicate accepts the training).",
        )
    if not is_training_id(training_id.strip()):
        return None, Problem(
            ProblemKind.REJECTED, f"training_id {training_id!r} is not a Replicate training id."
        )
    try:
        return gateway.get_training(training_id.strip()), None
    except ReplicateNotFound:
        return None, Problem(
            ProblemKind.NOT_FOUND,
            f"Training {training_id} is not on Replicate (404): it was made with "
            "another account or token, or deleted.",
        )
    except ReplicateError as exc:
        return None, Problem.of(exc)
