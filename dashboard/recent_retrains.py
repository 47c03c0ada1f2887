"""The watch's retrain reviews on the pages: Fleet's "Recent retrains" view (a days
choice, the outcomes per day, every retrain in a table whose rows open the user) and the
User page's banner of the user's last retrain.

Read fresh on every run (the database is the truth; one query on ops, one on the app's
users for their emails). While a review is still running, the view looks again every
``POLL_SECONDS`` and draws the page again once one has moved on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st

from core.errors import DashboardError
from core.gateway.values import ModelVersion
from core.ledger.reviews import Verdict
from core.redaction import with_urls_redacted
from core.watch.views import (
    RecentRetrain,
    latest_review,
    outcomes_per_day,
    recent_retrains,
    summary_words,
    versions_words,
)
from dashboard import charts, messages, navigation, tables
from dashboard.messages import said
from dashboard.resources import read_only, runtime
from dashboard.tables import NONE, comparison_link

DAY_CHOICES = (7, 14, 30)
DAYS_KEY = "days"
TABLE_KEY = "recent_retrains"
POLL_SECONDS = 10.0
MINUTES = "YYYY-MM-DD HH:mm"
# The banner's kind of alert, by what the verdict means.
_BANNER = {
    Verdict.BETTER: st.success,
    Verdict.SAME: st.info,
    Verdict.WORSE: st.error,
    Verdict.BROKEN: st.error,
}
_ICONS = {
    Verdict.BETTER: ":material/trending_up:",
    Verdict.SAME: ":material/trending_flat:",
    Verdict.WORSE: ":material/trending_down:",
    Verdict.BROKEN: ":material/error:",
}


def recent(days: int) -> list[RecentRetrain]:
    """Every retrain of the last ``days`` UTC days, newest first, with emails."""
    live = runtime()
    with read_only(live.ops_engine) as ops_conn, read_only(live.engine) as app_conn:
        return recent_retrains(ops_conn, app_conn, days=days)


def latest(user_id: str) -> RecentRetrain | None:
    """The user's last reviewed retrain (one indexed query)."""
    with read_only(runtime().ops_engine) as conn:
        return latest_review(conn, user_id)


def _when(moment: datetime | None) -> str:
    return NONE if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


# -- the table -------------------------------------------------------------------------------

COLUMNS = (
    "user",
    "ended",
    "training",
    "photos",
    "verdict",
    "what the review found",
    "alert",
    "comparison",
    "user id",
)


def recent_frame(rows: Sequence[RecentRetrain]) -> pd.DataFrame:
    """One row per retrain, newest first, in words (the person first, the id last)."""
    return pd.DataFrame(
        {
            "user": [row.email or row.user_id for row in rows],
            "ended": pd.to_datetime([row.ended_at for row in rows], utc=True),
            "training": [row.ended_words for row in rows],
            "photos": [row.photos_words for row in rows],
            "verdict": [row.verdict_words for row in rows],
            "what the review found": [with_urls_redacted(row.sentence_words) for row in rows],
            "alert": [with_urls_redacted(row.alert_words) for row in rows],
            "comparison": [
                comparison_link(row.comparison_id) if row.comparison_id is not None else None
                for row in rows
            ],
            "user id": [row.user_id for row in rows],
        },
        columns=list(COLUMNS),
    )


def recent_columns() -> dict[str, Any]:
    return {
        "user": st.column_config.TextColumn(
            "user", pinned=True, help="The user's email (their id when the app has none)"
        ),
        "ended": st.column_config.DatetimeColumn(
            "ended", format=MINUTES, help="When the training ended on Replicate (UTC)"
        ),
        "training": st.column_config.TextColumn(
            "training", help="How the training ended: succeeded, failed or cancelled"
        ),
        "photos": st.column_config.TextColumn(
            "photos before → after",
            help="Photos in the user's training before this one → in this one "
            f"('{NONE}': not known)",
        ),
        "verdict": st.column_config.TextColumn(
            "verdict",
            help="Better, No difference, Worse (the new version is further from the user's "
            "photos beyond the noise, or lost the face) or Broken (the app's row is wrong "
            "after the retrain); 'reviewing…' while the review runs",
        ),
        "what the review found": st.column_config.TextColumn(
            "what the review found", width="large"
        ),
        "alert": st.column_config.TextColumn(
            "alert",
            help="Whether the alert of a worse or broken retrain was sent, and why not; "
            f"'{NONE}': nothing to alert",
        ),
        "comparison": st.column_config.LinkColumn(
            "comparison",
            display_text="open ↗",
            help="The version before against the new one on the Compare page (a new tab); "
            "empty when no comparison ran",
        ),
        "user id": st.column_config.TextColumn("user id"),
    }


def _coloured(frame: pd.DataFrame) -> Any:
    """The verdict cells in their colour (a Styler: st.dataframe keeps the selection)."""
    hues = {verdict.words: hue for verdict, hue in charts.VERDICT_PALETTE.items()}

    def colour(value: Any) -> str:
        hue = hues.get(str(value))
        return f"color: {hue}; font-weight: 600" if hue else ""

    return frame.style.map(colour, subset=["verdict"])


# -- Fleet → Recent retrains -----------------------------------------------------------------


def _signature(rows: Sequence[RecentRetrain]) -> tuple[tuple[str, str, str], ...]:
    return tuple((row.training_id, row.status, row.alert_status) for row in rows)


def _follow(days: int, rows: Sequence[RecentRetrain]) -> None:
    """While a review runs: look again every POLL_SECONDS, and draw the page again once
    a review or an alert moved on (or a new retrain ended)."""
    seen = _signature(rows)

    @st.fragment(run_every=POLL_SECONDS)
    def follow() -> None:
        try:
            now = _signature(recent(days))
        except DashboardError:
            return  # said on the next full run
        if now != seen:
            st.rerun(scope="app")

    follow()


def _empty_words(days: int) -> str:
    interval = runtime().settings.watch_seconds
    if interval is None:
        return (
            f"No retrain was reviewed in the last {days} days: the watch is off "
            "(WATCH_INTERVAL_SECONDS is 0), so no ended training gets a review."
        )
    return (
        f"No retrain ended in the last {days} days. The watch looks at Replicate every "
        f"{interval:g} s and reviews each training of a user that ends; it shows here "
        "within minutes."
    )


def recent_section() -> None:
    """Fleet's "Recent retrains" view: how the retrains of the last days were judged."""
    st.caption(
        "Every training of a user that ended, judged by the watch: the new version against "
        "the one before (Better, No difference, Worse) or the app's row left wrong "
        "(Broken). Click a row to open the user."
    )
    # The options as bare numbers: a bound widget keeps its option's label in the
    # address, so ?days=14 (not ?days=14+days).
    chosen = st.segmented_control(
        "Ended in the last … days",
        DAY_CHOICES,
        default=DAY_CHOICES[0],
        required=True,
        key=DAYS_KEY,
        bind="query-params",
    )
    days = chosen if chosen in DAY_CHOICES else DAY_CHOICES[0]
    try:
        rows = recent(days)
    except DashboardError as exc:
        messages.error(exc)
        return
    if not rows:
        st.info(_empty_words(days), icon=":material/event_available:")
        return
    st.markdown(said(summary_words(rows, days=days)))
    st.plotly_chart(charts.outcomes_bars(outcomes_per_day(rows, days=days)), key="outcomes")
    selection = st.dataframe(
        _coloured(recent_frame(rows)),
        column_config=recent_columns(),
        hide_index=True,
        height="content",
        placeholder=NONE,
        on_select="rerun",
        selection_mode=tables.OPEN_ON_CLICK,
        key=TABLE_KEY,
    )
    picked = tables.picked_row(selection, len(rows))
    if picked is not None:
        navigation.open_user(rows[picked].user_id)
    if any(row.reviewing for row in rows):
        _follow(days, rows)


# -- the User page's banner ------------------------------------------------------------------


def _banner_details(review: RecentRetrain, versions: Sequence[ModelVersion]) -> str:
    parts = []
    named = versions_words(review, versions)
    if named:
        parts.append(f"versions {named}")
    parts.append(f"photos {review.photos_words}")
    if review.comparison_id is None and review.skipped and not review.reviewing:
        parts.append(f"no comparison: {review.skipped}")
    if not review.reviewing:
        parts.append(f"alert: {review.alert_words}")
    return said(" · ".join(parts))


def latest_banner(user_id: str, versions: Sequence[ModelVersion]) -> None:
    """The user's last retrain as the watch judged it, coloured by its verdict, with
    links to its comparison and to Fleet's recent retrains; nothing when the watch has
    reviewed none of the user's trainings. ``versions``: the model's, to name them."""
    try:
        review = latest(user_id)
    except DashboardError as exc:
        st.caption(f"The last retrain's review could not be read: {said(exc)}")
        return
    if review is None:
        return
    ended = f"training {said(review.ended_words)} {_when(review.ended_at)}"
    if review.verdict is None or review.reviewing:
        st.info(
            f"**Last retrain: {review.verdict_words}** · {ended}. {said(review.sentence_words)}",
            icon=":material/hourglass_top:",
        )
    else:
        _BANNER[review.verdict](
            f"**Last retrain: {review.verdict.words}** · {ended}. {said(review.sentence_words)}",
            icon=_ICONS[review.verdict],
        )
    st.caption(_banner_details(review, versions))
    comparison, fleet = st.columns(2)
    if review.comparison_id is not None:
        comparison.page_link(
            navigation.compare_page(),
            label=f"Comparison #{review.comparison_id}: the version before against the new one",
            icon=":material/compare:",
            query_params={"comparison": str(review.comparison_id), **navigation.kept_params()},
        )
    fleet.page_link(
        navigation.fleet_page(),
        label="Fleet → Recent retrains",
        icon=":material/monitoring:",
        query_params={navigation.FLEET_VIEW: navigation.RETRAINS_VIEW, **navigation.kept_params()},
    )
