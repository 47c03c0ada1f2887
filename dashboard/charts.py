"""The Fleet page's Plotly figures, built from the scan store's values."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.scan.values import CodeCount, TrendPoint

# The same colours as the severity badges (dashboard.drift_tables.SEVERITY_COLORS).
SEVERITY_PALETTE = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
SEVERITY_ORDER = {"severity": ["critical", "warning", "info"]}


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


def _step(users: pd.Series) -> int:
    """A whole-number tick step giving at most about eight ticks."""
    top = int(users.max()) if len(users) else 0
    return max(1, -(-top // 8))
