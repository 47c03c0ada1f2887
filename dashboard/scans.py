"""What the Users, Fleet and User pages read from the scans (schema ``ops``).

The findings only change when a scan stores a batch or ends, so every read of them is
cached under a key naming the newest scan's id, status and progress (and the ops
database): a batch stored, a scan that ends, or a new one (a fleet scan or a rescan of
some users) is a new key and shows on the next rerun; within one key the answers are
the same, so the TTL only bounds memory. The newest scans are read fresh every run (two
indexed rows), which is how the key changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import streamlit as st

from core.jobs.status import QueueState, queue_state
from core.scan import store
from core.scan.values import CodeCount, ScanSummary, TrendPoint, UserCheck, WorstUser
from dashboard.resources import read_only, runtime

SCAN_TTL_SECONDS = 300
TREND_SCANS = 20
WORST_USERS = 20


def last_scan() -> ScanSummary | None:
    """The newest fleet scan (queued, running or ended), or None before the first: what
    the Fleet headline and the Users caption speak of. Rescans of some users are not."""
    with read_only(runtime().ops_engine) as conn:
        return store.last_fleet_scan(conn)


def scan_key(summary: ScanSummary | None) -> str:
    """The cache key of everything read from the scans while ``summary`` is the newest
    fleet scan and the newest scan of any scope is what it is now."""
    ops = runtime().ops_engine.url.render_as_string(hide_password=True)
    with read_only(runtime().ops_engine) as conn:
        newest = store.last_scan(conn)
    parts = [ops]
    for scan in (summary, newest):
        parts.append("none" if scan is None else f"{scan.id}:{scan.status}:{scan.users_scanned}")
    return "|".join(parts)


def user_check(user_id: str) -> tuple[UserCheck | None, list[ScanSummary]]:
    """The newest ended scan that checked this user, and the scans that will (queued or
    running); read fresh (two indexed queries)."""
    with read_only(runtime().ops_engine) as conn:
        return store.last_check(conn, user_id), store.pending_checks(conn, user_id)


def queue() -> QueueState:
    """The job queue at a glance (workers alive, jobs waiting, running, failed)."""
    with read_only(runtime().ops_engine) as conn:
        return queue_state(conn)


@dataclass(frozen=True)
class RowFindings:
    """The latest scans' verdict on some users: worst severity and codes per user.

    A user missing from ``checked`` was not scanned yet; ``worst[user] is None`` is healthy.
    """

    worst: dict[str, str | None]
    codes: dict[str, tuple[str, ...]]
    checked: frozenset[str] = frozenset()


@st.cache_data(ttl=SCAN_TTL_SECONDS, max_entries=64, show_spinner=False)
def _row_findings(key: str, user_ids: tuple[str, ...]) -> RowFindings:
    with read_only(runtime().ops_engine) as conn:
        worst = store.worst_by_user(conn, list(user_ids))
        findings = store.latest_findings(conn, list(user_ids))
        checked = store.checked_users(conn, list(user_ids))
    return RowFindings(
        worst=dict(worst),
        codes={
            user_id: tuple(finding.code for finding in found) for user_id, found in findings.items()
        },
        checked=frozenset(checked),
    )


def findings_of_rows(summary: ScanSummary | None, user_ids: Iterable[str]) -> RowFindings:
    """Worst severity and finding codes of the rows on screen (only those)."""
    wanted = tuple(dict.fromkeys(user_ids))
    if not wanted:
        return RowFindings({}, {})
    return _row_findings(scan_key(summary), wanted)


@st.cache_data(ttl=SCAN_TTL_SECONDS, max_entries=32, show_spinner=False)
def _user_ids_with(key: str, codes: tuple[str, ...], severities: tuple[str, ...]) -> list[str]:
    with read_only(runtime().ops_engine) as conn:
        return store.user_ids_with(conn, codes=codes, severities=severities)


def user_ids_with(
    summary: ScanSummary | None, codes: Sequence[str], severities: Sequence[str]
) -> list[str]:
    """The users the latest finished scan found with any of ``codes`` / ``severities``."""
    return _user_ids_with(scan_key(summary), tuple(sorted(codes)), tuple(sorted(severities)))


@st.cache_data(ttl=SCAN_TTL_SECONDS, max_entries=8, show_spinner=False)
def _fleet(key: str) -> tuple[list[CodeCount], list[TrendPoint], list[WorstUser]]:
    with read_only(runtime().ops_engine) as conn:
        return (
            store.counts_by_code(conn),
            store.trend(conn, limit_scans=TREND_SCANS),
            store.worst_users(conn, limit=WORST_USERS),
        )


def fleet(summary: ScanSummary | None) -> tuple[list[CodeCount], list[TrendPoint], list[WorstUser]]:
    """The Fleet page's figures: counts by code, the trend, the worst users."""
    return _fleet(scan_key(summary))


def forget() -> None:
    """Drop every cached scan read (after a scan or a repair ran in this process)."""
    _row_findings.clear()
    _user_ids_with.clear()
    _fleet.clear()
