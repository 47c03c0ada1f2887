"""The Fleet page's Plotly figures, built from the scan store's and the watch's values."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.ledger.reviews import Verdict
from core.scan.values import CodeCount, TrendPoint
from core.watch.views import OUTCOME_ORDER, DayOutcomes

# The same colours as the severity badges (dashboard.drift_tables.SEVERITY_COLORS).
SEVERITY_PALETTE = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
SEVERITY_ORDER = {"severity": ["critical", "warning", "info"]}
# What a retrain's verdict means, as a colour: better green, no difference grey-blue,
# worse red and broken (the app's row is wrong after it) a darker red. Used by the chart
# and the verdict cells alike, in ``OUTCOME_ORDER``.
VERDICT_PALETTE = {
    Verdict.BETTER: "#2e7d32",
    Verdict.SAME: "#78909c",
    Verdict.WORSE: "#e53935",
    Verdict.BROKEN: "#8e0000",
}
DAY_MS = 86_400_000


def counts_bar(counts: Iterable[CodeCount]) -> go.Figure:
    """Users per code in the last finished scan, bars coloured by severity."""
    items = list(counts)
    frame = pd.DataFrame(
        {
            "code": [item.code for item in items],
            "severity": [item.severity for item in items],
            "users": [item.users for item in items],
        }
    )
    figure = px.bar(
        frame,
        x="code",
        y="users",
        color="severity",
        color_discrete_map=SEVERITY_PALETTE,
        category_orders=SEVERITY_ORDER,
    )
    figure.update_layout(
        xaxis_title=None, yaxis_title="users", legend_title=None, margin={"t": 10, "b": 10}
    )
    figure.update_yaxes(rangemode="tozero", tick0=0, dtick=_step(frame["users"]))
    return figure


def trend_lines(points: Iterable[TrendPoint]) -> go.Figure:
    """Users per code over the recent finished scans: one line per code, coloured by its
    severity (hover names the code and the scan)."""
    items = list(points)
    frame = pd.DataFrame(
        {
            "finished": pd.to_datetime([point.finished_at for point in items], utc=True),
            "scan": [point.scan_id for point in items],
            "code": [point.code for point in items],
            "severity": [point.severity for point in items],
            "users": [point.users for point in items],
        }
    ).sort_values(["code", "finished"])
    figure = px.line(
        frame,
        x="finished",
        y="users",
        color="severity",
        line_group="code",
        markers=True,
        hover_name="code",
        hover_data={"scan": True},
        color_discrete_map=SEVERITY_PALETTE,
        category_orders=SEVERITY_ORDER,
    )
    figure.update_layout(
        xaxis_title="scan finished (UTC)",
        yaxis_title="users",
        legend_title=None,
        margin={"t": 10, "b": 10},
    )
    # Days on the axis (hours only when zoomed in), whole users on the other.
    figure.update_xaxes(
        tickformatstops=[
            {"dtickrange": [None, 86_400_000], "value": "%b %d %H:%M"},
            {"dtickrange": [86_400_000, None], "value": "%b %d"},
        ]
    )
    figure.update_yaxes(rangemode="tozero", tick0=0, dtick=_step(frame["users"]))
    return figure


def outcomes_bars(days: Sequence[DayOutcomes]) -> go.Figure:
    """Retrains per UTC day, stacked by verdict (better at the bottom, broken on top, the
    legend in the same order); a day without any keeps its place on the axis."""
    frame = pd.DataFrame(
        [
            {
                "day": pd.Timestamp(item.day),
                "verdict": verdict.words,
                "retrains": item.count(verdict),
            }
            for item in days
            for verdict in OUTCOME_ORDER
        ],
        columns=["day", "verdict", "retrains"],
    )
    figure = px.bar(
        frame,
        x="day",
        y="retrains",
        color="verdict",
        barmode="stack",
        color_discrete_map={verdict.words: VERDICT_PALETTE[verdict] for verdict in OUTCOME_ORDER},
        category_orders={"verdict": [verdict.words for verdict in OUTCOME_ORDER]},
    )
    figure.update_layout(
        xaxis_title="day the training ended (UTC)",
        yaxis_title="retrains",
        legend_title=None,
        legend_traceorder="normal",
        margin={"t": 10, "b": 10},
    )
    # One tick a day for a week or two; Plotly spaces them out for longer windows.
    figure.update_xaxes(tickformat="%b %d", dtick=DAY_MS if len(days) <= 14 else None)
    totals = frame.groupby("day")["retrains"].sum() if len(frame) else frame["retrains"]
    figure.update_yaxes(rangemode="tozero", tick0=0, dtick=_step(totals))
    return figure


def _step(users: pd.Series) -> int:
    """A whole-number tick step giving at most about eight ticks."""
    top = int(users.max()) if len(users) else 0
    return max(1, -(-top // 8))
