"""Server-side paging shared by the paged pages (Users, Audit log)."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboard.messages import said


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


def asked_page(key: str) -> str | None:
    """The page number the address asks for, as written: None when it asks for none, or
    once the page's ``st.pagination`` holds the number (then the person is paging, and a
    new filter may shrink the list under a page the address still names). Read it before
    the widget runs: the widget drops a number it cannot show from the address."""
    if key in st.session_state:
        return None
    asked = st.query_params.get(key)
    return None if asked is None else str(asked)


def page_refusal(asked: str | None, *, shown: int, page_count: int) -> str | None:
    """Why the page the address asked for is not the one shown (the sentence for the
    page, the asked value already inert), or None when it was shown or none was asked."""
    if asked is None or not asked.strip():
        return None
    try:
        if 1 <= int(asked) <= page_count:
            return None
    except ValueError:
        pass  # not a number: refused below like a number out of range
    numbered = "only page 1" if page_count == 1 else f"pages 1 to {page_count}"
    return (
        f"There is no page '{said(asked.strip())}': this list has {numbered}, so page "
        f"{shown} is shown."
    )
