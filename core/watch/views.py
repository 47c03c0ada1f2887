"""What the console shows of the watch's retrain reviews: every recent one across the
fleet (Fleet → Recent retrains), their outcomes per UTC day (is a retrain making images
better?), and one user's latest (the User page's banner).

Reads only: the review job writes ``ops.retrain_reviews`` (``core.watch.tables``). A
review still queued or comparing is shown as "reviewing…", with no verdict yet. The
caller owns the connections; the users' emails come from the app's database, which may be
another one than schema ops (``OPS_DATABASE_URL``), so they are a second query there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, select

from core.gateway.values import ModelVersion
from core.ledger.reviews import Verdict, retrain_reviews
from core.users import emails_of
from core.versions import version_name

REVIEWING = "reviewing…"
NOTHING = "—"
# The verdicts in the one order every view uses (legend, stacks, counts): best first.
OUTCOME_ORDER: tuple[Verdict, ...] = (
    Verdict.BETTER,
    Verdict.SAME,
    Verdict.WORSE,
    Verdict.BROKEN,
)
# How a training ended, as a person says it.
_ENDED_WORDS = {"succeeded": "succeeded", "failed": "failed", "canceled": "cancelled"}


@dataclass(frozen=True)
class RecentRetrain:
    """One ended training of a user and what its review found (``verdict`` None while
    the review runs)."""

    training_id: str
    user_id: str
    email: str | None  # the app's users.email; None when unknown (or not looked up)
    training_status: str  # how the training ended: succeeded, failed, canceled
    ended_at: datetime | None
    status: str  # the review's: queued, comparing, done
    verdict: Verdict | None
    sentence: str | None
    codes: tuple[str, ...]
    previous_version: str | None
    new_version: str | None
    photos_before: int | None
    photos_after: int | None
    comparison_id: int | None
    skipped: str | None  # why no comparison ran
    reviewed_at: datetime | None
    alert_status: str  # none, off, queued, sending, sent, failed, unknown
    alert_sent_at: datetime | None
    alert_error: str | None

    @property
    def reviewing(self) -> bool:
        """Whether its review has not reached a verdict yet."""
        return self.status != "done" or self.verdict is None

    @property
    def verdict_words(self) -> str:
        return REVIEWING if self.verdict is None or self.reviewing else self.verdict.words

    @property
    def sentence_words(self) -> str:
        """What the review found in one sentence; while it runs, how far it is."""
        if not self.reviewing and self.sentence:
            return self.sentence
        if self.status == "comparing":
            return "Comparing the version before with the new one on the same prompts and seeds."
        if self.status == "queued":
            return "Waiting for its review: the row, the photos and a comparison are checked."
        return NOTHING

    @property
    def ended_words(self) -> str:
        return _ENDED_WORDS.get(self.training_status, self.training_status)

    @property
    def photos_words(self) -> str:
        """The photos the training before had and this one had: "12 → 8"."""
        return f"{_count(self.photos_before)} → {_count(self.photos_after)}"

    @property
    def alert_words(self) -> str:
        return NOTHING if self.reviewing else alert_words(self)


def _count(value: int | None) -> str:
    return NOTHING if value is None else str(value)


def alert_words(review: RecentRetrain) -> str:
    """Whether the review's alert went out, in words: "sent 2026-12-07 14:03 UTC", "not
    sent: <why>", "off: no webhook is set", or "—" when there was nothing to alert."""
    status = review.alert_status
    quiet = review.verdict is not None and not review.verdict.alerts
    if status == "none" or (status == "off" and quiet):
        return NOTHING  # nothing to alert, whether a webhook is set or not
    if status == "sent":
        when = review.alert_sent_at
        return f"sent {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if when else "sent"
    if status == "off":
        return "off: no alert webhook is set"
    if status == "queued":
        return "not sent yet: waiting to be sent"
    if status == "sending":
        return "sending…"
    if status == "failed":
        return f"not sent: {review.alert_error or 'every attempt failed'}"
    if status == "unknown":
        return "not sent again: the sender stopped while sending, so it may or may not have arrived"
    return NOTHING


def versions_words(
    review: RecentRetrain, versions: Sequence[ModelVersion], *, this_year: int | None = None
) -> str | None:
    """The versions before and after, as staff call them ("v2 · trained 3 Oct → v3 ·
    trained 7 Dec"); ``versions``: the model's, to number them. None when the review
    names neither."""
    if review.previous_version is None and review.new_version is None:
        return None
    before = version_name(review.previous_version, versions, this_year=this_year)
    if review.new_version is None:
        return f"{before}, no new version"
    return f"{before} → {version_name(review.new_version, versions, this_year=this_year)}"


@dataclass(frozen=True)
class Window:
    """The last ``days`` UTC days, today included."""

    first_day: date
    last_day: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first_day, time(), tzinfo=UTC)

    @property
    def days(self) -> tuple[date, ...]:
        count = (self.last_day - self.first_day).days + 1
        return tuple(self.first_day + timedelta(days=offset) for offset in range(count))


def retrain_window(days: int, now: datetime | None = None) -> Window:
    """The window of the last ``days`` UTC days up to ``now`` (today's, UTC, by default)."""
    if days < 1:
        raise ValueError(f"a window of {days} days holds nothing; give at least 1")
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return Window(today - timedelta(days=days - 1), today)


def _verdict(value: Any) -> Verdict | None:
    return Verdict(value) if value in {item.value for item in Verdict} else None


def _review(row: RowMapping, email: str | None) -> RecentRetrain:
    return RecentRetrain(
        training_id=row["training_id"],
        user_id=row["user_id"],
        email=email,
        training_status=row["training_status"],
        ended_at=row["ended_at"],
        status=row["status"],
        verdict=_verdict(row["verdict"]),
        sentence=row["sentence"],
        codes=tuple(row["codes"] or ()),
        previous_version=row["previous_version"],
        new_version=row["new_version"],
        photos_before=row["photos_before"],
        photos_after=row["photos_after"],
        comparison_id=row["comparison_id"],
        skipped=row["skipped"],
        reviewed_at=row["reviewed_at"],
        alert_status=row["alert_status"],
        alert_sent_at=row["alert_sent_at"],
        alert_error=row["alert_error"],
    )


_SHOWN = select(
    retrain_reviews.c.training_id,
    retrain_reviews.c.user_id,
    retrain_reviews.c.training_status,
    retrain_reviews.c.ended_at,
    retrain_reviews.c.status,
    retrain_reviews.c.verdict,
    retrain_reviews.c.sentence,
    retrain_reviews.c.codes,
    retrain_reviews.c.previous_version,
    retrain_reviews.c.new_version,
    retrain_reviews.c.photos_before,
    retrain_reviews.c.photos_after,
    retrain_reviews.c.comparison_id,
    retrain_reviews.c.skipped,
    retrain_reviews.c.reviewed_at,
    retrain_reviews.c.alert_status,
    retrain_reviews.c.alert_sent_at,
    retrain_reviews.c.alert_error,
)


def recent_retrains(
    ops_conn: Connection, app_conn: Connection, *, days: int, now: datetime | None = None
) -> list[RecentRetrain]:
    """Every retrain that ended in the last ``days`` UTC days (``retrain_window``), newest
    first, reviews still running included, each with its user's email: one query on
    ops (the watch queues a review only for a training with an end time, so ``ended_at``
    and its index decide), then one on the app's users for the emails."""
    window = retrain_window(days, now)
    rows = (
        ops_conn.execute(
            _SHOWN.where(retrain_reviews.c.ended_at >= window.since).order_by(
                retrain_reviews.c.ended_at.desc(), retrain_reviews.c.training_id.desc()
            )
        )
        .mappings()
        .all()
    )
    emails = emails_of(app_conn, (row["user_id"] for row in rows))
    return [_review(row, emails.get(row["user_id"])) for row in rows]


def latest_review(ops_conn: Connection, user_id: str) -> RecentRetrain | None:
    """The review of the user's training that ended last, or None when the watch has
    reviewed none (one query on the user's index; no email: the page has it)."""
    row = (
        ops_conn.execute(
            _SHOWN.where(retrain_reviews.c.user_id == user_id)
            .order_by(
                retrain_reviews.c.ended_at.desc().nulls_last(),
                retrain_reviews.c.seen_at.desc(),
                retrain_reviews.c.training_id.desc(),
            )
            .limit(1)
        )
        .mappings()
        .first()
    )
    return None if row is None else _review(row, None)


@dataclass(frozen=True)
class DayOutcomes:
    """How the retrains that ended on one UTC day were judged."""

    day: date
    better: int = 0
    same: int = 0
    worse: int = 0
    broken: int = 0
    reviewing: int = 0  # no verdict yet

    def count(self, verdict: Verdict) -> int:
        counts: int = getattr(self, verdict.value)
        return counts

    @property
    def judged(self) -> int:
        return sum(self.count(verdict) for verdict in OUTCOME_ORDER)


def summary_words(rows: Sequence[RecentRetrain], *, days: int) -> str:
    """The window in one sentence: "5 retrains ended in the last 7 days: 2 better, 1 no
    difference, 1 worse, 0 broken; 1 still being reviewed." """
    judged = [row.verdict for row in rows if not row.reviewing]
    counts = ", ".join(
        f"{judged.count(verdict)} {verdict.words.lower()}" for verdict in OUTCOME_ORDER
    )
    retrains = "1 retrain" if len(rows) == 1 else f"{len(rows)} retrains"
    window = "day" if days == 1 else f"{days} days"
    words = f"{retrains} ended in the last {window}: {counts}"
    pending = len(rows) - len(judged)
    if pending:
        words += f"; {pending} still being reviewed"
    return words + "."


def outcomes_per_day(
    rows: Iterable[RecentRetrain], *, days: int, now: datetime | None = None
) -> list[DayOutcomes]:
    """Each UTC day of the window (``retrain_window(days, now)``), oldest first, with its
    retrains counted per verdict; a day without any is there with zeros. Retrains outside
    the window, or without an end time, are not counted."""
    window = retrain_window(days, now)
    tallies: dict[date, dict[str, int]] = {day: {} for day in window.days}
    for row in rows:
        if row.ended_at is None:
            continue
        tally = tallies.get(row.ended_at.astimezone(UTC).date())
        if tally is None:
            continue
        key = "reviewing" if row.reviewing or row.verdict is None else row.verdict.value
        tally[key] = tally.get(key, 0) + 1
    return [
        DayOutcomes(
            day,
            better=tally.get(Verdict.BETTER.value, 0),
            same=tally.get(Verdict.SAME.value, 0),
            worse=tally.get(Verdict.WORSE.value, 0),
            broken=tally.get(Verdict.BROKEN.value, 0),
            reviewing=tally.get("reviewing", 0),
        )
        for day, tally in tallies.items()
    ]
