"""Server-side paging shared by the paged pages (Users, Audit log)."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st


def requested_page(key: str) -> int:
    """The page asked for: the widget's state, else the URL (before the widget exists)."""
    raw = st.session_state.get(key) or st.query_params.get(key) or 1
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 1


def back_to_first_page(key: str) -> Callable[[], None]:
    """An ``on_change`` callback for a filter: a new filter starts on page 1."""

    def reset() -> None:
        st.session_state[key] = 1

    return reset
