"""Retrain (admins): the user's previous photos plus new ones, each checked; the dataset
gate; the parameters against the trainer; exactly one training into the user's own model
with their own trigger word; live progress (it carries on when the tab closes); then the
promotion gate's comparison and Promote or Keep. The app's row is untouched until Promote.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st

from core.errors import DashboardError
from core.links import training_link, version_link
from core.redaction import shown_value, with_urls_redacted
from core.repairs.availability import repairs_available
from core.retrain import promote as promote_rules
from core.retrain.checks import GATE_CHECKS, RETRAIN_PHOTO_CHECKS
from core.retrain.gate import GATE_ROLES
from core.retrain.plan import MAX_PHOTO_BYTES, MAX_PHOTOS, RETRAIN_TRAINER, RETRAIN_TRAINER_VERSION
from core.retrain.tables import RETRAIN_RUNNING
from core.retrain.views import RetrainState
from core.roles import Actor, Role
from core.text import inert
from core.versions import short_version
from dashboard import compare_ui, compare_view, identity, messages, navigation, retrain_ui
from dashboard.confirm_once import ConfirmOnce
from dashboard.history import wait_for_history
from dashboard.resources import runtime

CONFIRM = ConfirmOnce("retrain")  # the confirmation dialog's token and button
BADGE = {"ok": ":green-badge[ok]", "warn": ":orange-badge[warn]", "reject": ":red-badge[reject]"}
UPLOAD_TYPES = ["jpg", "jpeg", "png", "heic", "heif", "webp"]
PER_ROW = 6


@st.dialog("Submit this retrain?", width="large", on_dismiss=CONFIRM.close)
def _confirm(actor: Actor, state: RetrainState, planned: Any) -> None:
    token = CONFIRM.token
    gate = state.gate
    price = runtime().settings.retrain_price_per_training_usd
    st.markdown(
        f"**One training** of {planned.image_count} photos into "
        f"**{inert(planned.destination)}** with trigger word **{inert(planned.trigger_word)}**, "
        f"trainer {inert(f'{planned.trainer}:{planned.trainer_version[:12]}…')} (pinned). "
        f"Estimated at **${price:.2f}**."
    )
    st.caption(
        "Sent: the photos re-encoded at full quality (JPEG 95, at most 2048 px, upright, no "
        "metadata) in one ZIP through Replicate's files API, then one training create. "
        "Written to the app's row: nothing now; the user keeps their current version until "
        "you promote the new one after the gate's comparison."
    )
    reason = st.text_area("Why (kept in the audit log)", key=f"retrain_reason_{token}")
    override = None
    if gate is not None and gate.blocks:
        st.error(
            "The dataset gate blocks this retrain:\n\n- "
            + "\n- ".join(messages.said(block) for block in gate.blocks)
        )
        override = st.text_area(
            "Override reason (only if you are sure; audited)", key=f"retrain_override_{token}"
        )
    submitting = CONFIRM.submitting
    st.button(
        "Confirm and submit",
        type="primary",
        icon=":material/model_training:",
        on_click=CONFIRM.press,
        disabled=submitting,
        key=f"retrain_confirm_{token}",
    )
    if submitting and token:
        try:
            retrain_ui.confirm(
                actor,
                state.row.id,
                token=token,
                reason=reason,
                override_reason=override,
            )
        except DashboardError as exc:
            CONFIRM.failed()
            messages.error(exc)
            return
        CONFIRM.close()
        st.rerun()


def _keep_toggled(actor: Actor, retrain_id: int, position: int, key: str) -> None:
    kept = bool(st.session_state[key])
    try:
        retrain_ui.set_kept(actor, retrain_id, position, kept)
    except DashboardError as exc:
        st.session_state["retrain_message"] = str(exc)


def _photo_grid(actor: Actor, state: RetrainState) -> None:
    photos = state.photos
    for start in range(0, len(photos), PER_ROW):
        for column, photo in zip(
            st.columns(PER_ROW), photos[start : start + PER_ROW], strict=False
        ):
            with column:
                if photo.thumbnail:
                    st.image(bytes(photo.thumbnail), width="stretch")
                else:
                    st.caption("checking…" if not photo.measured else "no picture")
                verdict = BADGE.get(photo.verdict or "", ":gray-badge[checking]")
                st.markdown(f"{verdict} {inert(photo.name)} · {inert(photo.source)}")
                for reason in photo.reasons:
                    st.caption(messages.said(reason))
                # The stored choice is part of the key: a photo the checks drop shows
                # unticked at once (a widget keeps its own state under an unchanged key).
                key = f"keep_{state.row.id}_{photo.position}_{photo.kept}"
                st.checkbox(
                    "keep",
                    value=bool(photo.kept),
                    key=key,
                    on_change=_keep_toggled,
                    args=(actor, state.row.id, photo.position, key),
                    disabled=photo.verdict == "reject" and not photo.kept,
                )


@st.fragment(run_every=2.0)
def _draft_live(actor: Actor, retrain_id: int) -> None:
    state = retrain_ui.load(retrain_id)
    if state is None or state.row.status != "draft":
        st.rerun()
        return
    waiting = sum(1 for photo in state.photos if not photo.verdict)
    kept = [photo for photo in state.photos if photo.kept and photo.verdict]
    if waiting:
        st.progress(
            (len(state.photos) - waiting) / max(1, len(state.photos)),
            text=f"Checking photos: {len(state.photos) - waiting} of {len(state.photos)} done "
            "(a worker reads each face; you can leave and come back).",
        )
    if state.row.error:
        messages.warning(state.row.error)
    _photo_grid(actor, state)
    st.subheader("Dataset gate")
    gate = state.gate
    if gate is not None:
        if gate.blocks:
            st.error(
                "Blocked:\n\n- " + "\n- ".join(messages.said(block) for block in gate.blocks),
                icon=":material/block:",
            )
        else:
            st.success("The dataset passes the gate.", icon=":material/check_circle:")
        for warning in gate.warnings:
            messages.warning(warning)
        st.dataframe(retrain_ui.gate_frame(gate.figures), hide_index=True)
    st.subheader("Parameters")
    planned = retrain_ui.plan(state.row, len(kept))
    if not planned.schema_known:
        st.warning("The trainer gives no input schema: which inputs it ignores cannot be said.")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "input": row.name,
                    "value": with_urls_redacted(str(shown_value(row.name, row.value))),
                    "meaning": row.meaning,
                    "taken by the trainer": "ignored by this trainer" if row.ignored else "yes",
                }
                for row in planned.rows()
            ]
        ),
        hide_index=True,
    )
    if planned.ignored:
        st.caption(
            f"Replicate drops what {RETRAIN_TRAINER} does not declare: "
            f"{inert(', '.join(planned.ignored))}. They are sent as the app sends them, and do "
            "nothing."
        )
    left, right = st.columns(2)
    if (
        left.button(
            "Submit retrain…",
            type="primary",
            icon=":material/model_training:",
            disabled=bool(waiting) or not kept,
            on_click=CONFIRM.open,
            key=f"retrain_submit_{retrain_id}",
        )
        or CONFIRM.token
    ):
        _confirm(actor, state, planned)
    if right.button("Discard this draft", icon=":material/delete:", key=f"discard_{retrain_id}"):
        retrain_ui.drop_draft(actor, retrain_id)
        st.rerun(scope="app")


def _uploads(actor: Actor, retrain_id: int) -> None:
    with st.form(f"uploads_{retrain_id}", clear_on_submit=True):
        files = st.file_uploader(
            f"Add photos (JPEG, PNG, HEIC, WebP; {MAX_PHOTO_BYTES // 2**20} MB each; up to "
            f"{MAX_PHOTOS} in all)",
            type=UPLOAD_TYPES,
            accept_multiple_files=True,
        )
        if st.form_submit_button("Add photos", icon=":material/upload:") and files:
            try:
                retrain_ui.add_uploads(actor, retrain_id, [(f.name, f.getvalue()) for f in files])
            except DashboardError as exc:
                messages.error(exc)


def _duration(seconds: float) -> str:
    return f"{round(seconds)} s" if seconds < 120 else f"{round(seconds / 60)} min"


def _elapsed(since: datetime | None) -> str:
    if since is None:
        return "—"
    seconds = int((datetime.now(UTC) - since).total_seconds())
    return f"{seconds // 60} min {seconds % 60:02d} s"


@st.fragment(run_every=3.0)
def _progress(actor: Actor, retrain_id: int) -> None:
    state = retrain_ui.load(retrain_id)
    if state is None:
        return
    try:
        _live(actor, state)
    finally:
        _history(state.row.user_id)


def _live(actor: Actor, state: RetrainState) -> None:
    row = state.row
    base = runtime().replicate_base_url
    st.markdown(
        f"**Retrain #{row.id}** · {inert(row.status)} · asked by {inert(row.requested_by)}: "
        f"{messages.said(row.reason)}"
    )
    if row.training_id:
        st.markdown(
            f"Training {inert(row.training_id)} · "
            f"[open on Replicate ↗]({training_link(base, row.training_id)})"
        )
    if row.status in RETRAIN_RUNNING:
        fraction = (row.step or 0) / row.steps if row.steps else 0.0
        step = f"step {row.step}/{row.steps}" if row.steps else "waiting for the first step"
        expected = retrain_ui.expected_seconds(row.trainer_version)
        usual = (
            f" · usually about {_duration(expected)} in all (the account's recent "
            "trainings on this trainer)"
            if expected
            else ""
        )
        st.progress(
            min(1.0, fraction),
            text=f"{inert(row.status)}: {step} · "
            f"{_elapsed(row.submitted_at or row.requested_at)} elapsed{usual}",
        )
        st.caption("This carries on when you close the tab; come back any time.")
        reason = st.text_input("Why cancel", key=f"cancel_reason_{row.id}")
        if st.button("Cancel the training", icon=":material/cancel:", key=f"cancel_{row.id}"):
            try:
                retrain_ui.cancel(actor, row.id, reason)
            except DashboardError as exc:
                messages.error(exc)
        return
    if row.status != "succeeded":
        st.error(
            f"The retrain ended {inert(row.status)}: "
            f"{messages.said(row.error) if row.error else 'no reason given'}. "
            "The app's row was not touched."
        )
        return
    st.success(f"New version {inert(row.new_version)} in {inert(row.destination)}.")
    if row.new_version:
        st.markdown(
            "[Open the version on Replicate ↗]"
            f"({version_link(base, row.destination, row.new_version)})"
        )
    if row.error:
        messages.warning(row.error)
    _decision(actor, state)


def _decision(actor: Actor, state: RetrainState) -> None:
    row = state.row
    st.subheader("Promotion gate")
    if row.comparison_id is not None:
        st.page_link(
            navigation.compare_page(),
            label=f"Comparison #{row.comparison_id}: the current version against the new one",
            icon=":material/compare:",
            query_params={"comparison": str(row.comparison_id)},
        )
        if state.reading is not None:
            try:
                view = compare_ui.comparison(row.comparison_id)
            except DashboardError as exc:
                messages.error(exc)
                view = None
            # The bottom line first, in words; the gate's reading with its figures below.
            titles = compare_view.bottom_line_titles(view, GATE_ROLES) if view else {}
            (messages.success if state.reading.not_worse else messages.error)(
                state.reading.sentence
            )
            if view is not None:
                with st.expander("The gate's images: the current version against the new one"):
                    compare_view.images_grid(actor, view, titles)
                    if view.stats:
                        st.dataframe(compare_view.stats_frame(view, titles), hide_index=True)
                    predictions = compare_view.prediction_frame(view, titles)
                    if not predictions.empty:
                        st.caption("Prediction ids, to copy:")
                        st.dataframe(predictions, hide_index=True)
    if row.decision is not None:
        st.info(
            f"{inert(row.decision.title())} by {inert(row.decided_by)}: "
            f"{messages.said(row.decision_reason)}"
        )
        return
    ready = promote_rules.readiness(row, state.comparison_status)
    if not ready.open:
        messages.info(ready.why, icon=":material/hourglass_top:")
        return
    allowed, why = repairs_available(runtime().settings)
    if not allowed:
        messages.warning(why)
        return
    try:
        shown = retrain_ui.promotion_preview(row.id)
    except DashboardError as exc:
        messages.error(exc)
        return
    st.caption("Promoting writes these columns of the user's row (now → after promoting):")
    st.dataframe(
        pd.DataFrame(
            [
                {"column": column, "now": _cell(shown.before[column]), "after": _cell(value)}
                for column, value in shown.after.items()
            ]
        ),
        hide_index=True,
    )
    message = st.session_state.pop(f"decide_message_{row.id}", None)
    if message:
        messages.error(message)
    st.text_input("Why (kept in the audit log)", key=f"decide_reason_{row.id}")
    if ready.needs_reason_without_gate:
        messages.warning(ready.why)
        st.text_input(
            "Why decide without the gate's comparison (audited)", key=f"without_gate_{row.id}"
        )
    promote_col, keep_col = st.columns(2)
    # The plan shown is bound to the click: exactly it is applied, locked on the row as
    # shown (a rerun between showing and clicking reads nothing new).
    promote_col.button(
        "Promote the new version",
        type="primary",
        icon=":material/upgrade:",
        key=f"promote_{row.id}",
        on_click=_decide,
        args=(actor, row.id, "promote", shown, f"decide_reason_{row.id}", f"without_gate_{row.id}"),
    )
    keep_col.button(
        "Keep the current version",
        icon=":material/undo:",
        key=f"keep_{row.id}",
        on_click=_decide,
        args=(actor, row.id, "keep", shown, f"decide_reason_{row.id}", f"without_gate_{row.id}"),
    )


def _cell(value: Any) -> str:
    return "—" if value is None else with_urls_redacted(str(value))


def _decide(
    actor: Actor, retrain_id: int, choice: str, shown: Any, reason_key: str, without_key: str
) -> None:
    reason = str(st.session_state.get(reason_key) or "")
    without_gate = st.session_state.get(without_key) or None
    try:
        if choice == "promote":
            retrain_ui.promote_now(actor, retrain_id, shown, reason, without_gate)
        else:
            retrain_ui.keep_current(actor, retrain_id, reason, without_gate)
    except DashboardError as exc:
        st.session_state[f"decide_message_{retrain_id}"] = str(exc)


def _history(user_id: str) -> None:
    """The retrains the console ran for this user (read fresh with the live view)."""
    st.subheader("Retrains run from this console")
    past = retrain_ui.history(user_id)
    if past:
        st.dataframe(retrain_ui.history_frame(past), hide_index=True)
    else:
        st.caption("None yet.")


actor = identity.require_role_on_page(Role.ADMIN)
st.title("Retrain")
user_id = st.text_input(
    "User id", value=st.query_params.get("user", ""), key="retrain_user"
).strip()
if not user_id:
    st.info(
        "Open a user here from their User page (a finding whose fix is a retrain links "
        "here), or paste their id."
    )
    st.stop()
st.query_params["user"] = user_id
try:
    found, history, problem = retrain_ui.target(user_id)
except DashboardError as exc:
    messages.error(exc)
    st.stop()
if problem:
    messages.warning(problem)
st.caption(messages.said(history.describe().capitalize()) + ".")
current_version = short_version(found.current_version) if found.current_version else "none"
st.markdown(
    f"Into **{inert(found.destination)}** (the user's own model) with trigger word "
    f"**{inert(found.trigger_word)}** (the one their current version learnt); current version "
    f"{inert(current_version)}; trainer "
    f"`{RETRAIN_TRAINER}:{RETRAIN_TRAINER_VERSION[:12]}…` (pinned)."
)
for note in found.notes:
    st.caption(messages.said(note))
message = st.session_state.pop("retrain_message", None)
if message:
    messages.error(message)
state = retrain_ui.current(user_id, actor)
if state is None:
    last = retrain_ui.latest(user_id)
    if last is not None:
        with st.container(border=True):
            _live(actor, last)  # how the last one ended, and its decision
    st.caption(
        "A retrain starts from the photos of the training behind the current version "
        f"({'its ZIP is known' if found.previous_zip_url else 'its ZIP is unknown'}); add new "
        "ones, check them all, then submit one training."
    )
    if not history.fresh:
        st.info(
            "A retrain starts once the training history is fresh, so that it cannot miss "
            "the user's newest training. "
            + (
                "A worker is reading it now; this page updates when it is done."
                if history.syncing
                else "No worker has read it yet."
            ),
            icon=":material/hourglass_top:",
        )
        if history.syncing:
            wait_for_history()
    if st.button(
        "Start a retrain",
        type="primary",
        icon=":material/add_photo_alternate:",
        disabled=not history.fresh,
    ):
        try:
            retrain_ui.start(actor, user_id)
        except DashboardError as exc:
            messages.error(exc)
        st.rerun()
elif state.row.status == "draft":
    _uploads(actor, state.row.id)
    _draft_live(actor, state.row.id)
else:
    _progress(actor, state.row.id)
if state is None or state.row.status == "draft":
    _history(user_id)

with st.expander("Thresholds of the checks"):
    st.dataframe(
        pd.DataFrame(
            [
                {"check": t.name, "value": t.value, "meaning": t.help}
                for t in (*RETRAIN_PHOTO_CHECKS, *GATE_CHECKS)
            ]
        ),
        hide_index=True,
    )
