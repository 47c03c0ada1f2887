"""The User page's decision controls (admins): leave a finding as it is, with a reason, or
withdraw a decision. The core checks the role, stores the decision against the row as it
was shown (bound to the click, not read again), and audits it; the next diagnosis reports
the finding as kept by it while the row and the trainings stay as they were."""

from __future__ import annotations

from dataclasses import asdict

import streamlit as st

from core.decisions import record_decision, withdraw_decision
from core.drift import Finding
from core.drift.facts import AppRow
from core.errors import DashboardError
from core.roles import Actor
from dashboard import messages
from dashboard.resources import runtime, writing

MESSAGE = "decision_message"


def decision_controls(actor: Actor, finding: Finding, row: AppRow) -> None:
    """ "Leave as is…" for a finding, or "Withdraw…" for one a decision keeps."""
    decision = finding.evidence.get("decision")
    if isinstance(decision, dict):
        decision_id = int(decision["id"])
        with st.popover(f"Withdraw decision #{decision_id}…", icon=":material/undo:"):
            st.caption("The finding is judged afresh from the next look at this user.")
            key = f"withdraw_reason_{decision_id}"
            st.text_input("Why (audited)", key=key)
            st.button(
                "Withdraw the decision",
                key=f"withdraw_{decision_id}",
                on_click=_withdraw,
                args=(actor, decision_id, key),
            )
        return
    with st.popover("Leave as is…", icon=":material/do_not_disturb_on:"):
        st.caption(
            "The finding is then reported as kept by your decision, at info, while this "
            "row stays as it is and the user does not train again; either brings it back."
        )
        key = f"leave_reason_{row.user_id}_{finding.code}"
        st.text_input("Why (kept with the decision, audited)", key=key)
        st.button(
            "Leave it as it is",
            key=f"leave_{row.user_id}_{finding.code}",
            on_click=_leave,
            args=(actor, finding.code, asdict(row), key),
        )


def show_message() -> None:
    message = st.session_state.pop(MESSAGE, None)
    if message:
        messages.error(message)


def _leave(actor: Actor, code: str, row: dict[str, object], reason_key: str) -> None:
    try:
        with writing(runtime().ops_engine) as conn, conn.begin():
            record_decision(
                conn,
                actor,
                user_id=str(row["user_id"]),
                code=code,
                kind="leave_as_is",
                reason=str(st.session_state.get(reason_key) or ""),
                app_row=row,
            )
    except DashboardError as exc:
        st.session_state[MESSAGE] = str(exc)


def _withdraw(actor: Actor, decision_id: int, reason_key: str) -> None:
    try:
        with writing(runtime().ops_engine) as conn, conn.begin():
            withdraw_decision(
                conn, actor, decision_id, reason=str(st.session_state.get(reason_key) or "")
            )
    except DashboardError as exc:
        st.session_state[MESSAGE] = str(exc)
