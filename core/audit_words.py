"""The audit log in staff's words: each action key as a sentence, and a record's change
as a list of fields (field: before → after).

An audit record's ``action`` is a key such as ``repair:repoint_latest`` (the filters and
the undo read it as written). ``ACTION_WORDS`` says each in words; every key the console
writes (``core.audit.record`` calls anywhere in core) must have a line here, which a test
checks by reading those calls. Pure: values in, values out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from core.drift.codes import RepairAction

# What each repair did to the user's row (``repair:<action>``); its undo put it back.
REPAIR_WORDS: Mapping[RepairAction, str] = MappingProxyType(
    {
        RepairAction.REPOINT_LATEST: "Pointed the app at the model's newest version",
        RepairAction.NORMALISE_VERSION: "Stored the version id on its own, as the app should",
        RepairAction.RESTORE_TRIGGER_WORD: "Put back the trigger word the model was trained with",
        RepairAction.RESTORE_LAST_GOOD_VERSION: "Pointed the app back at the last good version",
        RepairAction.SYNC_STATUS: "Set the row's training status to what Replicate says",
        RepairAction.PROMOTE_RETRAIN: "Promoted a retrain: the app now uses its new version",
    }
)

_OTHER_WORDS: Mapping[str, str] = {
    "retrain:submit": "Sent a retrain to Replicate (or recorded one of its steps)",
    "retrain:finish": "A retrain ended on Replicate",
    "retrain:cancel": "Cancelled a retrain",
    "retrain:keep": "Kept the current version after a retrain, not the new one",
    "compare:run": "Ran (or ended) a comparison of versions on the user's images",
    "compare:retry": "Tried a comparison image again",
    "compare:cancel": "Cancelled a comparison",
    "compare:grant": "Allowed someone more comparison spending for today",
    "scan:run": "Started (or ended) a scan of users",
    "scan:cancel": "Cancelled a scan",
    "decision:keep": "Decided to keep the current version; its finding is left as it is",
    "decision:leave_as_is": "Left a finding as it is, with a reason",
    "decision:withdraw": "Withdrew a decision: the finding is judged afresh",
    "watch:alert": "Alerted the team (or gave up) about a retrain judged worse or broken",
    "watch:review": "Judged a retrain the app made: its row, its photos and its images",
}


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _all_words() -> Mapping[str, str]:
    words = dict(_OTHER_WORDS)
    for action, said in REPAIR_WORDS.items():
        words[f"repair:{action.value}"] = said
        words[f"undo:{action.value}"] = f"Undid a repair that {_lower_first(said)}"
    return MappingProxyType(words)


ACTION_WORDS: Mapping[str, str] = _all_words()
UNKNOWN_ACTION = "An action the console has no words for"


def action_words(action: str) -> str:
    """``action`` in words (the key itself is shown beside)."""
    return ACTION_WORDS.get(action, UNKNOWN_ACTION)


# The records written twice for one piece of work (when asked for, when it ended) say
# which they are by their ``details["event"]``.
_EVENT_WORDS: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("compare:run", "requested"): "Asked for a comparison of versions on the user's images",
        ("compare:run", "finished"): "A comparison of versions on the user's images ended",
        ("scan:run", "requested"): "Asked for a scan of users",
        (
            "watch:review",
            "reviewed",
        ): "Judged a retrain the app made: its row, its photos and its images",
        ("watch:alert", "sent"): "Alerted the team that a retrain came out worse or broken",
        ("watch:alert", "failed"): "Could not alert the team about a worse or broken retrain",
        ("watch:alert", "unknown"): (
            "An alert about a worse or broken retrain may have been sent; it is not sent again"
        ),
    }
)


def record_words(action: str, details: Mapping[str, Any] | None) -> str:
    """One audit record in words: its action's, told apart by the event it records when
    the action is written more than once for one piece of work."""
    event = (details or {}).get("event")
    if not isinstance(event, str):
        return action_words(action)
    said = _EVENT_WORDS.get((action, event))
    if said is not None:
        return said
    if action == "scan:run":
        return f"A scan of users ended: {event.replace('_', ' ')}"
    return f"{action_words(action)} ({event.replace('_', ' ')})"


@dataclass(frozen=True)
class FieldChange:
    """One field a record changed: its value before and after (None: not stored)."""

    field: str
    before: Any
    after: Any


def changed_fields(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[FieldChange]:
    """The fields whose value differs between ``before`` and ``after``, in the order
    they were written (a field only one side holds counts as changed)."""
    old, new = before or {}, after or {}
    names = list(dict.fromkeys([*old, *new]))
    return [
        FieldChange(name, old.get(name), new.get(name))
        for name in names
        if name not in old or name not in new or old[name] != new[name]
    ]


def detail_label(key: str) -> str:
    """A details key in words: ``users_checked`` as "users checked"."""
    return key.replace("_", " ")


def details_summary(details: Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    """A record's plain details (not the nested ones) as (label in words, value), for a
    one-line summary in the list: "event: finished · scan id: 12"."""
    return [
        (detail_label(str(key)), value)
        for key, value in (details or {}).items()
        if value is not None and not isinstance(value, Mapping | list | tuple)
    ]
