"""User: one user's rows, their Replicate model and training, and stored vs latest."""

from __future__ import annotations

import streamlit as st

from core.errors import DashboardError
from core.versions import Level, short_version
from dashboard import loaders, navigation, tables

_SHOW_NOTE = {Level.ERROR: st.error, Level.WARNING: st.warning, Level.INFO: st.info,
              Level.OK: st.success}

st.page_link(navigation.users_page(), label="Back to Users", icon=":material/arrow_back:")
user_id = st.query_params.get("user", "").strip()
if not user_id:
    st.title("User")
    st.info("No user chosen. Pick one on the Users page, or open a link like ?user=<id>.")
    st.stop()

try:
    detail = loaders.user_detail(user_id)
except DashboardError as exc:
    st.title("User")
    st.error(str(exc))
    st.stop()

record, comparison = detail.record, detail.comparison
model_row = record.model_row or {}
st.title(f"User {detail.user_id}")
st.caption(f"{record.user.get('email') or 'no email'} · plan {record.user.get('plan') or '—'}")

status, stored, latest, behind = st.columns(4)
status.metric("training status (row)", str(model_row.get("training_status") or "—"))
stored.metric("stored version", short_version(comparison.stored) or "—",
              help=f"As stored: {comparison.stored!r}")
latest.metric("latest version", short_version(comparison.latest) or tables.UNKNOWN,
              help="The model's newest version on Replicate")
behind.metric("versions behind",
              tables.UNKNOWN if comparison.versions_behind is None
              else str(comparison.versions_behind),
              help="How many versions newer than the stored one the model has")
for note in comparison.notes():
    _SHOW_NOTE[note.level](note.text)

database, replicate = st.columns(2, gap="large")
with database:
    st.subheader("users row")
    st.dataframe(tables.columns_frame(record.user), hide_index=True)
    st.subheader("user_models row")
    if record.model_row is None:
        st.info("No user_models row: this user never started a training.")
    else:
        st.dataframe(tables.columns_frame(record.model_row), hide_index=True, height="content")

with replicate:
    st.subheader("Replicate model")
    if detail.model is None:
        st.warning(detail.model_problem or "No model.")
    else:
        model = detail.model
        st.markdown(f"**{model.key}** · {model.visibility} · {model.run_count} runs")
        newest = detail.latest_version
        if newest is not None:
            st.markdown(f"Latest version `{newest.id}` created {newest.created_at or '?'}")
    st.subheader("All versions")
    if detail.versions_problem is not None:
        st.warning(detail.versions_problem)
    elif not detail.versions:
        st.info("The model has no versions: no training into it has succeeded.")
    else:
        st.dataframe(tables.versions_frame(detail.versions, stored=comparison.normalised,
                                           latest=comparison.latest), hide_index=True)

    st.subheader("Training (row's training_id)")
    if detail.training is None:
        st.warning(detail.training_problem or "No training.")
    else:
        training = detail.training
        st.markdown(f"`{training.id}` · status **{training.status}** · trainer "
                    f"{training.trainer_model} · created {training.created_at or '?'}")
        if training.error:
            st.error(f"Training error: {training.error}")
        st.dataframe(tables.mapping_frame({
            "output version": training.output_version,
            "output weights": training.output_weights,
            "started": training.started_at,
            "completed": training.completed_at,
        }), hide_index=True)
        st.caption("Input")
        st.dataframe(tables.mapping_frame(training.input), hide_index=True)
