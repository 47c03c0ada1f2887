"""What the drift engine returns: findings, each with the evidence and the fix.

Evidence is made JSON-safe when the finding is built (datetimes as ISO strings, tuples as
lists, anything unknown as its ``str``), so a finding can be stored in ``ops`` or shown
as-is without another pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from core.drift.codes import RepairAction, Severity, code_spec

TITLE_MAX_CHARS = 160


@dataclass(frozen=True)
class Fix:
    """What to do: a repair the console offers (``action``), or None and a next step."""

    action: RepairAction | None
    text: str


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a user's model, with the values that prove it.

    ``evidence`` is a plain JSON-safe dict (``json.dumps`` takes it as is); treat it as
    read-only.
    """

    code: str
    severity: Severity
    title: str
    evidence: Mapping[str, Any]
    fix: Fix

    def to_dict(self) -> dict[str, Any]:
        """The finding as one JSON-safe dict."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "title": self.title,
            "evidence": json_safe(self.evidence),
            "fix": {
                "action": self.fix.action.value if self.fix.action else None,
                "text": self.fix.text,
            },
        }


def json_safe(value: Any) -> Any:
    """``value`` as str/int/float/bool/None/list/dict only, the same on every run."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)  # IntEnum members become plain ints
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return str(value)  # StrEnum members become their plain value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, Set):
        return sorted((json_safe(item) for item in value), key=repr)
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return str(value)


def one_line(text: str, limit: int = TITLE_MAX_CHARS) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def short(version_id: str | None, length: int = 12) -> str:
    """The first characters of a version id, for titles."""
    return (version_id or "")[:length]


def make_finding(
    code: str, *, evidence: Mapping[str, Any], fix: Fix, **title_fields: Any
) -> Finding:
    """A finding of ``code``: its severity from the table, its title filled from the
    table's template with ``title_fields``."""
    spec = code_spec(code)
    return Finding(
        code=code,
        severity=spec.severity,
        title=one_line(spec.title.format(**title_fields)),
        evidence=json_safe(evidence),
        fix=fix,
    )
