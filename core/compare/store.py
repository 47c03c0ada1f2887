"""Reading comparisons back: one with its images (previews included), and the history.

Plain values out, for the pages and the command line; the caller owns the connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, String, cast, func, select

from core.compare.scores import ComparisonStats
from core.compare.tables import IMAGE_ENDED, comparison_images, comparisons
from core.errors import NotFound

HISTORY_LIMIT = 500


@dataclass(frozen=True)
class ImageView:
    id: int
    letter: str
    seed: int
    version_id: str
    status: str
    attempt: int
    prediction_id: str | None
    earlier_predictions: tuple[str, ...]
    error: str | None
    preview: bytes | None
    scores: Mapping[str, Any] | None
    predict_time: float | None

    @property
    def ended(self) -> bool:
        return self.status in IMAGE_ENDED

    @property
    def can_retry(self) -> bool:
        return self.status in ("failed", "canceled", "aborted")


@dataclass(frozen=True)
class ComparisonView:
    id: int
    user_id: str
    requested_by: str
    requested_at: datetime
    status: str
    prompt: str
    preset: str | None
    seeds: tuple[int, ...]
    columns: tuple[Mapping[str, Any], ...]
    repeat_letter: str | None
    estimate_usd: Decimal
    actual_usd: Decimal | None
    stats: ComparisonStats | None
    verdict: tuple[str, ...]
    reference: Mapping[str, Any] | None
    finished_at: datetime | None
    images: tuple[ImageView, ...]

    @property
    def is_active(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def done(self) -> int:
        return sum(1 for image in self.images if image.ended)

    def image(self, letter: str, seed: int) -> ImageView | None:
        return next((i for i in self.images if i.letter == letter and i.seed == seed), None)


def load_comparison(
    conn: Connection, comparison_id: int, *, previews: bool = True
) -> ComparisonView:
    header = conn.execute(
        select(comparisons).where(comparisons.c.id == comparison_id)
    ).one_or_none()
    if header is None:
        raise NotFound(f"There is no comparison #{comparison_id}: pick one from the history.")
    columns = [column for column in comparison_images.c if previews or column.name != "preview"]
    rows = conn.execute(
        select(*columns)
        .where(comparison_images.c.comparison_id == comparison_id)
        .order_by(comparison_images.c.letter, comparison_images.c.seed)
    ).all()
    images = tuple(
        ImageView(
            id=row.id,
            letter=row.letter,
            seed=row.seed,
            version_id=row.version_id,
            status=row.status,
            attempt=row.attempt,
            prediction_id=row.prediction_id,
            earlier_predictions=tuple(row.earlier_predictions or ()),
            error=row.error,
            preview=getattr(row, "preview", None),
            scores=row.scores,
            predict_time=row.predict_time,
        )
        for row in rows
    )
    return ComparisonView(
        id=header.id,
        user_id=header.user_id,
        requested_by=header.requested_by,
        requested_at=header.requested_at,
        status=header.status,
        prompt=header.prompt,
        preset=header.preset,
        seeds=tuple(header.seeds),
        columns=tuple(header.columns),
        repeat_letter=header.repeat_letter,
        estimate_usd=header.estimate_usd,
        actual_usd=header.actual_usd,
        stats=None if not header.stats else ComparisonStats.from_json(header.stats),
        verdict=tuple(header.verdict or ()),
        reference=header.reference,
        finished_at=header.finished_at,
        images=images,
    )


@dataclass(frozen=True)
class HistoryRow:
    id: int
    user_id: str
    requested_by: str
    requested_at: datetime
    status: str
    columns: str
    seeds: int
    estimate_usd: Decimal
    actual_usd: Decimal | None
    verdict: str


def history(
    conn: Connection,
    *,
    user_id: str | None = None,
    requested_by: str | None = None,
    since: datetime | None = None,
    verdict_contains: str | None = None,
    limit: int = HISTORY_LIMIT,
) -> list[HistoryRow]:
    """Comparisons, newest first, filtered (all filters optional, verdict text matched
    case-insensitively)."""
    query = select(comparisons).order_by(comparisons.c.id.desc()).limit(limit)
    if user_id:
        query = query.where(comparisons.c.user_id == user_id.strip())
    if requested_by:
        query = query.where(func.lower(comparisons.c.requested_by) == requested_by.strip().lower())
    if since is not None:
        query = query.where(comparisons.c.requested_at >= since)
    if verdict_contains:
        pattern = "%" + verdict_contains.strip().replace("%", r"\%").replace("_", r"\_") + "%"
        query = query.where(cast(comparisons.c.verdict, String).ilike(pattern))
    return [
        HistoryRow(
            id=row.id,
            user_id=row.user_id,
            requested_by=row.requested_by,
            requested_at=row.requested_at,
            status=row.status,
            columns=", ".join(f"{c['letter']}: {c['name']}" for c in row.columns),
            seeds=len(row.seeds),
            estimate_usd=row.estimate_usd,
            actual_usd=row.actual_usd,
            verdict=" ".join(row.verdict or ()),
        )
        for row in conn.execute(query)
    ]


def requesters(conn: Connection) -> Sequence[str]:
    """Everyone who ever asked for a comparison (the history's filter)."""
    return list(
        conn.execute(
            select(comparisons.c.requested_by).distinct().order_by(comparisons.c.requested_by)
        ).scalars()
    )
