"""Users: find a user by email, id, trigger word or model id; open them."""

from __future__ import annotations

import streamlit as st

from core.errors import DashboardError
from core.users import LatestState, LatestVersion, UsersPage
from dashboard import loaders, navigation, tables

QUERY_KEY = "q"
PAGE_KEY = "page"


def _back_to_first_page() -> None:
    st.session_state[PAGE_KEY] = 1


def _requested_page() -> int:
    """The page asked for: the widget's state, else the URL (before the widget exists)."""
    raw = st.session_state.get(PAGE_KEY) or st.query_params.get(PAGE_KEY) or 1
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 1


def _load(query: str, page: int) -> tuple[UsersPage, dict[str, LatestVersion]]:
    try:
        found = loaders.search_users(query, page)
        return found, loaders.latest_versions(row.model_id for row in found.rows)
    except DashboardError as exc:
        st.error(str(exc))
        st.stop()


st.title("Users")
query = st.text_input(
    "Search", key=QUERY_KEY, bind="query-params", on_change=_back_to_first_page,
    placeholder="email, exact user id, trigger word or model id",
)
result, latest = _load(query, _requested_page())

notice_slot, table_slot = st.empty(), st.empty()
count_column, pages_column = st.columns([3, 2], vertical_alignment="center")
with pages_column:
    page = st.pagination(result.page_count, key=PAGE_KEY, bind="query-params")
if page != result.page:  # the widget reset itself (a stale link, a shrunk result)
    result, latest = _load(query, page)
count_column.caption(f"rows {result.first_row}–{result.last_row} of {result.total}"
                     if result.total else "No user matches this search.")

unreachable = [item for item in latest.values() if item.state is LatestState.UNREACHABLE]
if unreachable:
    notice_slot.warning(
        f"Latest versions show '{tables.UNKNOWN}' for {len(unreachable)} model(s): "
        f"{unreachable[0].message}", icon=":material/cloud_off:")

selection = table_slot.dataframe(
    tables.users_frame(result.rows, latest), column_config=tables.users_columns(),
    hide_index=True, on_select="rerun", selection_mode="single-row", key="users_table",
)
picked = [index for index in selection.selection.rows if 0 <= index < len(result.rows)]
if picked:
    st.switch_page(navigation.user_page(), query_params={"user": result.rows[picked[0]].user_id})
