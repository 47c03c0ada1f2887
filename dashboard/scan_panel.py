"""The last fleet scan as the Fleet and Users pages show it, live while it runs.

The scan runs in the workers; the page only reads its row. While it is queued or running
a fragment reads it again every ``POLL_SECONDS`` (progress bars per phase, a warning when
its heartbeat stopped or no worker is alive) and reruns the whole page when findings
were stored or it ended, so the figures and tables below catch up. Navigation, a reload
or a closed tab lose nothing: the next visit reads the same row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import streamlit as st

from core.scan.progress import scan_progress
from core.scan.values import ScanSummary
from core.text import inert
from dashboard import messages, scans
from dashboard.resources import runtime

POLL_SECONDS = 2.0


def _stale_after() -> timedelta:
    return timedelta(seconds=runtime().settings.scan_heartbeat_timeout_seconds)


def _changed(seen: ScanSummary, current: ScanSummary | None) -> bool:
    """Whether the page behind the panel must be drawn again."""
    return (
        current is None
        or current.id != seen.id
        or not current.is_active
        or current.users_scanned != seen.users_scanned
    )


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _show(summary: ScanSummary) -> None:
    progress = scan_progress(summary, now=datetime.now(UTC), stale_after=_stale_after())
    number, status, when, users = st.columns(4)
    number.metric("last fleet scan", f"#{summary.id}")
    status.metric("status", inert(summary.status))
    if summary.finished_at is not None:
        when.metric(
            "ended",
            f"{summary.finished_at.astimezone(UTC):%b %d, %H:%M}",
            help=f"UTC; {_when(summary.finished_at)}",
        )
    else:
        when.metric(
            "requested",
            f"{summary.started_at.astimezone(UTC):%b %d, %H:%M}",
            help=f"UTC; {_when(summary.started_at)}",
        )
    users.metric(
        "users checked",
        f"{summary.users_scanned} of {summary.users_total}" if progress.users else "—",
    )
    st.caption(
        f"Requested by {inert(summary.requested_by or 'the command line')} at "
        f"{_when(summary.started_at)}."
    )
    if summary.is_active:
        st.markdown(f"**{inert(progress.headline.capitalize())}**")
        if progress.photos is not None:
            done, total = progress.photos
            st.progress(min(1.0, done / total), text=f"Photos: {done} of {total} trainings read")
        if progress.users is not None and progress.users[1]:
            done, total = progress.users
            st.progress(min(1.0, done / total), text=f"Users: {done} of {total} checked")
        if progress.stalled is not None:
            messages.warning(progress.stalled, icon=":material/heart_broken:")
        problem = scans.queue().problem
        if problem is not None:
            messages.warning(problem, icon=":material/engineering:")
    elif summary.status == "failed":
        st.error(
            f"Scan #{summary.id} failed: "
            f"{messages.said(summary.error) if summary.error else 'no reason recorded'}. The "
            "users it checked keep their findings; the figures show each user's latest "
            "check. Start a new scan."
        )
    elif summary.status == "cancelled":
        st.info(
            f"Scan #{summary.id} was cancelled by {inert(summary.cancelled_by or 'an admin')}; "
            f"the {summary.users_scanned} users it checked keep their findings."
        )


def fleet_scan_panel(summary: ScanSummary | None) -> None:
    """The Fleet page's scan panel (see the module docstring)."""
    if summary is None:
        st.info(
            "No fleet scan has run yet. An admin starts one below; "
            "`python -m core.scan --background` queues one from a shell."
        )
        return
    active = summary.is_active

    @st.fragment(run_every=POLL_SECONDS if active else None)
    def panel() -> None:
        current = scans.last_scan() if active else summary
        if active and _changed(summary, current):
            st.rerun(scope="app")
        if current is not None:
            _show(current)

    panel()


def follow_fleet_scan(
    summary: ScanSummary | None, caption: Callable[[ScanSummary | None], str]
) -> None:
    """Elsewhere (the Users page): the scan's ``caption``, redrawn every poll while a fleet
    scan is active, so its progress (photos read, users checked) moves as it happens; and
    the whole page rerun whenever the scan stores findings or ends, so its tables fill in
    by themselves."""
    if summary is None or not summary.is_active:
        st.caption(caption(summary))
        return

    @st.fragment(run_every=POLL_SECONDS)
    def watch() -> None:
        current = scans.last_scan()
        if _changed(summary, current):
            st.rerun(scope="app")
        st.caption(caption(current))

    watch()
