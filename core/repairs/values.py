"""What a repair plan is, and the helpers every planner shares.

A ``RepairPlan`` is a preview: the columns a repair changes with their current values
(``before``) and the values it will write (``after``), an explanation a support agent can
read, and the evidence behind it. Only ``WRITABLE_COLUMNS`` may appear in a plan: none of
them holds a secret, so a plan can be shown and audited as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from core.drift.codes import RepairAction
from core.drift.context import Context
from core.drift.facts import AppRow, TrainingRecord, blank_to_none
from core.drift.findings import json_safe
from core.errors import DataRejected

# Every column a repair (or its undo) may write; the rest of the row is never touched.
WRITABLE_COLUMNS: tuple[str, ...] = (
    "replicate_version_id",
    "lora_weights_url",
    "trigger_word",
    "training_status",
    "training_id",
    "training_progress",
    "failure_reason",
    "started_at",
    "completed_at",
)
RUNNING_STATUSES = frozenset({"starting", "processing"})


@dataclass(frozen=True)
class RepairPlan:
    """One previewed repair of one user's ``user_models`` row.

    ``before`` and ``after`` name the same columns (only those the repair changes), in
    ``WRITABLE_COLUMNS`` order; ``evidence`` is JSON-safe. All three are read-only.
    """

    user_id: str
    action: RepairAction
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    explanation: str
    evidence: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", RepairAction(self.action))
        if not self.after or set(self.before) != set(self.after):
            raise ValueError(
                "A repair plan changes at least one column and names the same "
                f"columns before and after (got {sorted(self.before)} / "
                f"{sorted(self.after)})."
            )
        unknown = set(self.after) - set(WRITABLE_COLUMNS)
        if unknown:
            raise ValueError(f"Repairs never write {sorted(unknown)}.")
        order = [column for column in WRITABLE_COLUMNS if column in self.after]
        object.__setattr__(
            self, "before", MappingProxyType({column: self.before[column] for column in order})
        )
        object.__setattr__(
            self, "after", MappingProxyType({column: self.after[column] for column in order})
        )
        object.__setattr__(self, "evidence", MappingProxyType(json_safe(dict(self.evidence))))

    def __reduce__(self) -> tuple[type[RepairPlan], tuple[Any, ...]]:
        # Read-only mappings do not pickle; a page may keep the previewed plan in a
        # serialised session state between preview and confirm.
        return (
            RepairPlan,
            (
                self.user_id,
                self.action,
                dict(self.before),
                dict(self.after),
                self.explanation,
                dict(self.evidence),
            ),
        )

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the repair writes, in ``WRITABLE_COLUMNS`` order."""
        return tuple(self.after)


def make_plan(
    action: RepairAction,
    row: Mapping[str, Any],
    target: Mapping[str, Any],
    *,
    explanation: str,
    evidence: Mapping[str, Any],
    already: str,
) -> RepairPlan:
    """The plan that brings ``row`` to ``target``; DataRejected(``already``) if it is there."""
    changed = [column for column, value in target.items() if row.get(column) != value]
    if not changed:
        raise DataRejected(already)
    return RepairPlan(
        user_id=str(row["user_id"]),
        action=action,
        before={column: row.get(column) for column in changed},
        after={column: target[column] for column in changed},
        explanation=explanation,
        evidence=evidence,
    )


def app_row(row: Mapping[str, Any]) -> AppRow:
    """The drift engine's view of a ``user_models`` row read with ``read_row``."""
    user_id = row.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise DataRejected("The row has no user_id; read it again with read_row.")
    return AppRow(
        user_id=user_id,
        replicate_model_id=row.get("replicate_model_id"),
        replicate_version_id=row.get("replicate_version_id"),
        trigger_word=row.get("trigger_word"),
        training_status=row.get("training_status"),
        training_id=row.get("training_id"),
        lora_weights_url=row.get("lora_weights_url"),
        failure_reason=row.get("failure_reason"),
        updated_at=row.get("updated_at"),
    )


def completed_target(
    record: TrainingRecord, version_id: str, *, completed_at: bool
) -> dict[str, Any]:
    """What the app's progress poll writes when ``record`` succeeded with ``version_id``:
    the bare hash, the training's own weights, ``completed``, progress 100, no failure
    reason, and (when asked and known) the training's completion time."""
    target: dict[str, Any] = {
        "replicate_version_id": version_id,
        "lora_weights_url": record.output_weights,
        "training_status": "completed",
        "training_id": record.id,
        "training_progress": 100,
        "failure_reason": None,
    }
    if completed_at and record.completed_at is not None:
        target["completed_at"] = naive_utc(record.completed_at)
    return target


def naive_utc(when: datetime | None) -> datetime | None:
    """``when`` as the app's ``timestamp without time zone`` (UTC wall time)."""
    if when is None or when.tzinfo is None:
        return when
    return when.astimezone(UTC).replace(tzinfo=None)


def refuse_while_training(ctx: Context, repair: str) -> None:
    """DataRejected when a training is (or the row says it is) still running: its poll
    would overwrite the repair when it finishes."""
    training_id = blank_to_none(ctx.row.training_id)
    record = ctx.training(training_id)
    if record is not None and record.status in RUNNING_STATUSES:
        raise DataRejected(
            f"Training {record.id} is still {record.status} on Replicate; {repair} now would "
            "be overwritten when it finishes. Wait for it, then preview again."
        )
    if ctx.row.training_status == "training":
        raise DataRejected(
            f"The row says training {training_id or '(no id)'} is running; {repair} now would "
            "be overwritten when the app polls it. Sync the status first (sync_status) if "
            "Replicate says it has finished."
        )


def when_text(when: datetime | None) -> str:
    """A date for explanations: ``2 Jun 2025``, or ``an unknown date``."""
    return f"{when.day} {when:%b %Y}" if when is not None else "an unknown date"
