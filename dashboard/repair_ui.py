"""The User page's repair controls: a button per repairable finding, the confirmation
dialog (row before and after, a reason, Apply), the result with Undo, and the undo dialog.

How one click stays one repair (streamlit-notes: "Long work, polling, double submission"):
- a dialog is opened from a session_state flag set by the button's ``on_click``, never
  from the button's return value, and carries a fresh ``nonce`` (the idempotency key);
- Apply's ``on_click`` marks that nonce as submitting; Apply is rendered disabled while it
  is, BEFORE the repair runs, so the browser greys it out at once;
- the repair runs only for a nonce not used yet, and the core refuses a stale preview
  (the row must still hold the previewed values), so even a second tab cannot apply twice.
Hiding the buttons from support and product is presentation: ``apply_repair`` and
``undo_repair`` check the role again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import streamlit as st

from core.audit_words import action_words
from core.drift import Finding, RepairAction, UserFacts
from core.errors import Conflict, DashboardError, DataRejected, Problem, ProblemKind
from core.repairs import RepairPlan
from core.roles import Actor
from core.text import inert
from dashboard import actions, drift_tables, loaders, messages

OPEN = "repair_open"
UNDO_OPEN = "undo_open"
SUBMITTING = "repair_submitting"
USED = "repair_used_nonces"
DONE = "repair_done"

REPAIR_LABELS: Mapping[RepairAction, str] = {
    RepairAction.REPOINT_LATEST: "Repoint to the latest version",
    RepairAction.NORMALISE_VERSION: "Store the bare version id",
    RepairAction.RESTORE_TRIGGER_WORD: "Restore the trained trigger word",
    RepairAction.RESTORE_LAST_GOOD_VERSION: "Restore the last good version",
    RepairAction.SYNC_STATUS: "Sync the status from Replicate",
}


# -- session state -------------------------------------------------------------------------


def _open_repair(user_id: str, action: str) -> None:
    st.session_state[OPEN] = {"user_id": user_id, "action": action, "nonce": uuid.uuid4().hex}
    st.session_state.pop(UNDO_OPEN, None)


def _open_undo(user_id: str, audit_id: int) -> None:
    st.session_state[UNDO_OPEN] = {
        "user_id": user_id,
        "audit_id": audit_id,
        "nonce": uuid.uuid4().hex,
    }
    st.session_state.pop(OPEN, None)


def _close() -> None:
    st.session_state.pop(OPEN, None)
    st.session_state.pop(UNDO_OPEN, None)


def _submit(nonce: str) -> None:
    st.session_state[SUBMITTING] = nonce


def _take(nonce: str) -> bool:
    """Use the idempotency key ``nonce``; False when it was used already."""
    used: set[str] = st.session_state.setdefault(USED, set())
    if nonce in used:
        return False
    used.add(nonce)
    return True


def _release(nonce: str, message: Problem) -> None:
    """A refused attempt (no reason, a conflict): the key may be used again."""
    st.session_state.setdefault(USED, set()).discard(nonce)
    st.session_state[SUBMITTING] = None
    st.session_state[f"repair_message_{nonce}"] = message


def _preview_again(user_id: str, action: str) -> None:
    _open_repair(user_id, action)


# -- the page's parts ----------------------------------------------------------------------


def repair_button(finding: Finding, user_id: str) -> None:
    """The button that opens the repair dialog for ``finding`` (repairable ones only)."""
    action = finding.fix.action
    if action is None:
        return
    st.button(
        REPAIR_LABELS.get(action, action.value),
        key=f"repair_{finding.code}",
        icon=":material/build:",
        on_click=_open_repair,
        args=(user_id, action.value),
        help="Preview the change to the user's row, then confirm with a reason",
    )


def undo_button(user_id: str, audit_id: int, *, key: str = "undo_repair") -> None:
    """Undo for repair ``audit_id`` of ``user_id`` (asks for a reason in the undo dialog)."""
    st.button(
        "Undo",
        key=key,
        icon=":material/undo:",
        on_click=_open_undo,
        args=(user_id, audit_id),
        help="Put back what the repair replaced (asks for a reason; refused if the row "
        "changed since)",
    )


def show_last_repair(user_id: str) -> None:
    """After a reload or in another tab: the user's newest repair not undone yet, with
    Undo (the session's own result, when there is one, says it instead)."""
    done: dict[str, Any] | None = st.session_state.get(DONE)
    if done and done.get("user_id") == user_id:
        return
    record = loaders.last_undoable_repair(user_id)
    if record is None:
        return
    st.caption(
        f"Last repair (#{record.id}): {action_words(record.action)}, by "
        f"{inert(record.actor_email)} at {record.at:%Y-%m-%d %H:%M} UTC."
    )
    undo_button(user_id, record.id)


def show_result(user_id: str, *, may_repair: bool) -> None:
    """The last repair or undo of this user in this session, with Undo for a repair."""
    done: dict[str, Any] | None = st.session_state.get(DONE)
    if not done or done.get("user_id") != user_id:
        if may_repair:
            show_last_repair(user_id)
        return
    st.success(done["message"], icon=":material/check_circle:")  # the page's words
    if done.get("rescan"):
        st.caption(done["rescan"])  # Markdown, its data inert (actions.rescan_user)
    if may_repair and done.get("undoable"):
        undo_button(user_id, int(done["audit_id"]))


def open_dialogs(actor: Actor, user_id: str, facts: UserFacts | None) -> None:
    """Show the repair or undo dialog when its flag is set for this user."""
    wanted = st.session_state.get(OPEN)
    if wanted and wanted["user_id"] == user_id and facts is not None:
        _repair_dialog(actor, facts, RepairAction(wanted["action"]), wanted["nonce"])
        return
    undo = st.session_state.get(UNDO_OPEN)
    if undo and undo["user_id"] == user_id:
        _undo_dialog(actor, user_id, int(undo["audit_id"]), undo["nonce"])


# -- the dialogs ---------------------------------------------------------------------------


def _plan(facts: UserFacts, action: RepairAction, nonce: str) -> RepairPlan | None:
    """The previewed plan, computed once per dialog (the same one Apply sends)."""
    key = f"repair_plan_{nonce}"
    if key not in st.session_state:
        try:
            st.session_state[key] = actions.preview_repair(action, facts)
        except DataRejected as exc:
            messages.warning(exc)
            return None
        except DashboardError as exc:
            messages.error(exc)
            return None
    plan: RepairPlan = st.session_state[key]
    return plan


@st.dialog("Repair this user's row", width="large", on_dismiss=_close)
def _repair_dialog(actor: Actor, facts: UserFacts, action: RepairAction, nonce: str) -> None:
    st.markdown(
        f"**{REPAIR_LABELS.get(action, action.value)}** for user {inert(facts.row.user_id)}"
    )
    plan = _plan(facts, action, nonce)
    if plan is None:
        st.button("Close", key=f"repair_close_{nonce}", on_click=_close)
        return
    st.markdown(messages.said(plan.explanation))
    st.dataframe(drift_tables.plan_frame(plan), hide_index=True)
    message = st.session_state.get(f"repair_message_{nonce}")
    if isinstance(message, Problem) and message.kind is ProblemKind.CONFLICT:
        messages.error(message)
        st.button(
            "Preview again",
            key=f"repair_again_{nonce}",
            icon=":material/refresh:",
            on_click=_preview_again,
            args=(facts.row.user_id, action.value),
        )
        return
    if message:
        messages.error(message)
    reason = st.text_area(
        "Reason (required; stored in the audit log)",
        key=f"repair_reason_{nonce}",
        placeholder="The ticket, what the user reported…",
    )
    submitting = st.session_state.get(SUBMITTING) == nonce
    st.button(
        "Apply",
        key=f"repair_apply_{nonce}",
        type="primary",
        on_click=_submit,
        args=(nonce,),
        disabled=submitting,
    )
    if submitting:
        _apply(actor, plan, reason, nonce)


def _apply(actor: Actor, plan: RepairPlan, reason: str, nonce: str) -> None:
    if not _take(nonce):  # this dialog's repair already ran (a repeated click)
        st.session_state[SUBMITTING] = None
        _close()
        st.rerun()
    try:
        with st.spinner("Repairing…"):
            audit_id = actions.repair(actor, plan, reason)
    except Conflict as exc:
        _release(nonce, Problem.of(exc))
        st.rerun()
    except DashboardError as exc:  # no reason given, not allowed
        _release(nonce, Problem.of(exc))
        st.rerun()
    with st.spinner("Rescanning this user…"):
        rescan = actions.rescan_user(actor, plan.user_id)
    st.session_state[SUBMITTING] = None
    st.session_state[DONE] = {
        "user_id": plan.user_id,
        "audit_id": audit_id,
        "undoable": True,
        "rescan": rescan,
        "message": (
            f"Repaired: {REPAIR_LABELS.get(plan.action, plan.action.value)}. "
            f"Audit record #{audit_id}."
        ),
    }
    _close()
    st.rerun()


@st.dialog("Undo a repair", width="large", on_dismiss=_close)
def _undo_dialog(actor: Actor, user_id: str, audit_id: int, nonce: str) -> None:
    st.markdown(
        f"Put back what repair **#{audit_id}** replaced in the row of {inert(user_id)}. "
        "Refused if the row changed since the repair."
    )
    message = st.session_state.get(f"repair_message_{nonce}")
    if message:
        messages.error(message)
    reason = st.text_area("Reason (required; stored in the audit log)", key=f"undo_reason_{nonce}")
    submitting = st.session_state.get(SUBMITTING) == nonce
    st.button(
        "Undo repair",
        key=f"undo_apply_{nonce}",
        type="primary",
        on_click=_submit,
        args=(nonce,),
        disabled=submitting,
    )
    if not submitting:
        return
    if not _take(nonce):  # this undo already ran (a repeated click)
        st.session_state[SUBMITTING] = None
        _close()
        st.rerun()
    try:
        with st.spinner("Undoing…"):
            undo_id = actions.undo(actor, audit_id, reason)
    except DashboardError as exc:
        _release(nonce, Problem.of(exc))
        st.rerun()
    with st.spinner("Rescanning this user…"):
        rescan = actions.rescan_user(actor, user_id)
    st.session_state[SUBMITTING] = None
    st.session_state[DONE] = {
        "user_id": user_id,
        "audit_id": undo_id,
        "undoable": False,
        "rescan": rescan,
        "message": f"Repair #{audit_id} undone. Audit record #{undo_id}.",
    }
    _close()
    st.rerun()
