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
from core.gateway.values import ModelVersion
from core.links import training_link, version_link
from core.redaction import shown_value, with_urls_redacted
from core.repairs.availability import repairs_available
from core.retrain import promote as promote_rules
from core.retrain.checks import GATE_CHECKS, RETRAIN_PHOTO_CHECKS
from core.retrain.gate import GATE_ROLES
from core.retrain.plan import (
    MAX_PHOTO_BYTES,
    MAX_PHOTOS,
    RETRAIN_TRAINER,
    RETRAIN_TRAINER_VERSION,
    RetrainTarget,
)
from core.retrain.tables import RETRAIN_RUNNING
from core.retrain.views import RetrainState
from core.roles import Actor, Role
from core.text import inert
from core.versions import version_name
from dashboard import (
    compare_ui,
    compare_view,
    identity,
    messages,
    navigation,
    retrain_ui,
    user_picker,
)
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
        with st.status("Submitting: checking the photos and the dataset gate again…") as status:
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
                status.update(label="Not submitted", state="error")
                messages.error(exc)
                return
            st.write(
                "Queued for a worker: it packages the photos, uploads them and creates one "
                "training. Opening its live progress…"
            )
            status.update(label="Submitted: a worker takes it from here", state="complete")
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
        added = st.form_submit_button("Add photos", icon=":material/upload:")
    if added and files:
        _add(actor, retrain_id, [(f.name, f.getvalue()) for f in files])


def _add(actor: Actor, retrain_id: int, uploads: list[tuple[str, bytes]]) -> None:
    """Save the uploads to the draft with each step in view (the saving runs here, the
    checks on a worker: the photo grid below shows them as they are read)."""
    count = len(uploads)
    megabytes = sum(len(data) for _, data in uploads) / 2**20
    with st.status(
        f"Adding {count} photo{'s' if count != 1 else ''} ({megabytes:.1f} MB) to the draft…",
        expanded=True,
    ) as status:
        bar = st.progress(0.0, text=f"Saving photo 1 of {count}…")

        def saved(done: int, photo: Any) -> None:
            bar.progress(
                done / count,
                text=f"Saved photo {done} of {count}: {inert(photo.name)} "
                f"({len(photo.content) / 2**20:.1f} MB)",
            )

        try:
            retrain_ui.add_uploads(actor, retrain_id, uploads, on_each=saved)
        except DashboardError as exc:
            status.update(label="No photo was added", state="error")
            messages.error(exc)
            return
        st.write(
            "Queued their checks for a worker (faces, sharpness, exposure, the same person, "
            "near-duplicates): each photo's verdict appears below as it is read."
        )
        status.update(
            label=f"Added {count} photo{'s' if count != 1 else ''}; a worker is checking them",
            state="complete",
            expanded=False,
        )


def _elapsed(since: datetime | None) -> str:
    if since is None:
        return "—"
    seconds = int((datetime.now(UTC) - since).total_seconds())
    return f"{seconds // 60} min {seconds % 60:02d} s"


@st.fragment(run_every=3.0)
def _progress(actor: Actor, retrain_id: int, versions: tuple[ModelVersion, ...]) -> None:
    state = retrain_ui.load(retrain_id)
    if state is None:
        return
    try:
        _live(actor, state, versions)
    finally:
        _history(state.row.user_id, versions)


def _live(actor: Actor, state: RetrainState, versions: tuple[ModelVersion, ...]) -> None:
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
        st.progress(
            min(1.0, fraction),
            text=f"{inert(row.status)}: {step} · "
            f"{_elapsed(row.submitted_at or row.requested_at)} elapsed · "
            f"{retrain_ui.usual_duration(row.trainer_version)}",
        )
        st.caption("This carries on when you close the tab; come back any time.")
        reason = st.text_input("Why cancel", key=f"cancel_reason_{row.id}")
        if st.button("Cancel the training", icon=":material/cancel:", key=f"cancel_{row.id}"):
            try:
                with st.spinner("Asking Replicate to cancel the training…", show_time=True):
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
    st.success(
        f"New version {inert(version_name(row.new_version, versions))} in {inert(row.destination)}."
    )
    if row.new_version:
        st.code(row.new_version, language=None)
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
        icon=":material/check:",
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


def _history(user_id: str, versions: tuple[ModelVersion, ...]) -> None:
    """The retrains the console ran for this user (read fresh with the live view)."""
    st.subheader("Retrains run from this console")
    past = retrain_ui.history(user_id)
    if past:
        st.dataframe(retrain_ui.history_frame(past, versions), hide_index=True)
    else:
        st.caption("None yet.")


def _choose_destination(user_id: str, found: RetrainTarget) -> str:
    """The admin's choice among the user's models (the default first, saying why)."""
    default = found.destination
    return str(
        st.selectbox(
            "Train into",
            [default, *found.other_destinations],
            format_func=lambda model: (
                f"{model} (default: {found.why})"
                if model == default
                else f"{model} (another model of this user's)"
            ),
            key=f"retrain_into_{user_id}",
            help="A retrain adds a version to one of the user's own models, never a new one.",
        )
    )


def _where(found: RetrainTarget, *, drafted: bool) -> None:
    """Where the retrain goes (a draft's: where it was opened into) and why, the user's
    other models, the trigger word, the current version (named, its hash to copy) and the
    pinned trainer."""
    others = found.other_destinations
    also = ""
    if others:
        listed = ", ".join(f"**{inert(model)}**" for model in others)
        also = f" The user also has {listed}" + (
            f": choose above to train into {'it' if len(others) == 1 else 'one of them'} instead."
            if not drafted
            else "."
        )
    st.markdown(
        f"Into **{inert(found.destination)}** (the user's own model): {inert(found.why)}.{also}"
    )
    current = version_name(found.current_version, found.versions)
    st.markdown(
        f"Trigger word **{inert(found.trigger_word)}** (the one their current version "
        f"learnt); current version {inert(current)}; trainer "
        f"`{RETRAIN_TRAINER}:{RETRAIN_TRAINER_VERSION[:12]}…` (pinned)."
    )
    if found.current_version:
        st.code(found.current_version, language=None)


actor = identity.require_role_on_page(Role.ADMIN)
st.title("Retrain")
picked = user_picker.pick_user(key="retrain_user")
if picked is None:
    st.info(
        "Open a user here from their User page (a finding whose fix is a retrain links "
        "here), or type their email or id."
    )
    st.stop()
user_id = picked.user_id
st.subheader(inert(picked.email or user_id))
state = retrain_ui.current(user_id, actor)
try:
    # A draft keeps the model it was opened into; before one, the admin may choose.
    found, history, problem = retrain_ui.target(
        user_id, state.row.destination if state is not None else None
    )
    if state is None and found.other_destinations:
        into = _choose_destination(user_id, found)
        if into != found.destination:
            found, history, problem = retrain_ui.target(user_id, into)
except DashboardError as exc:
    messages.error(exc)
    st.stop()
if problem:
    messages.warning(problem)
st.caption(messages.said(history.describe().capitalize()) + ".")
_where(found, drafted=state is not None)
for note in found.notes:
    st.caption(messages.said(note))
message = st.session_state.pop("retrain_message", None)
if message:
    messages.error(message)
if state is None:
    last = retrain_ui.latest(user_id)
    if last is not None:
        with st.container(border=True):
            _live(actor, last, found.versions)  # how the last one ended, and its decision
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
            with st.spinner(
                f"Opening a draft into {inert(found.destination)}: reading the trainer's "
                "inputs and queueing the earlier photos' checks…",
                show_time=True,
            ):
                retrain_ui.start(actor, user_id, found.destination)
        except DashboardError as exc:
            messages.error(exc)
        st.rerun()
elif state.row.status == "draft":
    _uploads(actor, state.row.id)
    _draft_live(actor, state.row.id)
else:
    _progress(actor, state.row.id, found.versions)
if state is None or state.row.status == "draft":
    _history(user_id, found.versions)

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
