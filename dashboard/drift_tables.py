"""Findings, history, fleet and audit values as the tables pages show them.

Presentation only (like ``dashboard.tables``): the values come from core; this decides
their columns, their order and how an unknown or empty value reads.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Literal

import pandas as pd
import streamlit as st

from core.drift import CODES, Finding, Severity, code_spec
from core.gateway.values import ModelVersion
from core.redaction import with_urls_redacted
from core.repairs import RepairPlan
from core.scan.values import CodeCount, WorstUser
from core.timeline import TimelineEntry, VersionLine
from core.versions import short_version, version_name
from dashboard.messages import said
from dashboard.tables import NONE, user_link

BadgeColor = Literal["red", "orange", "blue", "gray"]
SEVERITY_COLORS: Mapping[str, BadgeColor] = {
    Severity.CRITICAL.value: "red",
    Severity.WARNING.value: "orange",
    Severity.INFO.value: "blue",
}
# The same hues as the badges, as cell text colours in tables (readable on white and on
# Streamlit's dark theme).
_SEVERITY_TEXT = {"critical": "#e53935", "warning": "#ef6c00", "info": "#1e88e5"}
NO_FINDING = "no finding"
NOT_SCANNED = "not scanned yet"
MINUTES = "YYYY-MM-DD HH:mm"
CODE_NAMES: tuple[str, ...] = tuple(spec.code for spec in CODES)
SEVERITY_NAMES: tuple[str, ...] = tuple(level.value for level in Severity)


def compact(value: Any, *, none: str = NONE) -> str:
    """One cell's text: JSON for lists and objects, ``none`` for nothing; URLs in it
    without their secrets (``core.redaction.redacted_url``)."""
    if value is None:
        return none
    if isinstance(value, Mapping | list | tuple):
        return with_urls_redacted(
            json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        )
    return with_urls_redacted(str(value))


def code_plain(code: str) -> str:
    try:
        return code_spec(code).plain
    except KeyError:
        return ""


def code_help(code: str) -> str:
    try:
        return code_spec(code).help
    except KeyError:
        return ""


# -- Users table ---------------------------------------------------------------------------


def coloured(frame: pd.DataFrame, *columns: str) -> Any:
    """``frame`` with severity values in ``columns`` coloured as the badges are (a Styler;
    st.dataframe keeps its column_config and selection)."""

    def colour(value: Any) -> str:
        hue = _SEVERITY_TEXT.get(str(value))
        return f"color: {hue}; font-weight: 600" if hue else ""

    shown = [column for column in columns if column in frame.columns]
    return frame.style.map(colour, subset=shown) if shown else frame


def worst_cell(user_id: str, worst: Mapping[str, str | None], *, checked: Collection[str]) -> str:
    """The "worst" cell: a severity, "no finding", or "not scanned yet"."""
    if user_id not in checked:
        return NOT_SCANNED
    return worst.get(user_id) or NO_FINDING


def with_findings(
    frame: pd.DataFrame,
    worst: Mapping[str, str | None],
    codes: Mapping[str, Sequence[str]],
    *,
    checked: Collection[str],
) -> pd.DataFrame:
    """The Users table with "worst" and "findings" after the user column."""
    user_ids = list(frame["user"])
    frame = frame.copy()
    frame.insert(1, "worst", [worst_cell(user_id, worst, checked=checked) for user_id in user_ids])
    frame.insert(2, "findings", [list(codes.get(user_id, ())) for user_id in user_ids])
    return frame


# A finding code's pill in a table: its capitals at about this many pixels each, plus its
# padding and the gap to the next one (measured in Chromium with Streamlit's font).
_PILL_PX_PER_CHARACTER = 7.8
_PILL_PX_AROUND = 22
_CELL_PX_AROUND = 16
_FINDINGS_MIN_PX = 110


def findings_width(codes: Iterable[Sequence[str]]) -> int:
    """The width (px) of the "findings" column that shows every code of every row in full
    (sized by itself, the table cut a code short: "DATASET_…")."""
    widest = max(
        (
            sum(len(code) * _PILL_PX_PER_CHARACTER + _PILL_PX_AROUND for code in row_codes)
            for row_codes in codes
        ),
        default=0.0,
    )
    return max(_FINDINGS_MIN_PX, round(widest + _CELL_PX_AROUND))


def findings_columns(codes: Iterable[Sequence[str]] = ()) -> dict[str, Any]:
    """The "worst" and "findings" columns; ``codes``: each row's, to size the column."""
    return {
        "worst": st.column_config.TextColumn(
            "worst finding",
            help="The most serious finding of the user's latest finished scan. "
            f"'{NO_FINDING}': the scan found them healthy. '{NOT_SCANNED}': "
            "no scan has checked them yet (a scan running now, users added "
            "since, or no scan at all).",
        ),
        "findings": st.column_config.ListColumn(
            "findings",
            help="Finding codes of the latest finished scan, most serious first "
            "(the Finding filter above and the User page explain each)",
            width=findings_width(codes),
        ),
    }


def refused_choices(asked: Sequence[str], known: Sequence[str], *, noun: str) -> str | None:
    """Why some values an address asked a filter for were not used (the sentence for the
    page, the values inert), or None when every one was known. ``noun``: what the filter
    picks ("finding", "severity")."""
    wanted = list(dict.fromkeys(value for value in asked if value))
    unknown = [value for value in wanted if value not in known]
    if not unknown:
        return None
    used = [value for value in wanted if value in known]
    names = " or ".join(f"'{said(value)}'" for value in unknown[:3])
    if len(unknown) > 3:
        names += f" (and {len(unknown) - 3} more)"
    instead = (
        f"filtering by {', '.join(said(value) for value in used)} only"
        if used
        else f"showing every {noun}"
    )
    if not known:
        listed = "None is recorded yet."
    elif len(known) <= 5:
        listed = f"There are {', '.join(said(value) for value in known)}."
    else:
        listed = f"The {noun.capitalize()} box lists them all."
    return f"No {noun} called {names}: {instead}. {listed}"


# -- User page -----------------------------------------------------------------------------


def evidence_frame(finding: Finding) -> pd.DataFrame:
    """A finding's evidence as (name, value) lines, nested values as compact JSON."""
    return pd.DataFrame(
        {
            "evidence": list(finding.evidence),
            "value": [compact(value) for value in finding.evidence.values()],
        }
    )


def timeline_frame(entries: Sequence[TimelineEntry]) -> pd.DataFrame:
    """The timeline, oldest first: one training (or orphan version) a line."""
    return pd.DataFrame(
        {
            "created": pd.to_datetime([entry.created_at for entry in entries], utc=True),
            "finished": pd.to_datetime([entry.completed_at for entry in entries], utc=True),
            "training": [entry.training_id or NONE for entry in entries],
            "status": [entry.status or "version only" for entry in entries],
            "version": [short_version(entry.version_id) or NONE for entry in entries],
            "trainer": [
                (entry.trainer or NONE) + (" (changed)" if entry.trainer_changed else "")
                for entry in entries
            ],
            "trigger word": [entry.trigger_word or NONE for entry in entries],
            "photos": pd.array([entry.photos for entry in entries], dtype="Int64"),
            "median px": pd.array([entry.median_px for entry in entries], dtype="Int64"),
            "JPEG quality": pd.array([entry.jpeg_quality for entry in entries], dtype="Int64"),
            "failing photos": pd.array([entry.failing_photos for entry in entries], dtype="Int64"),
            "parameters vs previous": [_changes_cell(entry) for entry in entries],
            "note": [
                with_urls_redacted(entry.error or entry.dataset_note or "") for entry in entries
            ],
        }
    )


def _changes_cell(entry: TimelineEntry) -> str:
    if not entry.is_training:
        return ""
    if entry.compared_with is None:
        return "first succeeded training" if entry.status == "succeeded" else NONE
    return with_urls_redacted(entry.changes_text) or f"same as {entry.compared_with}"


def timeline_columns() -> dict[str, Any]:
    return {
        "created": st.column_config.DatetimeColumn("created", format=MINUTES),
        "finished": st.column_config.DatetimeColumn("finished", format=MINUTES),
        "photos": st.column_config.NumberColumn("photos", help="Photos in the training ZIP"),
        "median px": st.column_config.NumberColumn(
            "median px", help="Median short side of the photos; FLUX trains at 1024"
        ),
        "JPEG quality": st.column_config.NumberColumn(
            "JPEG quality",
            help="Estimated from the quantisation tables (the app's squeeze goes down to 55)",
        ),
        "failing photos": st.column_config.NumberColumn(
            "failing photos", help="Blurry, no face, several faces or another person"
        ),
        "parameters vs previous": st.column_config.TextColumn(
            "parameters vs previous",
            help="Training inputs that differ from the previous succeeded training's",
        ),
    }


def version_lines_frame(lines: Sequence[VersionLine]) -> pd.DataFrame:
    """The row's model's versions, newest first, with the training behind each."""
    versions = [ModelVersion(line.version_id, line.created_at) for line in lines]
    return pd.DataFrame(
        {
            "version": [version_name(line.version_id, versions) for line in lines],
            "created": pd.to_datetime([line.created_at for line in lines], utc=True),
            "training": [line.training_id or NONE for line in lines],
            "trainer": [line.trainer or NONE for line in lines],
            "trigger word used": [line.trigger_word or NONE for line in lines],
            "photos": pd.array([line.photos for line in lines], dtype="Int64"),
            "median px": pd.array([line.median_px for line in lines], dtype="Int64"),
            "stored": [line.is_stored for line in lines],
            "latest": [line.is_latest for line in lines],
            "version id": [line.version_id for line in lines],
        }
    )


def version_lines_columns() -> dict[str, Any]:
    return {
        "created": st.column_config.DatetimeColumn("created", format=MINUTES),
        "stored": st.column_config.CheckboxColumn(
            "stored?", help="The version the app's row names (after normalising)"
        ),
        "latest": st.column_config.CheckboxColumn(
            "latest?", help="The model's newest version: what Replicate's site runs"
        ),
        "training": st.column_config.TextColumn(
            "training", help="The training in the ledger that made this version"
        ),
    }


def plan_frame(plan: RepairPlan) -> pd.DataFrame:
    """A repair's preview: each column it changes, before and after."""
    return pd.DataFrame(
        {
            "column": list(plan.after),
            "before": [_stored(plan.before[column]) for column in plan.after],
            "after": [_stored(plan.after[column]) for column in plan.after],
        }
    )


def _stored(value: Any) -> str:
    """A column value as stored: NULL shown as such, datetimes in ISO form."""
    return compact(value.isoformat(sep=" ") if hasattr(value, "isoformat") else value, none="NULL")


# -- Fleet page ----------------------------------------------------------------------------


def counts_frame(counts: Iterable[CodeCount]) -> pd.DataFrame:
    items = list(counts)
    return pd.DataFrame(
        {
            "code": [item.code for item in items],
            "severity": [item.severity for item in items],
            "users": [item.users for item in items],
            "what it means": [code_plain(item.code) for item in items],
            "exactly": [code_help(item.code) for item in items],
        }
    )


def counts_columns() -> dict[str, Any]:
    return {
        "code": st.column_config.TextColumn("finding", width=210),
        "severity": st.column_config.TextColumn("severity", width=80),
        "users": st.column_config.NumberColumn("users", width=60),
        "what it means": st.column_config.TextColumn("what it means", width=430),
        "exactly": st.column_config.TextColumn(
            "exactly", help="The rule in the app's column names", width="large"
        ),
    }


def worst_users_frame(worst: Iterable[WorstUser], emails: Mapping[str, str | None]) -> pd.DataFrame:
    items = list(worst)
    return pd.DataFrame(
        {
            "email": [emails.get(item.user_id) or NONE for item in items],
            "user": [item.user_id for item in items],
            "worst": [item.worst_severity for item in items],
            "findings": [list(item.codes) for item in items],
            "count": [item.finding_count for item in items],
            "open": [user_link(item.user_id) for item in items],
        }
    )


def worst_users_columns() -> dict[str, Any]:
    return {
        "email": st.column_config.TextColumn("email", pinned=True),
        "user": st.column_config.TextColumn("user id"),
        "findings": st.column_config.ListColumn("findings", width="large"),
        "open": st.column_config.LinkColumn(
            "open", display_text="open ↗", help="Open the User page in a new tab"
        ),
    }
