"""A confirmation dialog whose button acts once: the paid or written work it confirms is
requested with a token made when the dialog opens (the database refuses a token twice),
and the button is disabled from the click until the answer, so a double click or a
rerun cannot send it again. Pages keep one per dialog, named for its session keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class ConfirmOnce:
    name: str  # the session keys are "<name>_confirm" (the token) and "<name>_submitting"

    @property
    def token_key(self) -> str:
        return f"{self.name}_confirm"

    @property
    def submitting_key(self) -> str:
        return f"{self.name}_submitting"

    @property
    def token(self) -> str | None:
        """The open dialog's token (None: the dialog is closed)."""
        token = st.session_state.get(self.token_key)
        return str(token) if token else None

    @property
    def submitting(self) -> bool:
        """Whether the button was clicked and its work not yet answered."""
        return bool(st.session_state.get(self.submitting_key))

    def open(self) -> None:
        """Open the dialog with a new token (a button's ``on_click``)."""
        st.session_state[self.token_key] = uuid.uuid4().hex
        st.session_state[self.submitting_key] = False

    def close(self) -> None:
        """Close it (done, or dismissed: the dialog's ``on_dismiss``)."""
        st.session_state.pop(self.token_key, None)
        st.session_state[self.submitting_key] = False

    def press(self) -> None:
        """The confirm button's ``on_click``: disabled from now on."""
        st.session_state[self.submitting_key] = True

    def failed(self) -> None:
        """The work was refused: the button may be clicked again (same token)."""
        st.session_state[self.submitting_key] = False
