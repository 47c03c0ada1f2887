"""Fleet drift: what the latest scans found across all users (counts by code, the trend
over scans, the worst users), when the last scan ran, and for admins a scan now."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import streamlit as st

from core.errors import DashboardError
from core.roles import Actor, Role
from core.scan.values import ScanSummary
from core.scan_access import scan_blocked
from dashboard import actions, charts, drift_tables, identity, navigation, scans

SUBMITTING = "scan_submitting"
REQUEST = "scan_request"
HANDLED = "scan_handled"
DONE = "scan_done"
POLL_SECONDS = 3


def _request_scan() -> None:
    """The Scan button's on_click: one request id however often it is clicked."""
    if not st.session_state.get(SUBMITTING):
        st.session_state[SUBMITTING] = True
        st.session_state[REQUEST] = uuid.uuid4().hex


def _show_scan(summary: ScanSummary | None) -> None:
    if summary is None:
        st.info("No scan has run yet. An admin starts one below; `python -m core.scan` "
                "runs one from a shell.")
        return
    number, status, when, users = st.columns(4)
    number.metric("last scan", f"#{summary.id}")
    status.metric("status", summary.status)
    finished = summary.finished_at or summary.started_at
    when.metric("finished" if summary.finished_at else "started",
                f"{finished:%Y-%m-%d %H:%M}", help="UTC")
    users.metric("users scanned", f"{summary.users_scanned} of {summary.users_total}")
    who = summary.requested_by or "the command line"
    st.caption(f"Started {summary.started_at:%Y-%m-%d %H:%M} UTC by {who}.")
    if summary.status == "running":
        share = summary.users_scanned / summary.users_total if summary.users_total else 0.0
        st.progress(min(1.0, share), text="Scanning…")
    elif summary.status == "failed":
        st.error(f"Scan #{summary.id} failed: {summary.error or 'no reason recorded'}. The "
                 "figures below are from the latest finished scan; start a new scan.")


@st.fragment(run_every=POLL_SECONDS)
def _poll_running(scan_id: int) -> None:
    """While a scan started elsewhere runs: rerun the page when it ends."""
    current = scans.last_scan()
    if current is None or current.id != scan_id or current.status != "running":
        st.rerun()


def _scan_button(actor: Actor, summary: ScanSummary | None) -> None:
    if actor.role is not Role.ADMIN:
        st.caption("Only admins start scans: a scan reads every user's model, versions and "
                   "trainings from Replicate.")
        return
    blocked = scan_blocked(summary, now=datetime.now(UTC))
    submitting = bool(st.session_state.get(SUBMITTING))
    st.button("Scan now", key="scan_now", type="primary", icon=":material/radar:",
              on_click=_request_scan, disabled=submitting or blocked is not None,
              help=blocked or "Scan every user with a model row now (several Replicate "
                              "calls per user; findings are stored for these pages).")
    if not submitting:
        return
    request = st.session_state.get(REQUEST)
    if request is None or request == st.session_state.get(HANDLED):
        st.session_state[SUBMITTING] = False  # a repeated click of a scan already run
        return
    st.session_state[HANDLED] = request
    bar = st.progress(0.0, text="Starting the scan (syncing the training history)…")

    def progress(done: int, total: int) -> None:
        bar.progress(min(1.0, done / total) if total else 1.0,
                     text=f"Scanned {done} of {total} users")

    try:
        result = actions.scan(actor, progress)
    except DashboardError as exc:
        st.session_state[SUBMITTING] = False
        st.error(str(exc))
        return
    st.session_state[SUBMITTING] = False
    with_findings = sum(1 for user in result.users if user.findings)
    st.session_state[DONE] = (f"Scan #{result.scan_id} finished: {len(result.users)} users in "
                              f"{result.seconds:.0f} s, {with_findings} with findings.")
    st.rerun()


actor = identity.current_actor()
st.title("Fleet drift")
try:
    summary = scans.last_scan()
    counts, trend, worst = scans.fleet(summary)
except DashboardError as exc:
    st.error(str(exc))
    st.stop()

if DONE in st.session_state:
    st.success(st.session_state.pop(DONE), icon=":material/check_circle:")
_show_scan(summary)
_scan_button(actor, summary)
if summary is not None and summary.status == "running" and not st.session_state.get(SUBMITTING):
    _poll_running(summary.id)

if not counts and not trend:
    if summary is not None:
        st.info("No finished scan has found anything yet: every scanned user is healthy, or no "
                "scan has finished.")
    st.stop()

st.subheader("Findings by code")
st.caption("Users per code in each user's latest finished scan.")
table_column, chart_column = st.columns([3, 2], gap="large")
table_column.dataframe(drift_tables.counts_frame(counts), hide_index=True)
chart_column.plotly_chart(charts.counts_bar(counts), key="counts_chart")

st.subheader("Trend over scans")
st.caption("Users per code in each of the last full scans; one line per code, coloured by "
           "severity.")
if trend:
    st.plotly_chart(charts.trend_lines(trend), key="trend_chart")
else:
    st.info("The trend starts with the first finished scan of every user.")

st.subheader("Worst users")
selection = st.dataframe(
    drift_tables.worst_users_frame(worst), column_config=drift_tables.worst_users_columns(),
    hide_index=True, on_select="rerun", selection_mode="single-row", key="worst_users")
picked = [index for index in selection.selection.rows if 0 <= index < len(worst)]
if picked:
    st.switch_page(navigation.user_page(), query_params={"user": worst[picked[0]].user_id})
