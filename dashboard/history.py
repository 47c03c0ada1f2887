"""The training history for pages: one user's trainings read again, the ledger's
freshness, and a watch while the workers sync it.

A page asks Replicate about one user only (``core.ledger.sync_user``: the row's training
and the user's unfinished ones, by id; nothing when the ledger already has them). The
account's listing is the workers' (``core.facts.request_history_refresh``): a page that
finds the history older than ``HISTORY_FRESH_SECONDS`` queues one sync, and
``wait_for_history`` draws the page again when it has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import streamlit as st

from core.errors import ReplicateError
from core.facts import History, read_history, request_history_refresh
from core.ledger.sync import sync_user
from dashboard.resources import read_only, runtime, writing

USER_REFRESH_TTL_SECONDS = 60
POLL_SECONDS = 2.0


@st.cache_data(
    ttl=USER_REFRESH_TTL_SECONDS, max_entries=256, show_spinner="Reading this user's trainings…"
)
def _refresh_user(_replicate_base_url: str, user_id: str) -> str | None:
    live = runtime()
    try:
        sync_user(
            ops_engine=live.ops_engine,
            app_engine=live.engine,
            gateway=live.gateway,
            user_id=user_id,
        )
    except ReplicateError as exc:
        return f"This user's trainings could not be read again ({exc}); using what is stored."
    return None


def refresh_user(user_id: str) -> str | None:
    """Bring the ledger up to date for ``user_id`` by id; a problem as text, or None."""
    return _refresh_user(runtime().replicate_base_url, user_id)


def fresh_within() -> timedelta:
    return timedelta(seconds=runtime().settings.history_fresh_seconds)


def history_now() -> History:
    """The training history's freshness, and whether the workers are syncing it."""
    with read_only(runtime().ops_engine) as ops:
        return read_history(ops, fresh_within=fresh_within())


def history_kept_fresh() -> History:
    """``history_now``, with a sync queued for the workers when it is stale."""
    found = history_now()
    if found.fresh or found.syncing:
        return found
    with writing(runtime().ops_engine) as conn, conn.begin():
        request_history_refresh(conn)
    return replace(found, syncing=True)


def wait_for_history(before_rerun: Callable[[], None] | None = None) -> None:
    """A fragment that draws the page again once the workers' sync has ended."""

    @st.fragment(run_every=POLL_SECONDS)
    def watch() -> None:
        if not history_now().syncing:
            if before_rerun is not None:
                before_rerun()
            st.rerun(scope="app")

    watch()
