"""Blind review (product, admin): two images of the same user, prompt and seed from two
versions, in a random order, versions and scores hidden until the vote; and the results
(win rate with its interval and test for two versions, Bradley–Terry for more).

Versions are named as everywhere ("v2 · trained 3 Oct", with the id to copy beside it),
users by their email first."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st

from core.errors import Conflict, DashboardError, DatabaseUnavailable
from core.gateway.values import ModelVersion
from core.review.names import person
from core.review.people import Person
from core.review.stats import headline
from core.roles import Actor, Role
from core.text import inert
from core.versions import version_name
from dashboard import identity, messages, navigation, review_ui, tables

PAIR = "review_pair"
REVEALED = "review_revealed"
USER_BOX = "review_user"
# The ?user= this page last ran with: a new one (a row's click, a link) fills the box.
USER_PARAM_SEEN = "review_user_param"
USERS_TABLE = "review_users_table"
TAB = "tab"
VOTE, RESULTS = "Vote", "Results"
OPEN_RESULTS = "review_open_results"  # a per-user row was clicked: show its results
SIDES = {
    "left": ("Left is better", "A", ":material/arrow_back:"),
    "right": ("Right is better", "B", ":material/arrow_forward:"),
    "tie": ("Tie", "T", ":material/drag_handle:"),
    "both_bad": ("Both bad", "X", ":material/thumb_down:"),
}
PERCENT = st.column_config.NumberColumn(format="percent")
VERSION_ID = st.column_config.TextColumn(
    "version id", help="The full version id, to copy.", width="medium"
)


def _vote(actor: Actor, side: str) -> None:
    pair = st.session_state.get(PAIR)
    if pair is None:
        return
    st.session_state.pop(PAIR, None)  # the next run shows the next pair, however it went
    try:
        st.session_state[REVEALED] = review_ui.vote(
            actor, pair.pair_id, side, x_on_left=pair.x_on_left
        )
    # Kept as Markdown: the page's words, the data in them inert.
    except Conflict as exc:
        st.session_state[REVEALED] = messages.said(exc)
    except DashboardError as exc:
        st.session_state[REVEALED] = f"Not recorded: {messages.said(exc)}"


def _show_revealed(shown: str | review_ui.Reveal) -> None:
    if isinstance(shown, str):
        st.info(shown, icon=":material/visibility:")
        return
    st.info(
        f"Recorded: {SIDES[shown.side][0].lower()}. Left was {inert(shown.left.words)}, "
        f"right was {inert(shown.right.words)}.",
        icon=":material/visibility:",
    )
    for column, (label, side) in zip(
        st.columns(2), (("Left", shown.left), ("Right", shown.right)), strict=True
    ):
        column.caption(f"{label}: {inert(side.name)}")
        column.code(side.version_id, language=None)


def _who(user_id: str) -> str:
    """The user by email first; by id alone when the app's users cannot be read (the
    vote does not need them)."""
    try:
        return person(user_id, review_ui.emails([user_id]).get(user_id))
    except DashboardError:
        return user_id


def _voting(actor: Actor, user_filter: str | None) -> None:
    shown = st.session_state.pop(REVEALED, None)
    if shown:
        _show_revealed(shown)
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
        f"{pair.remaining:,} pair(s) left for you · user {inert(_who(pair.user_id))} · seed "
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


def _namer(versions: Sequence[ModelVersion]) -> Callable[[str], str]:
    return lambda version: version_name(version, versions)


def _results(chosen: Person) -> None:
    try:
        found = review_ui.results(chosen.user_id)
    except DashboardError as exc:
        messages.error(exc)
        return
    summary = found.summary
    if summary.method == "none":
        st.info("No votes yet for this user.")
        return
    name = _namer(found.versions)
    total, decisive, ties, bad = st.columns(4)
    total.metric("votes", f"{summary.total_votes:,}")
    decisive.metric("decisive", f"{summary.decisive_votes:,}")
    ties.metric("ties", f"{summary.ties:,}")
    bad.metric("both bad", f"{summary.both_bad:,}")
    if summary.head_to_head is not None:
        duel = summary.head_to_head
        messages.success(headline(summary, name), icon=":material/balance:")
        low, high = duel.interval
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "version": name(duel.first),
                        "version id": duel.first,
                        "wins": duel.first_wins,
                        "win rate": duel.win_rate,
                        "95% interval (Wilson)": f"{low:.0%}–{high:.0%}",
                        "exact binomial p": duel.p_value,
                    },
                    {
                        "version": name(duel.second),
                        "version id": duel.second,
                        "wins": duel.second_wins,
                    },
                ]
            ),
            hide_index=True,
            column_config={
                "version id": VERSION_ID,
                "win rate": PERCENT,
                "exact binomial p": st.column_config.NumberColumn(format="%.3f"),
            },
        )
        if duel.votes_to_settle:
            st.caption(
                f"About {duel.votes_to_settle:,} more decisive vote(s) at this rate would "
                "settle it (the exact test above would give p < 0.05)."
            )
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "version": name(item.version),
                        "version id": item.version,
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
            column_config={"version id": VERSION_ID},
        )
    st.dataframe(
        pd.DataFrame(
            [
                {"version": name(version), "version id": version, "both bad": rate}
                for version, rate in summary.both_bad_rate.items()
            ]
        ),
        hide_index=True,
        column_config={"version id": VERSION_ID, "both bad": PERCENT},
    )


def _overview() -> None:
    """All users: earlier vs later version pooled, then one row per user (click: open)."""
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
                f"About {pooled.votes_to_settle:,} more decisive vote(s) at this rate would "
                "settle it."
            )
    else:
        st.info("No vote yet between two versions of known age.")
    if found.unknown_age:
        st.caption(
            f"{found.unknown_age:,} vote(s) left out: a version the training history has no "
            "date for."
        )
    st.subheader("Per user")
    user_ids = list(found.per_user)
    table = pd.DataFrame(
        [
            {
                "email": found.emails.get(user_id),
                "user": user_id,
                "versions": len(summary.versions),
                "votes": summary.total_votes,
                "decisive": summary.decisive_votes,
                "both bad": summary.both_bad,
                "result": headline(summary, _namer(found.versions.get(user_id, ()))),
            }
            for user_id, summary in found.per_user.items()
        ],
        columns=["email", "user", "versions", "votes", "decisive", "both bad", "result"],
    )
    selection = st.dataframe(
        table,
        hide_index=True,
        on_select="rerun",
        selection_mode=tables.OPEN_ON_CLICK,
        key=USERS_TABLE,
        column_config={"result": st.column_config.TextColumn(width="large")},
    )
    picked = tables.picked_row(selection, len(user_ids))
    if picked is not None:
        # The tab is bound to ?tab=, which a switch may not set: the next run selects it.
        st.session_state[OPEN_RESULTS] = True
        navigation.go(navigation.review_page(), user=user_ids[picked])
    st.caption("Click a row for that user's results with intervals.")


def _user_box() -> str:
    """The "Only this user" box, kept in ``?user=``: a new ``?user=`` fills it."""
    asked = st.query_params.get("user", "")
    if st.session_state.get(USER_PARAM_SEEN) != asked or USER_BOX not in st.session_state:
        st.session_state[USER_BOX] = asked
    typed = st.text_input(
        "Only this user (optional)", key=USER_BOX, placeholder="email or user id"
    ).strip()
    if typed:
        st.query_params["user"] = typed
    else:
        st.query_params.pop("user", None)
    st.session_state[USER_PARAM_SEEN] = typed
    return typed


def _chosen_header(chosen: Person) -> None:
    st.caption(f"Only {inert(person(chosen.user_id, chosen.email))}.")
    open_user, compare = st.columns(2)
    if open_user.button("Open the user", icon=":material/person:", key="review_open_user"):
        navigation.open_user(chosen.user_id)
    if compare.button(
        "Compare this user's versions", icon=":material/compare:", key="review_open_compare"
    ):
        navigation.go(navigation.compare_page(), user=chosen.user_id)


actor = identity.require_role_on_page(Role.PRODUCT, Role.ADMIN)
st.title("Blind review")
user_text = _user_box()
chosen: Person | None = None
if user_text:
    try:
        chosen = review_ui.user_named(user_text)
    except DatabaseUnavailable as exc:
        # The votes live in schema ops: without the app's users, filter by the id as typed.
        st.warning(
            f"Emails cannot be looked up now, so this is taken as a user id: {messages.said(exc)}"
        )
        chosen = Person(user_text, None)
    except DashboardError as exc:
        messages.error(exc)
        st.stop()
    _chosen_header(chosen)
# Kept in ?tab=, and set after a per-user row's click: it lands on that user's results.
if st.session_state.pop(OPEN_RESULTS, False):
    st.session_state[TAB] = RESULTS
vote_tab, results_tab = st.tabs([VOTE, RESULTS], key=TAB, bind="query-params")
with vote_tab:
    _voting(actor, chosen.user_id if chosen else None)
with results_tab:
    if chosen:
        _results(chosen)
    else:
        _overview()
