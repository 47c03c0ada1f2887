"""Which users a scan looks at, read from the app's database a page at a time.

By default every user of the app, in id order (keyset paging, so 100k users are never all
in memory); or the ids given, in the order given. A user without a ``user_models`` row
never trained: nothing can drift, so the scan records them with no finding (the pages
then say "no finding", not "not scanned yet"). A given id that is no user at all gets
SCAN_ERROR, so a typo is not reported healthy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, select

from core.drift.facts import AppRow
from core.ledger.reads import app_rows
from core.schema import user_models, users

PAGE_SIZE = 2000


@dataclass(frozen=True)
class Page:
    """One page of the scope: rows to diagnose, and given ids that have no row."""

    rows: tuple[AppRow, ...]
    no_model: tuple[str, ...] = ()  # users without a user_models row
    unknown: tuple[str, ...] = ()  # ids that are no user at all
    cursor: str | None = None  # ``pages(start=cursor)`` goes on after this page

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.no_model) + len(self.unknown)


@dataclass(frozen=True)
class Scope:
    """Every user (``user_ids`` None), or exactly the ids given."""

    user_ids: tuple[str, ...] | None = None

    @classmethod
    def of(cls, user_ids: Sequence[str] | None) -> Scope:
        if user_ids is None:
            return cls(None)
        if isinstance(user_ids, str):
            raise TypeError("user_ids must be a sequence of ids, not one string")
        return cls(tuple(dict.fromkeys(user_id.strip() for user_id in user_ids)))

    @property
    def is_everyone(self) -> bool:
        return self.user_ids is None

    def count(self, conn: Connection) -> int:
        if self.user_ids is not None:
            return len(self.user_ids)
        return int(conn.execute(select(func.count()).select_from(users)).scalar_one())

    def pages(
        self, app_engine: Engine, *, page_size: int = PAGE_SIZE, start: str | None = None
    ) -> Iterator[Page]:
        """The scope a page at a time, each on a short-lived connection; from the
        beginning, or after the page whose ``cursor`` is ``start``."""
        if self.user_ids is None:
            yield from _all_rows(app_engine, page_size, after=start)
            return
        first = int(start) if start else 0
        for begin in range(first, len(self.user_ids), page_size):
            chunk = self.user_ids[begin : begin + page_size]
            with app_engine.connect() as conn:
                page = given_ids(conn, chunk)
            yield Page(page.rows, page.no_model, page.unknown, cursor=str(begin + len(chunk)))


def _all_rows(app_engine: Engine, page_size: int, *, after: str | None) -> Iterator[Page]:
    while True:
        # The keys in the database's order (its collation, not Python's), then their rows.
        keys = select(users.c.id).order_by(users.c.id).limit(page_size)
        if after is not None:
            keys = keys.where(users.c.id > after)
        with app_engine.connect() as conn:
            ordered = list(conn.execute(keys).scalars())
            if not ordered:
                return
            by_id = {
                row.user_id: row for row in app_rows(conn, where=user_models.c.user_id.in_(ordered))
            }
        yield Page(
            tuple(by_id[user_id] for user_id in ordered if user_id in by_id),
            no_model=tuple(user_id for user_id in ordered if user_id not in by_id),
            cursor=ordered[-1],
        )
        if len(ordered) < page_size:
            return
        after = ordered[-1]


def given_ids(conn: Connection, chunk: Sequence[str]) -> Page:
    """The rows of exactly these ids, in their order; ids without a row sorted into
    users who never trained and ids that are no user at all."""
    by_id = {row.user_id: row for row in app_rows(conn, where=user_models.c.user_id.in_(chunk))}
    missing = [user_id for user_id in chunk if user_id not in by_id]
    existing = (
        set(conn.execute(select(users.c.id).where(users.c.id.in_(missing))).scalars())
        if missing
        else set()
    )
    return Page(
        rows=tuple(by_id[user_id] for user_id in chunk if user_id in by_id),
        no_model=tuple(user_id for user_id in missing if user_id in existing),
        unknown=tuple(user_id for user_id in missing if user_id not in existing),
    )
