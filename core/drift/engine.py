"""``diagnose``: every check over one user's facts, in a stable order.

The order is severity (critical, warning, info), then the code's place in the vocabulary
(``CODES``, which follows product.md), so the same facts always give the same tuple and
the most serious, most basic finding comes first. Each code is raised at most once per user.
A finding an admin decided to leave as it is comes at info, kept by that decision, while
the decision holds (``core.drift.decisions``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from core.drift import history_checks, row_checks, version_checks
from core.drift.codes import CODE_ORDER, Severity
from core.drift.context import Context, build_context
from core.drift.decisions import apply_decisions
from core.drift.facts import UserFacts
from core.drift.findings import Finding, Fix, make_finding, one_line

Check = Callable[[Context], Finding | None]

CHECKS: tuple[Check, ...] = (
    version_checks.check_version_format,
    version_checks.check_version_not_in_model,
    version_checks.check_stale_version,
    row_checks.check_trigger_word,
    version_checks.check_model_id_missing,
    version_checks.check_model_not_found,
    version_checks.check_version_lost,
    row_checks.check_status_sync,
    row_checks.check_weights_url,
    history_checks.check_duplicate_models,
    history_checks.check_dataset_shrank,
    history_checks.check_dataset_degraded,
    history_checks.check_trainer_changed,
    history_checks.check_params_changed,
    history_checks.check_retrain_regressed,
)


def _order(finding: Finding) -> tuple[int, int, str]:
    return (finding.severity.rank, CODE_ORDER[finding.code], finding.code)


def diagnose(facts: UserFacts) -> tuple[Finding, ...]:
    """Every finding for one user, most serious first; empty for a healthy user."""
    context = build_context(facts)
    found = [finding for finding in (check(context) for check in CHECKS) if finding is not None]
    if facts.decisions:
        found = list(
            apply_decisions(
                found,
                facts.decisions,
                facts.row,
                [training.created_at for training in facts.trainings],
            )
        )
    return tuple(sorted(found, key=_order))


def scan_error(user_id: str, message: str) -> Finding:
    """The SCAN_ERROR finding for a user whose facts could not be fetched."""
    return make_finding(
        "SCAN_ERROR",
        evidence={"user_id": user_id, "message": message},
        fix=Fix(
            None,
            "Scan this user again later; if it keeps failing, the message says what "
            "to check (the token, Replicate's status, the row).",
        ),
        message=one_line(message, 120),
    )


def worst_severity(findings: Iterable[Finding]) -> Severity | None:
    """The most serious severity among ``findings``; None when there are none."""
    return min(
        (finding.severity for finding in findings), key=lambda level: level.rank, default=None
    )
