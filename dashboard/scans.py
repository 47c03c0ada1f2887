"""What the Users and Fleet pages read from the fleet scans (schema ``ops``).

The scan tables only change when a scan stores a batch or ends, so every read of them is
cached under a key naming the last scan's id and status (and the ops database): a scan
that finishes, or a new one, is a new key and shows on the next rerun; within one key
the answers are the same, so the TTL only bounds memory. The last scan itself is read
fresh every run (one indexed row), which is how the key changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import streamlit as st

from core.scan import store
from core.scan.values import CodeCount, ScanSummary, TrendPoint, WorstUser
from dashboard.resources import read_only, runtime

SCAN_TTL_SECONDS = 300
TREND_SCANS = 20
WORST_USERS = 20


def last_scan() -> ScanSummary | None:
    """The newest scan (running, finished or failed), or None before the first."""
    with read_only(runtime().ops_engine) as conn:
        return store.last_scan(conn)


def scan_key(summary: ScanSummary | None) -> str:
    """The cache key of everything read from the scans while ``summary`` is the last."""
    ops = runtime().ops_engine.url.render_as_string(hide_password=True)
    if summary is None:
        return f"{ops}|none"
    return f"{ops}|{summary.id}|{summary.status}|{summary.users_scanned}"


@dataclass(frozen=True)
class RowFindings:
    """The last scan's verdict on some users: worst severity and codes per user.

    A user missing from ``worst`` was not in the scan; ``worst[user] is None`` is healthy.
    """

    worst: dict[str, str | None]
    codes: dict[str, tuple[str, ...]]


@st.cache_data(ttl=SCAN_TTL_SECONDS, max_entries=64, show_spinner=False)
def _row_findings(key: str, user_ids: tuple[str, ...]) -> RowFindings:
    with read_only(runtime().ops_engine) as conn:
        worst = store.worst_by_user(conn, list(user_ids))
        findings = store.latest_findings(conn, list(user_ids))
    return RowFindings(worst=dict(worst),
                       codes={user_id: tuple(finding.code for finding in found)
                              for user_id, found in findings.items()})


def findings_of_rows(summary: ScanSummary | None, user_ids: Iterable[str]) -> RowFindings:
    """Worst severity and finding codes of the rows on screen (only those)."""
    wanted = tuple(dict.fromkeys(user_ids))
    if summary is None or not wanted:
        return RowFindings({}, {})
    return _row_findings(scan_key(summary), wanted)


@st.cache_data(ttl=SCAN_TTL_SECONDS, max_entries=32, show_spinner=False)
def _user_ids_with(key: str, codes: tuple[str, ...], severities: tuple[str, ...]) -> list[str]:
    with read_only(runtime().ops_engine) as conn:
        return store.user_ids_with(conn, codes=codes, severities=severities)


def user_ids_with(summary: ScanSummary | None, codes: Sequence[str],
                  severities: Sequence[str]) -> list[str]:
    """The users the latest finished scan found with any of ``codes`` / ``severities``."""
    if summary is None:
        return []
    return _user_ids_with(scan_key(summary), tuple(sorted(codes)), tuple(sorted(severities)))


@st.cache_data(ttl=SCAN_TTL_SECONDS, max_entries=8, show_spinner=False)
def _fleet(key: str) -> tuple[list[CodeCount], list[TrendPoint], list[WorstUser]]:
    with read_only(runtime().ops_engine) as conn:
        return (store.counts_by_code(conn), store.trend(conn, limit_scans=TREND_SCANS),
                store.worst_users(conn, limit=WORST_USERS))


def fleet(summary: ScanSummary | None) -> tuple[list[CodeCount], list[TrendPoint],
                                                 list[WorstUser]]:
    """The Fleet page's figures: counts by code, the trend, the worst users."""
    if summary is None:
        return [], [], []
    return _fleet(scan_key(summary))


def forget() -> None:
    """Drop every cached scan read (after a scan or a repair ran in this process)."""
    _row_findings.clear()
    _user_ids_with.clear()
    _fleet.clear()
