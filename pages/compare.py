"""Compare: a user's versions side by side on the same prompt and seeds (the app's exact
input, the latest version, the way Replicate's site runs it), scored against the user's
own photos; every comparison saved and browsable (``?comparison=ID``)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time

import streamlit as st

from core.compare.columns import DEFAULT_COLUMNS, MAX_COLUMNS
from core.compare.inputs import PRESETS
from core.compare.plan import DEFAULT_SEEDS, MAX_SEEDS, ComparePlan
from core.errors import DashboardError, DataRejected, PermissionDenied
from core.facts import History
from core.roles import Actor
from core.text import inert
from dashboard import compare_ui, compare_view, identity, messages, tables, user_picker
from dashboard.confirm_once import ConfirmOnce
from dashboard.history import history_kept_fresh, wait_for_history
from dashboard.resources import runtime

FREE_TEXT = "free text"
CONFIRM = ConfirmOnce("compare")  # the confirmation dialog's token and button


def _history_caption(history: History) -> None:
    """How fresh the versions listed are; while the workers sync the history, the page
    is drawn again when they are done (a new version may appear)."""
    st.caption(messages.said(history.describe().capitalize()) + ".")
    if history.syncing:
        wait_for_history()


def _seeds(user_id: str, count: int) -> tuple[int, ...]:
    """This tab's seeds for the user (kept until "New seeds"), shared by every column."""
    key = f"compare_seeds_{user_id}_{count}"
    if key not in st.session_state:
        st.session_state[key] = tuple(random.SystemRandom().sample(range(1, 2**31 - 1), count))
    seeds: tuple[int, ...] = st.session_state[key]
    return seeds


def _new_seeds(user_id: str, count: int) -> None:
    st.session_state.pop(f"compare_seeds_{user_id}_{count}", None)


@st.dialog("Run this comparison?", width="large", on_dismiss=CONFIRM.close)
def _confirm(actor: Actor, planned: ComparePlan, estimate: str, left: str) -> None:
    token = CONFIRM.token
    st.markdown(
        f"**{planned.image_count} predictions** on Replicate ({len(planned.columns)} columns "
        f"× {len(planned.seeds)} seeds{' + the repeat of A' if planned.repeat else ''}), "
        f"estimated at **{estimate}**. Your budget today: {left}."
    )
    st.caption(
        "They run in the background: you can leave this page; the comparison is saved "
        "with its images and shows on the History tab."
    )
    submitting = CONFIRM.submitting
    st.button(
        "Confirm and run",
        type="primary",
        icon=":material/play_arrow:",
        on_click=CONFIRM.press,
        disabled=submitting,
        key=f"confirm_{token}",
    )
    if submitting and token:
        try:
            comparison_id = compare_ui.request(actor, planned, token)
        except DashboardError as exc:
            CONFIRM.failed()
            messages.error(exc)
            return
        CONFIRM.close()
        st.query_params["comparison"] = str(comparison_id)
        st.rerun()


def _new(actor: Actor) -> None:
    picked = user_picker.pick_user(key="compare_user")
    if picked is None:
        st.info("Enter a user's email or id, or open Compare from a user's page.")
        return
    user_id = picked.user_id
    try:
        found, ledger_problem = compare_ui.facts(user_id)
    except DashboardError as exc:
        messages.error(exc)
        return
    if ledger_problem:
        messages.warning(ledger_problem)
    _history_caption(history_kept_fresh())
    st.caption(
        f"{inert(found.email or 'no email')} · row's trigger word "
        f"{inert(found.profile.trigger_word)} · stored version {inert(found.stored or 'none')} · "
        f"model {inert(found.model_id or 'none')} · "
        f"{len(found.versions)} version(s) from the user's trainings"
    )
    options = list(DEFAULT_COLUMNS) + [f"v{item.number}" for item in found.versions]
    asked = [name for name in st.query_params.get("columns", "").split(",") if name in options]
    columns = st.multiselect(
        "Columns (A, B, … in this order)",
        options,
        default=asked or list(DEFAULT_COLUMNS),
        max_selections=MAX_COLUMNS,
        help="stored: the version in the app's row, with the app's input · latest: the "
        "model's latest version, app's input · site: the latest as Replicate's site runs it "
        "(schema defaults, the trained trigger word) · vN: the user's Nth version",
    )
    prompt_column, seeds_column = st.columns([3, 1])
    choice = prompt_column.radio(
        "Prompt", [*PRESETS, FREE_TEXT], horizontal=True, key="compare_preset"
    )
    free_text = (
        prompt_column.text_area("Your prompt (the trigger word is added as each column does)")
        if choice == FREE_TEXT
        else ""
    )
    if choice != FREE_TEXT:
        prompt_column.caption(PRESETS[choice].prompt)
    count = int(
        seeds_column.number_input("Seeds", 1, MAX_SEEDS, DEFAULT_SEEDS, key="compare_seed_count")
    )
    repeat = seeds_column.checkbox(
        "Repeat A (noise floor)", value=True, help="Column A run again with the same seeds"
    )
    seeds = _seeds(user_id, count)
    seeds_column.button("New seeds", on_click=_new_seeds, args=(user_id, count))
    if not columns:
        st.info("Choose at least one column.")
        return
    if choice == FREE_TEXT and not free_text.strip():
        st.info("Type a prompt, or pick a preset.")
        return
    try:
        planned = compare_ui.plan(
            user_id,
            tuple(columns),
            None if choice == FREE_TEXT else choice,
            free_text.strip() or None,
            seeds,
            repeat,
        )
    except DataRejected as exc:
        messages.warning(exc)
        return
    except DashboardError as exc:
        messages.error(exc)
        return
    for note in planned.notes:
        messages.info(note, icon=":material/info:")
    ignored = [
        f"{c.column.letter}: {inert(', '.join(c.ignored))}" for c in planned.columns if c.ignored
    ]
    if ignored:
        st.warning(
            "Replicate will ignore inputs these versions do not declare: " + "; ".join(ignored)
        )
    st.markdown("**What each column sends** (seed aside; differences first)")
    st.dataframe(
        compare_view.diff_frame([column.to_json() for column in planned.columns]),
        hide_index=True,
        height="content",
    )
    live_price = runtime().settings.compare_price_per_image_usd
    estimate = f"${planned.estimate_usd(live_price):.2f}"
    budget = compare_ui.budget(actor)
    left = f"${budget.remaining:.2f} left of ${budget.daily + budget.granted:.2f}"
    st.markdown(
        f"{planned.image_count} images × ${live_price:.3f} = **{estimate}** · seeds "
        f"{', '.join(map(str, seeds))} · your budget today: {left}"
    )
    st.button("Run comparison…", type="primary", icon=":material/compare:", on_click=CONFIRM.open)
    if CONFIRM.token:
        _confirm(actor, planned, estimate, left)


def _history() -> None:
    user_column, who_column, since_column, verdict_column = st.columns(4)
    user_id = user_column.text_input("User id", key="history_user").strip()
    who = who_column.selectbox(
        "Asked by", compare_ui.who_compared(), index=None, placeholder="anyone"
    )
    since = since_column.date_input("Since", value=None, key="history_since")
    verdict = verdict_column.text_input("Verdict contains", key="history_verdict").strip()
    if "\x00" in user_id + verdict:
        st.error("Filters are plain text.")
        return
    rows = compare_ui.past(
        user_id=user_id or None,
        requested_by=who,
        since=datetime.combine(since, time(), tzinfo=UTC) if since else None,
        verdict_contains=verdict or None,
    )
    if not rows:
        st.info(
            "No comparison matches."
            if user_id or who or since or verdict
            else "No comparisons yet."
        )
        return
    frame = compare_view.history_frame(rows)
    picked = tables.picked_row(
        st.dataframe(
            frame,
            hide_index=True,
            on_select="rerun",
            selection_mode=tables.OPEN_ON_CLICK,
            key="history_table",
        ),
        len(rows),
    )
    st.caption(f"{len(rows)} comparison(s), newest first; click one to open it.")
    if picked is not None:
        st.query_params["comparison"] = str(rows[picked].id)
        st.rerun()


def _open_new() -> None:
    st.query_params.pop("comparison", None)


actor = identity.current_actor()
st.title("Compare")
raw_id = st.query_params.get("comparison")
if raw_id:
    st.button("← New comparison or history", on_click=_open_new)
    if not raw_id.isdigit():
        st.error(f"{inert(repr(raw_id))} is not a comparison number.")
    else:
        compare_view.show(actor, int(raw_id))
    st.stop()
new_tab, history_tab = st.tabs(["New comparison", "History"])
with new_tab:
    try:
        _new(actor)
    except PermissionDenied as exc:
        messages.error(exc)
with history_tab:
    _history()
