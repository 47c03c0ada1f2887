"""Users: find a user by email, id, trigger word or model id, or by what the latest scan
found on them (finding code, severity); see their worst finding; open them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import streamlit as st

from core.errors import DashboardError
from core.scan.progress import scan_progress
from core.scan.values import ScanSummary
from core.text import inert
from core.users import LatestState, LatestVersion, UsersPage
from dashboard import (
    drift_tables,
    loaders,
    messages,
    navigation,
    paging,
    resources,
    scan_panel,
    scans,
    tables,
)

QUERY_KEY = "q"
PAGE_KEY = "page"
CODE_KEY = "code"
SEVERITY_KEY = "severity"


def _load(
    query: str, page: int, user_ids: Sequence[str] | None
) -> tuple[UsersPage, dict[str, LatestVersion]]:
    try:
        found = loaders.search_users(query, page, user_ids)
        return found, loaders.latest_versions(row.model_id for row in found.rows)
    except DashboardError as exc:
        messages.error(exc)
        st.stop()


def _scan_caption(summary: ScanSummary | None) -> str:
    if summary is None:
        return (
            "No fleet scan has run yet, so every user shows 'not scanned yet': an admin "
            "starts one on the Fleet page."
        )
    when = f"{summary.finished_at:%Y-%m-%d %H:%M}" if summary.finished_at else "—"
    if summary.is_active:
        progress = scan_progress(
            summary,
            now=datetime.now(UTC),
            stale_after=timedelta(
                seconds=resources.runtime().settings.scan_heartbeat_timeout_seconds
            ),
        )
        where = (
            "is queued, waiting for a worker"
            if summary.status == "queued"
            else f"is running: {inert(progress.words)}"
        )
        return (
            f"Fleet scan #{summary.id} {where}. Findings show as users are checked; "
            "users no scan has checked yet show 'not scanned yet'."
        )
    if summary.status == "failed":
        return (
            f"Findings: each user's latest scan; the last fleet scan, #{summary.id}, "
            f"failed at {when}: "
            + (messages.said(summary.error) if summary.error else "no reason recorded")
            + "."
        )
    if summary.status == "cancelled":
        return (
            f"Findings: each user's latest scan; the last fleet scan, #{summary.id}, was "
            f"cancelled at {when} after {summary.users_scanned} users."
        )
    return (
        f"Findings: each user's latest scan (the last fleet scan, #{summary.id}, "
        f"finished at {when} UTC)."
    )


navigation.keep_place("users")
to_first_page = paging.back_to_first_page(PAGE_KEY)
st.title("Users")
navigation.show_refused_page()
# What the address asks for, read before the widgets: they drop what they cannot show.
refusals = [
    drift_tables.refused_choices(
        st.query_params.get_all(CODE_KEY), drift_tables.CODE_NAMES, noun="finding"
    ),
    drift_tables.refused_choices(
        st.query_params.get_all(SEVERITY_KEY), drift_tables.SEVERITY_NAMES, noun="severity"
    ),
]
asked_page = paging.asked_page(PAGE_KEY)
try:
    summary = scans.last_scan()
except DashboardError as exc:
    messages.error(exc)
    st.stop()
query = st.text_input(
    "Search",
    key=QUERY_KEY,
    bind="query-params",
    on_change=to_first_page,
    placeholder="email, exact user id, trigger word or model id",
)
code_column, severity_column = st.columns([3, 2])
codes = code_column.multiselect(
    "Finding",
    drift_tables.CODE_NAMES,
    key=CODE_KEY,
    bind="query-params",
    on_change=to_first_page,
    placeholder="any finding",
    help="Users whose latest scan raised ANY of these codes (the URL holds them as ?code=…)",
)
severities = severity_column.multiselect(
    "Severity",
    drift_tables.SEVERITY_NAMES,
    key=SEVERITY_KEY,
    bind="query-params",
    on_change=to_first_page,
    placeholder="any severity",
    help="Users with a finding of ANY of these severities (with codes too: both must match)",
)
scan_panel.follow_fleet_scan(summary, _scan_caption)
filtered = bool(codes or severities)
try:
    among = scans.user_ids_with(summary, codes, severities) if filtered else None
except DashboardError as exc:
    messages.error(exc)
    st.stop()
result, latest = _load(query, paging.requested_page(PAGE_KEY), among)

notices, table_slot = st.container(), st.empty()
count_column, pages_column = st.columns([3, 2], vertical_alignment="center")
with pages_column:
    page = st.pagination(result.page_count, key=PAGE_KEY, bind="query-params")
if page != result.page:  # the widget reset itself (a stale link, a shrunk result)
    result, latest = _load(query, page, among)
refusals.append(paging.page_refusal(asked_page, shown=result.page, page_count=result.page_count))
for refusal in refusals:
    if refusal is not None:
        notices.warning(refusal, icon=":material/filter_alt_off:")
if result.total:
    count_column.caption(f"rows {result.first_row}–{result.last_row} of {result.total}")
elif filtered:
    count_column.caption("No user matches this search and these findings.")
else:
    count_column.caption("No user matches this search.")
found = scans.findings_of_rows(summary, [row.user_id for row in result.rows])

unreachable = [item for item in latest.values() if item.state is LatestState.UNREACHABLE]
if unreachable:
    notices.warning(
        f"Latest versions show '{tables.UNKNOWN}' for {len(unreachable)} model(s): "
        f"{messages.said(unreachable[0].message)}",
        icon=":material/cloud_off:",
    )

frame = drift_tables.with_findings(
    tables.users_frame(result.rows, latest), found.worst, found.codes, checked=found.checked
)
selection = table_slot.dataframe(
    drift_tables.coloured(frame, "worst"),
    height="content",  # every row of the page, with no scroll box inside the page
    column_order=tables.USERS_ORDER,
    column_config={**tables.users_columns(), **drift_tables.findings_columns(frame["findings"])},
    hide_index=True,
    placeholder=tables.NONE,
    on_select="rerun",
    selection_mode=tables.OPEN_ON_CLICK,
    key="users_table",
)
picked = tables.picked_row(selection, len(result.rows))
if picked is not None:
    navigation.open_user(result.rows[picked].user_id)
