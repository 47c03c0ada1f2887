"""Audit log (admin): every repair, undo and scan — who, when, what, before/after, why."""

from __future__ import annotations

import streamlit as st

from core.audit_words import action_words, record_words
from core.errors import DashboardError
from core.redaction import without_url_secrets
from core.roles import Role
from core.text import inert
from dashboard import (
    audit_view,
    drift_tables,
    identity,
    loaders,
    messages,
    navigation,
    paging,
    repair_ui,
    tables,
)

ACTION_KEY = "action"
ACTOR_KEY = "actor_email"
# Not "user": that is the User page's parameter, and a widget bound to it here made
# switching to the User page (st.switch_page with ?user=) fail.
USER_KEY = "target"
PAGE_KEY = "audit_page"


def _blank_to_none(text: str | None) -> str | None:
    return text.strip() if text and text.strip() else None


acting = identity.require_role_on_page(Role.ADMIN)
navigation.keep_place("audit")
to_first_page = paging.back_to_first_page(PAGE_KEY)
st.title("Audit log")
st.caption(
    "Every repair, undo and scan started from the console, newest first, written in "
    "the same transaction as the change it records."
)
try:
    actions = loaders.audit_actions()
except DashboardError as exc:
    messages.error(exc)
    st.stop()

refusals = [
    drift_tables.refused_choices(st.query_params.get_all(ACTION_KEY), actions, noun="action")
]
asked_page = paging.asked_page(PAGE_KEY)
action_column, actor_column, user_column = st.columns(3)
action = action_column.selectbox(
    "Action",
    actions,
    index=None,
    key=ACTION_KEY,
    bind="query-params",
    placeholder="any action",
    format_func=lambda key: f"{action_words(key)} ({key})",
    on_change=to_first_page,
)
actor = actor_column.text_input(
    "Actor email", key=ACTOR_KEY, bind="query-params", placeholder="anyone", on_change=to_first_page
)
user_id = user_column.text_input(
    "User id", key=USER_KEY, bind="query-params", placeholder="any user", on_change=to_first_page
)
filters = {"action": action, "actor": _blank_to_none(actor), "user_id": _blank_to_none(user_id)}
try:
    records, total, page = loaders.audit_page(paging.requested_page(PAGE_KEY), **filters)
except DashboardError as exc:
    messages.error(exc)
    st.stop()

table_slot = st.empty()
count_column, pages_column = st.columns([3, 2], vertical_alignment="center")
with pages_column:
    shown_page = st.pagination(
        max(1, -(-total // loaders.AUDIT_PAGE_SIZE)), key=PAGE_KEY, bind="query-params"
    )
if shown_page != page:
    records, total, page = loaders.audit_page(shown_page, **filters)
refusals.append(
    paging.page_refusal(
        asked_page, shown=page, page_count=max(1, -(-total // loaders.AUDIT_PAGE_SIZE))
    )
)
for refusal in refusals:
    if refusal is not None:
        st.warning(refusal, icon=":material/filter_alt_off:")
first = (page - 1) * loaders.AUDIT_PAGE_SIZE + 1
count_column.caption(
    f"records {first}–{first + len(records) - 1} of {total}"
    if records
    else "No audit record matches these filters."
)

try:
    emails = loaders.emails_of(record.target_user_id for record in records if record.target_user_id)
except DashboardError as exc:
    messages.error(exc)
    st.stop()
selection = table_slot.dataframe(
    audit_view.audit_frame(records, emails),
    column_config=audit_view.audit_columns(),
    hide_index=True,
    on_select="rerun",
    selection_mode=tables.OPEN_ON_CLICK,
    key="audit_table",
)
picked = tables.picked_row(selection, len(records))
if picked is None:
    st.caption("Click a record to see its change column by column.")
    st.stop()

record = records[picked]
st.subheader(inert(record_words(record.action, record.details)))  # an event is data
st.caption(f"Record #{record.id} · {inert(record.action)}")
st.markdown(
    f"**{inert(record.actor_email)}** ({inert(record.actor_role)}) at "
    f"{record.at:%Y-%m-%d %H:%M:%S %Z}"
    + (f" · reason: {messages.said(record.reason)}" if record.reason else "")
)

if record.target_user_id:
    repair_ui.show_result(record.target_user_id, may_repair=False)
    if st.button(
        f"Open user {inert(record.target_user_id)}", icon=":material/person:", key="open_user"
    ):
        navigation.open_user(record.target_user_id)
    if record.action.startswith("repair:"):
        repair_ui.undo_button(record.target_user_id, record.id, key="undo_from_audit")
    repair_ui.open_dialogs(acting, record.target_user_id, None)
if record.before is not None or record.after is not None:
    changes = audit_view.change_frame(record)
    if changes.empty:
        st.caption("What it wrote equals what was there: no field changed.")
    else:
        st.markdown("**What changed** (field: before → after)")
        st.dataframe(changes, hide_index=True)
if record.details:
    st.markdown("**Details**")
    st.dataframe(audit_view.details_frame(record.details), hide_index=True)
if record.before is not None or record.after is not None or record.details:
    with st.expander("The record as stored (JSON, for engineers)", icon=":material/data_object:"):
        st.json(
            without_url_secrets(
                {"before": record.before, "after": record.after, "details": record.details}
            ),
            expanded=True,
        )
