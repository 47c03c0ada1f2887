"""Fleet, in two views (a tab each, kept in ``?view=``):

- Drift: what the latest scans found across all users (counts by code, the trend over
  scans, the worst users), the last fleet scan and its live progress, and for admins a
  scan now (run by the workers: leaving the page does not stop it) or a cancel;
- Recent retrains: every retrain the watch judged in the last days, its outcomes per day
  and a row per retrain that opens the user.

Only the open tab's part runs."""

from __future__ import annotations

import streamlit as st

from core.errors import DashboardError
from core.roles import Actor, Role
from core.scan.values import ScanSummary
from dashboard import (
    actions,
    charts,
    drift_tables,
    identity,
    loaders,
    messages,
    navigation,
    recent_retrains,
    scan_panel,
    scans,
    tables,
)

NOTICE = "fleet_notice"


def _request_scan(actor: Actor) -> None:
    """Scan now's on_click: the database refuses a second fleet scan, however many clicks,
    tabs or admins; the refusal names the scan that runs."""
    try:
        summary = actions.scan(actor)
    except DashboardError as exc:
        st.session_state[NOTICE] = ("warning", messages.said(exc))
        return
    st.session_state[NOTICE] = (
        "success",
        f"Fleet scan #{summary.id} is queued: the workers "
        "run it. You can leave this page; come back to "
        "see how far it is.",
    )


def _cancel_scan(actor: Actor, scan_id: int) -> None:
    try:
        summary = actions.cancel_scan(actor, scan_id)
    except DashboardError as exc:
        st.session_state[NOTICE] = ("warning", messages.said(exc))
        return
    st.session_state[NOTICE] = (
        "info",
        f"Scan #{summary.id} is cancelled; the "
        f"{summary.users_scanned} users it checked keep "
        "their findings.",
    )


def _controls(actor: Actor, summary: ScanSummary | None) -> None:
    if actor.role is not Role.ADMIN:
        st.caption(
            "Only admins start scans: a scan reads every user's model, versions and "
            "trainings from Replicate."
        )
        return
    active = summary is not None and summary.is_active
    scan_column, cancel_column = st.columns([1, 3])
    scan_column.button(
        "Scan now",
        key="scan_now",
        type="primary",
        icon=":material/radar:",
        on_click=_request_scan,
        args=(actor,),
        disabled=active,
        help="A fleet scan is queued or running: wait for it or cancel it."
        if active
        else "Scan every user with a model row (several Replicate calls per user). The workers "
        "run it; findings appear on these pages as users are checked.",
    )
    if active and summary is not None:
        with cancel_column.popover("Cancel scan", icon=":material/cancel:"):
            st.write(
                f"Stop scan #{summary.id}? The users it already checked keep their "
                "findings; the rest keep those of earlier scans."
            )
            st.button(
                f"Yes, cancel scan #{summary.id}",
                key="cancel_scan",
                type="primary",
                on_click=_cancel_scan,
                args=(actor, summary.id),
            )


def _drift(actor: Actor) -> None:
    try:
        summary = scans.last_scan()
        counts, trend, worst = scans.fleet(summary)
    except DashboardError as exc:
        messages.error(exc)
        return

    if NOTICE in st.session_state:
        kind, text = st.session_state.pop(NOTICE)  # Markdown: the page's words, data inert
        getattr(st, kind)(text)
    scan_panel.fleet_scan_panel(summary)
    _controls(actor, summary)

    if not counts and not trend:
        if summary is not None:
            st.info(
                "No scan has found anything yet: every checked user is healthy, or no scan "
                "has checked anyone yet."
            )
        return

    st.subheader("Findings by code")
    st.caption("Users per finding in each user's latest scan. Click a finding to list its users.")
    by_code = st.dataframe(
        drift_tables.coloured(drift_tables.counts_frame(counts), "severity"),
        column_config=drift_tables.counts_columns(),
        hide_index=True,
        height="content",
        on_select="rerun",
        selection_mode=tables.OPEN_ON_CLICK,
        key="findings_by_code",
    )
    picked_code = tables.picked_row(by_code, len(counts))
    if picked_code is not None:
        navigation.go(navigation.users_page(), code=counts[picked_code].code)
    st.plotly_chart(charts.counts_bar(counts), key="counts_chart")

    st.subheader("Trend over scans")
    st.caption(
        "Users per code in each of the last finished fleet scans; one line per code, "
        "coloured by severity."
    )
    if trend:
        st.plotly_chart(charts.trend_lines(trend), key="trend_chart")
    else:
        st.info("The trend starts with the first finished fleet scan.")

    st.subheader("Worst users")
    st.caption("Click a row to open the user.")
    try:
        emails = loaders.emails_of(item.user_id for item in worst)
    except DashboardError as exc:
        messages.error(exc)
        return
    selection = st.dataframe(
        drift_tables.coloured(drift_tables.worst_users_frame(worst, emails), "worst"),
        column_config=drift_tables.worst_users_columns(),
        hide_index=True,
        height="content",
        on_select="rerun",
        selection_mode=tables.OPEN_ON_CLICK,
        key="worst_users",
    )
    picked = tables.picked_row(selection, len(worst))
    if picked is not None:
        navigation.open_user(worst[picked].user_id)


actor = identity.current_actor()
navigation.keep_place("fleet")
st.title("Fleet drift")
drift_tab, retrains_tab = st.tabs(
    [navigation.DRIFT_VIEW, navigation.RETRAINS_VIEW],
    key=navigation.FLEET_VIEW,
    bind="query-params",
)
if drift_tab.open:
    with drift_tab:
        _drift(actor)
if retrains_tab.open:
    with retrains_tab:
        recent_retrains.recent_section()
