"""The Audit page's tables: the records with each action in words, and one record's
change as the fields it changed (field: before → after) and its details, one a line.

Presentation only: the words come from ``core.audit_words``; values are shown as stored
(NULL as such), URLs without their secrets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.audit import AuditRecord
from core.audit_words import (
    changed_fields,
    detail_label,
    details_summary,
    record_words,
)
from dashboard.drift_tables import compact
from dashboard.tables import NONE, user_link


def audit_frame(records: Sequence[AuditRecord], emails: Mapping[str, str | None]) -> pd.DataFrame:
    """The records, newest first: who, what (in words, the key beside), for whom (their
    email from ``emails``, the id beside), why."""
    # What a reader scans for first, left to right; the keys to copy after (a wide table
    # shows only its first columns on a laptop until scrolled).
    return pd.DataFrame(
        {
            "at": pd.to_datetime([record.at for record in records], utc=True),
            "actor": [record.actor_email for record in records],
            "what": [record_words(record.action, record.details) for record in records],
            "user email": [
                (emails.get(record.target_user_id) or NONE) if record.target_user_id else NONE
                for record in records
            ],
            "reason": [record.reason or "" for record in records],
            "details": [_summary(record) for record in records],
            "user": [record.target_user_id or NONE for record in records],
            "action": [record.action for record in records],
            "id": [record.id for record in records],
            "open": [
                user_link(record.target_user_id) if record.target_user_id else None
                for record in records
            ],
        }
    )


def _summary(record: AuditRecord) -> str:
    return " · ".join(
        f"{label}: {compact(value)}" for label, value in details_summary(record.details)
    )


def audit_columns() -> dict[str, Any]:
    return {
        "at": st.column_config.DatetimeColumn("at", format="YYYY-MM-DD HH:mm:ss"),
        "what": st.column_config.TextColumn("what", width=320),
        "user": st.column_config.TextColumn("user id"),
        "action": st.column_config.TextColumn(
            "action key", help="The action as stored (what the Action filter matches)"
        ),
        "open": st.column_config.LinkColumn("user page", display_text="open ↗"),
    }


def _stored(value: Any) -> str:
    return compact(value, none="NULL")


def change_frame(record: AuditRecord) -> pd.DataFrame:
    """The fields the record changed, each with its value before and after."""
    changes = changed_fields(record.before, record.after)
    return pd.DataFrame(
        {
            "column": [change.field for change in changes],
            "before": [_stored(change.before) for change in changes],
            "after": [_stored(change.after) for change in changes],
        }
    )


def details_frame(details: Mapping[str, Any]) -> pd.DataFrame:
    """The record's details, one a line, the names in words, nested values compact."""
    return pd.DataFrame(
        {
            "detail": [detail_label(str(key)) for key in details],
            "value": [compact(value) for value in details.values()],
        }
    )
