"""Decisions the diagnosis knows: an admin chose to leave a finding as it is.

After a retrain an admin may keep the current version (the new one looked worse), or an
admin may say "leave as is" of a finding with a reason. Without this the next diagnosis
would report the very thing they decided on as critical and recommend undoing their
choice. A decision holds while the row is exactly as it was when they decided (the same
values in the columns a repair or the app's next training would change) and no training
of the user is newer than the decision: then the finding is reported as *kept by decision
#N*, at info, with the reason and who decided. Change the row or train again and the
finding is judged afresh. Pure: values in, values out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from core.drift.codes import Severity
from core.drift.findings import Finding, Fix, json_safe, one_line

# The row's columns a decision is made against: what the app's next training, a repair
# or a promotion would change.
DECIDED_COLUMNS = (
    "replicate_model_id",
    "replicate_version_id",
    "trigger_word",
    "training_status",
    "training_id",
    "lora_weights_url",
)


@dataclass(frozen=True)
class Decision:
    """One decision as stored in ``ops.decisions``."""

    id: int
    user_id: str
    code: str
    kind: str  # "keep" (a retrain's new version was not promoted) or "leave_as_is"
    reason: str
    decided_by: str
    decided_at: datetime
    row_fingerprint: str
    retrain_id: int | None = None


def row_values(row: Any) -> dict[str, Any]:
    """The decided columns of an app row (a mapping or an ``AppRow``), JSON-safe."""
    if isinstance(row, Mapping):
        picked = {column: row.get(column) for column in DECIDED_COLUMNS}
    else:
        picked = {column: getattr(row, column, None) for column in DECIDED_COLUMNS}
    return dict(json_safe(picked))


def row_fingerprint(row: Any) -> str:
    """A digest of the decided columns: equal exactly when those values are."""
    text = json.dumps(row_values(row), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def holds(decision: Decision, row: Any, training_times: Iterable[datetime | None]) -> bool:
    """Whether ``decision`` still holds for the row as it is and the user's trainings:
    the row unchanged, and no training created after the decision."""
    if row_fingerprint(row) != decision.row_fingerprint:
        return False
    decided = _aware(decision.decided_at)
    return not any(when is not None and _aware(when) > decided for when in training_times)


def apply_decisions(
    findings: Sequence[Finding],
    decisions: Sequence[Decision],
    row: Any,
    training_times: Sequence[datetime | None],
) -> tuple[Finding, ...]:
    """``findings`` with each one a holding decision covers reported as kept by it (info,
    the reason, who and when; the evidence kept); the newest decision wins."""
    holding: dict[str, Decision] = {}
    for decision in sorted(decisions, key=lambda item: item.id):
        if holds(decision, row, training_times):
            holding[decision.code] = decision
    if not holding:
        return tuple(findings)
    kept: list[Finding] = []
    for finding in findings:
        covering = holding.get(finding.code)
        if covering is None:
            kept.append(finding)
            continue
        decision = covering
        verb = "the current version kept" if decision.kind == "keep" else "left as is"
        kept.append(
            replace(
                finding,
                severity=Severity.INFO,
                title=one_line(
                    f"Kept by decision #{decision.id}: {verb} by {decision.decided_by} on "
                    f"{_aware(decision.decided_at):%Y-%m-%d} — {decision.reason}"
                ),
                evidence={
                    **finding.evidence,
                    "decision": {
                        "id": decision.id,
                        "kind": decision.kind,
                        "by": decision.decided_by,
                        "at": _aware(decision.decided_at).isoformat(),
                        "reason": decision.reason,
                        "retrain_id": decision.retrain_id,
                        "was": {"severity": finding.severity.value, "title": finding.title},
                    },
                },
                fix=Fix(
                    None,
                    "Nothing to do while the row stays as it is and the user does not train "
                    "again; either brings the finding back. An admin can withdraw the "
                    "decision on the User page.",
                ),
            )
        )
    return tuple(kept)
