"""Messages from elsewhere, shown inert: an exception's, a problem's, a note or sentence
from core, an error Replicate gave.

Such a message may carry any value it names (a user id from a link, a training id, a
photo's name, a URL), so it is shown whole through ``core.text.inert`` (up to
``core.text.MESSAGE`` characters), with the URLs in it shown without their secrets
(``core.redaction.with_urls_redacted``). A page's own words around it stay as written:
``st.warning(f"Not read: {said(exc)}")``, or ``error(exc)`` for the message alone.
"""

from __future__ import annotations

import streamlit as st

from core.redaction import with_urls_redacted
from core.text import MESSAGE, inert


def said(message: object) -> str:
    """``message`` as Markdown that shows its characters, its URLs without secrets."""
    return inert(with_urls_redacted(str(message)), limit=MESSAGE)


def error(message: object, *, icon: str | None = None) -> None:
    st.error(said(message), icon=icon)


def warning(message: object, *, icon: str | None = None) -> None:
    st.warning(said(message), icon=icon)


def info(message: object, *, icon: str | None = None) -> None:
    st.info(said(message), icon=icon)


def success(message: object, *, icon: str | None = None) -> None:
    st.success(said(message), icon=icon)
