"""Turning core values into the tables pages show (pandas frames and column settings).

Presentation only: what a "?" or "—" means is decided here, once, for every page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode

import pandas as pd
import streamlit as st

from core.config import (
    DEMO_WATCH_INTERVAL_SECONDS,
    LIVE_WATCH_INTERVAL_SECONDS,
    Mode,
    Settings,
    settings_table,
    written,
)
from core.gateway.values import ModelVersion
from core.links import USER_PAGE_PATH
from core.redaction import with_urls_redacted
from core.staff import StaffMember
from core.users import LatestState, LatestVersion, UserRow
from core.versions import normalise_version, short_version
from dashboard import navigation

UNKNOWN = "?"
NONE = "—"
LATEST_HELP = (
    "The model's newest version on Replicate (cached for a minute). "
    f"'{UNKNOWN}' = Replicate could not be reached: try again shortly. "
    f"'{NONE}' = no model id stored. 'missing' = the model does not exist on Replicate. "
    "'invalid id' = the stored model id is not owner/name."
)


def latest_cell(model_id: str | None, latest: Mapping[str, LatestVersion]) -> str:
    """The "latest version (short)" cell for one row."""
    if not model_id:
        return NONE
    found = latest.get(model_id)
    if found is None or found.state is LatestState.UNREACHABLE:
        return UNKNOWN
    if found.state is LatestState.MODEL_MISSING:
        return "missing"
    if found.state is LatestState.INVALID_ID:
        return "invalid id"
    return short_version(found.version_id) if found.version_id else "no versions"


# Tables whose rows open something: a click on any cell does it (or the row's checkbox).
OPEN_ON_CLICK: list[Literal["single-row", "single-cell"]] = ["single-row", "single-cell"]


def picked_row(selection: Any, count: int) -> int | None:
    """The row a click picked in a table shown with ``OPEN_ON_CLICK``: a selected row, or
    the row of a selected cell; None when nothing (or something stale) is selected."""
    state = getattr(selection, "selection", None)
    rows = list(getattr(state, "rows", None) or [])
    rows += [cell[0] for cell in getattr(state, "cells", None) or []]
    picked = [row for row in rows if isinstance(row, int) and 0 <= row < count]
    return picked[0] if picked else None


def user_link(user_id: str) -> str:
    """A link to the User page that works when opened in a new tab: it keeps who is acting
    (DEMO's ``?as=``; in LIVE the login is the browser's, so there is none to keep)."""
    query = {navigation.OPENED_PARAM: user_id, **navigation.kept_params()}
    return f"{USER_PAGE_PATH}?" + urlencode(query, quote_via=quote, safe="")


def comparison_link(comparison_id: int) -> str:
    """A link to a saved comparison on the Compare page (``?comparison=ID``), keeping who
    is acting as ``user_link`` does."""
    query = {"comparison": str(comparison_id), **navigation.kept_params()}
    return "compare?" + urlencode(query, quote_via=quote, safe="")


def stored_cell(row: UserRow, latest: Mapping[str, LatestVersion]) -> str:
    """The "stored version" cell: its short hash as stored, and whether it is the model's
    latest version when Replicate said which that is."""
    shown = row.stored_version_short
    if not shown:
        return NONE
    found = latest.get(row.model_id) if row.model_id else None
    if found is None or found.state is not LatestState.FOUND or found.version_id is None:
        return shown
    same = normalise_version(row.stored_version) == found.version_id
    return f"{shown} · {'latest' if same else 'not latest'}"


def users_frame(rows: Sequence[UserRow], latest: Mapping[str, LatestVersion]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": [row.user_id for row in rows],
            "open": [user_link(row.user_id) for row in rows],
            "email": [row.email for row in rows],
            "plan": [row.plan for row in rows],
            "training status": [row.training_status for row in rows],
            "stored version": [stored_cell(row, latest) for row in rows],
            "latest version": [latest_cell(row.model_id, latest) for row in rows],
            "trigger word": [row.trigger_word for row in rows],
            "model id": [row.model_id for row in rows],
            "updated": pd.to_datetime([row.updated_at for row in rows]),
        },
        columns=[
            "user",
            "open",
            "email",
            "plan",
            "training status",
            "stored version",
            "latest version",
            "trigger word",
            "model id",
            "updated",
        ],
    )


# The Users table as shown: who (the email), how bad the last scan found them, what the
# app generates with, then every finding code (as wide as the page's longest list of them,
# so last of these); then what is looked up less often (the user id stays, to search and
# copy). At 1500 px wide, everything up to the first finding code fits beside the sidebar.
USERS_ORDER = (
    "email",
    "worst",
    "training status",
    "stored version",
    "latest version",
    "trigger word",
    "findings",
    "plan",
    "updated",
    "user",
    "model id",
    "open",
)


# "…:0123456789ab · not latest", the widest stored cell, in full.
STORED_WIDTH = 185


def users_columns() -> dict[str, Any]:
    return {
        "email": st.column_config.TextColumn("email", help="users.email"),
        "training status": st.column_config.TextColumn(
            "training status", help="user_models.training_status, as stored"
        ),
        "user": st.column_config.TextColumn(
            "user id", help="The app's users.id (the search finds it typed in full)"
        ),
        "stored version": st.column_config.TextColumn(
            "stored version",
            width=STORED_WIDTH,
            help="First 12 characters of user_models.replicate_version_id, exactly as "
            "stored, and whether it is the model's latest version ('latest') or not "
            "('not latest'). The User page names each version and shows the full ids.",
        ),
        "latest version": st.column_config.TextColumn(
            "latest version", help=f"First 12 characters. {LATEST_HELP}"
        ),
        "updated": st.column_config.DatetimeColumn(
            "updated", format="YYYY-MM-DD HH:mm", help="Last change to the user or their model row"
        ),
        "open": st.column_config.LinkColumn(
            "open", display_text="open ↗", help="Open the User page in a new tab"
        ),
    }


def _shown(value: Any) -> str:
    """Any stored value as text, with NULL visible as such and URLs without their secrets
    (``core.redaction.redacted_url``)."""
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    text = repr(value) if isinstance(value, str) and value != value.strip() else str(value)
    return with_urls_redacted(text)


def columns_frame(row: Mapping[str, Any]) -> pd.DataFrame:
    """Every column of a row, in table order, as (column, value) text."""
    return pd.DataFrame(
        {"column": list(row.keys()), "value": [_shown(value) for value in row.values()]}
    )


def mapping_frame(values: Mapping[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": [str(key) for key in values],
            "value": [_shown(value) for value in values.values()],
        }
    )


def versions_frame(
    versions: Iterable[ModelVersion], *, stored: str | None, latest: str | None
) -> pd.DataFrame:
    """All versions, newest first, with the stored and the latest one marked."""
    items = list(versions)
    marks = []
    for version in items:
        mark = []
        if version.id == latest:
            mark.append("latest")
        if stored is not None and version.id == stored:
            mark.append("stored")
        marks.append(", ".join(mark))
    return pd.DataFrame(
        {
            "#": list(range(len(items), 0, -1)),
            "version id": [version.id for version in items],
            "created": pd.to_datetime([version.created_at for version in items], utc=True),
            "": marks,
        }
    )


def watch_interval_cell(settings: Settings) -> str:
    """The watch's interval as it runs: unset is the mode's default, 0 is off (the value
    alone would read "—" or "0")."""
    effective = settings.watch_seconds
    if effective is None:
        return "0 (off)"
    if settings.watch_interval_seconds is None:
        return f"{written(effective)} s ({settings.mode.value.upper()}'s default)"
    return f"{written(effective)} s"


def _default_cell(name: str, default: str) -> str:
    if name == "WATCH_INTERVAL_SECONDS":  # unset means the mode's own
        return (
            f"{written(LIVE_WATCH_INTERVAL_SECONDS)} s in LIVE, "
            f"{written(DEMO_WATCH_INTERVAL_SECONDS)} s in DEMO"
        )
    return default


def settings_frame(settings: Settings) -> pd.DataFrame:
    """Every setting with its current value; secrets only as set/unset."""
    names = list(Settings.model_fields)  # settings_table() follows the same order
    values: list[str] = []
    for field_name, row in zip(names, settings_table(), strict=True):
        value = getattr(settings, field_name)
        if row.secret:
            values.append("set" if value is not None else "unset")
        elif field_name == "scan_schedule" and settings.scan_cron is None:
            values.append("off" + (" (always off in DEMO)" if settings.mode is Mode.DEMO else ""))
        elif field_name == "watch_interval_seconds":
            values.append(watch_interval_cell(settings))
        else:
            values.append(NONE if value is None else written(value))
    rows = settings_table()
    return pd.DataFrame(
        {
            "setting": [row.name for row in rows],
            "value": values,
            "default": [_default_cell(row.name, row.default) for row in rows],
            "help": [row.help for row in rows],
        }
    )


def staff_frame(sources: Iterable[tuple[str, Iterable[StaffMember]]]) -> pd.DataFrame:
    """Staff from several sources, one line per (source, member)."""
    lines = [(member, source) for source, members in sources for member in members]
    return pd.DataFrame(
        {
            "email": [member.email for member, _ in lines],
            "role": [member.role.value for member, _ in lines],
            "source": [source for _, source in lines],
            "added": [_shown(member.added_at) if member.added_at else "" for member, _ in lines],
        }
    )
