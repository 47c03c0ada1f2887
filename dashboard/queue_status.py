"""The job queue in the sidebar, for admins: workers alive, jobs waiting, running, failed
in the last hour; refreshed every few seconds without rerunning the page."""

from __future__ import annotations

import streamlit as st

from core.errors import DashboardError
from dashboard import messages, scans

REFRESH_SECONDS = 5.0


@st.fragment(run_every=REFRESH_SECONDS)
def _queue() -> None:
    try:
        state = scans.queue()
    except DashboardError as exc:
        st.caption(f"Job queue: unreadable ({messages.said(exc)})")
        return
    st.caption(
        f"**Workers** {state.workers_alive} alive · **jobs** {state.waiting} waiting, "
        f"{state.running} running, {state.failed_last_hour} failed in the last hour",
        help="The background workers (python -m core.worker) that run scans and read "
        "training photos. Failed jobs are in the worker logs.",
    )
    if state.problem is not None:
        messages.warning(state.problem, icon=":material/engineering:")


def sidebar() -> None:
    """Draw the queue's state at the bottom of the sidebar."""
    with st.sidebar:
        _queue()
