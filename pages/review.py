"""Blind review (product, admin): two images of the same user, prompt and seed from two
versions, in a random order, versions and scores hidden until the vote; and the results
(win rate with its interval and test for two versions, Bradley–Terry for more)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import Conflict, DashboardError
from core.review.stats import ReviewSummary, headline
from core.roles import Actor, Role
from core.text import inert
from core.versions import short_version
from dashboard import identity, messages, review_ui

PAIR = "review_pair"
REVEALED = "review_revealed"
SIDES = {
    "left": ("Left is better", "A", ":material/arrow_back:"),
    "right": ("Right is better", "B", ":material/arrow_forward:"),
    "tie": ("Tie", "T", ":material/drag_handle:"),
    "both_bad": ("Both bad", "X", ":material/thumb_down:"),
}


def _vote(actor: Actor, side: str) -> None:
    pair = st.session_state.get(PAIR)
    if pair is None:
        return
    st.session_state.pop(PAIR, None)  # the next run shows the next pair, however it went
    try:
        revealed = review_ui.vote(actor, pair.pair_id, side, x_on_left=pair.x_on_left)
    # Kept as Markdown: the page's words, the data in them inert.
    except Conflict as exc:
        st.session_state[REVEALED] = messages.said(exc)
        return
    except DashboardError as exc:
        st.session_state[REVEALED] = f"Not recorded: {messages.said(exc)}"
        return
    st.session_state[REVEALED] = (
        f"Recorded: {SIDES[side][0].lower()}. Left was "
        f"{inert(short_version(revealed.left_version))}, right was "
        f"{inert(short_version(revealed.right_version))}."
    )


def _voting(actor: Actor, user_filter: str | None) -> None:
    said = st.session_state.pop(REVEALED, None)
    if said:
        st.info(said, icon=":material/visibility:")
    pair = st.session_state.get(PAIR)
    if pair is None or (user_filter and pair.user_id != user_filter):
        try:
            pair = review_ui.pair_for(actor.email, user_filter)
        except DashboardError as exc:
            messages.error(exc)
            return
        st.session_state[PAIR] = pair
    if pair is None:
        st.success(
            "Nothing left to vote on"
            + (" for this user" if user_filter else "")
            + ". New pairs appear as comparisons finish (the Compare page)."
        )
        return
    st.caption(
        f"{pair.remaining} pair(s) left for you · user {inert(pair.user_id)} · seed "
        f"{inert(pair.seed)} · prompt: {messages.said(pair.prompt)}"
    )
    left, right = st.columns(2)
    left.image(pair.left_preview, caption="Left", width="stretch")
    right.image(pair.right_preview, caption="Right", width="stretch")
    for column, (side, (label, key, icon)) in zip(st.columns(4), SIDES.items(), strict=True):
        column.button(
            f"{label} ({key})",
            key=f"vote_{side}_{pair.pair_id}",
            icon=icon,
            shortcut=key,
            on_click=_vote,
            args=(actor, side),
            width="stretch",
        )
    st.caption("Keyboard: A left, B right, T tie, X both bad. Versions show after your vote.")


def _names(summary: ReviewSummary) -> dict[str, str]:
    return {version: short_version(version) for version in summary.versions}


def _results(user_filter: str | None) -> None:
    try:
        summary = review_ui.results(user_filter)
    except DashboardError as exc:
        messages.error(exc)
        return
    if summary.method == "none":
        st.info("No votes yet" + (" for this user." if user_filter else "."))
        return
    names = _names(summary)
    total, decisive, ties, bad = st.columns(4)
    total.metric("votes", summary.total_votes)
    decisive.metric("decisive", summary.decisive_votes)
    ties.metric("ties", summary.ties)
    bad.metric("both bad", summary.both_bad)
    if summary.head_to_head is not None:
        duel = summary.head_to_head
        text = duel.verdict
        for version, short in names.items():
            text = text.replace(version, short)
        messages.success(text, icon=":material/balance:")
        low, high = duel.interval
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "version": names[duel.first],
                        "wins": duel.first_wins,
                        "win rate": "—" if duel.win_rate is None else f"{duel.win_rate:.0%}",
                        "95% interval (Wilson)": f"{low:.0%}–{high:.0%}",
                        "exact binomial p": f"{duel.p_value:.3f}",
                    },
                    {"version": names[duel.second], "wins": duel.second_wins},
                ]
            ),
            hide_index=True,
        )
        if duel.votes_to_settle:
            st.caption(
                f"About {duel.votes_to_settle} more decisive vote(s) at this rate would "
                "settle it (the exact test above would give p < 0.05)."
            )
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "version": names[item.version],
                        "strength (Bradley–Terry)": round(item.strength, 3),
                        "95% bootstrap interval": "—"
                        if item.low is None or item.high is None
                        else f"{item.low:.2f} to {item.high:.2f}",
                        "decisive votes": item.votes,
                    }
                    for item in summary.strengths
                ]
            ),
            hide_index=True,
        )
    st.dataframe(
        pd.DataFrame(
            [
                {"version": names.get(version, version), "both bad": f"{rate:.0%}"}
                for version, rate in summary.both_bad_rate.items()
            ]
        ),
        hide_index=True,
    )


def _open_user(table_key: str, user_ids: list[str]) -> None:
    rows = st.session_state[table_key].selection.rows
    if rows:
        st.session_state["review_user"] = user_ids[rows[0]]


def _overview() -> None:
    """All users: earlier vs later version pooled, then one row per user (click: filter)."""
    try:
        found = review_ui.overview()
    except DashboardError as exc:
        messages.error(exc)
        return
    if not found.per_user:
        st.info("No votes yet.")
        return
    st.subheader("Across users: the earlier version against the later one")
    pooled = found.by_age.head_to_head
    if pooled is not None:
        messages.success(pooled.verdict, icon=":material/balance:")
        if pooled.votes_to_settle:
            st.caption(
                f"About {pooled.votes_to_settle} more decisive vote(s) at this rate would "
                "settle it."
            )
    else:
        st.info("No vote yet between two versions of known age.")
    if found.unknown_age:
        st.caption(
            f"{found.unknown_age} vote(s) left out: a version the training history has no date for."
        )
    st.subheader("Per user")
    user_ids = list(found.per_user)
    table = pd.DataFrame(
        [
            {
                "user": user_id,
                "versions": len(summary.versions),
                "votes": summary.total_votes,
                "decisive": summary.decisive_votes,
                "both bad": summary.both_bad,
                "result": headline(summary, short_version),
            }
            for user_id, summary in found.per_user.items()
        ]
    )
    st.dataframe(
        table,
        hide_index=True,
        on_select=lambda: _open_user("review_users_table", user_ids),
        selection_mode="single-row",
        key="review_users_table",
        column_config={"result": st.column_config.TextColumn(width="large")},
    )
    st.caption("Click a row for that user's results with intervals.")


actor = identity.require_role_on_page(Role.PRODUCT, Role.ADMIN)
st.title("Blind review")
if "review_user" not in st.session_state:
    st.session_state["review_user"] = st.query_params.get("user", "")
user_text = st.text_input("Only this user (optional)", key="review_user").strip()
if user_text:
    st.query_params["user"] = user_text
else:
    st.query_params.pop("user", None)
vote_tab, results_tab = st.tabs(["Vote", "Results"])
with vote_tab:
    _voting(actor, user_text or None)
with results_tab:
    if user_text:
        _results(user_text)
    else:
        _overview()
