"""core.live_diagnosis (the pure parts: when the ledger needs a sync, the findings from
gathered facts) and core.scan_access (who may start a scan, and when one is running).

Gathering and syncing against the sandbox are exercised through the User page
(tests/pages); these use the drift builders' users, built in memory.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from core.drift import UserFacts
from core.errors import PermissionDenied
from core.live_diagnosis import LiveFacts, diagnose_live, ledger_gap
from core.roles import Actor, Role
from core.scan.values import ScanSummary
from core.scan_access import RUNNING_SCAN_STALE_AFTER, scan_blocked, start_scan
from tests.drift.builders import healthy, model_of, row_for, training, version_hash

NOW = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)


def test_no_gap_when_the_ledger_holds_the_rows_and_the_models_trainings() -> None:
    assert ledger_gap(healthy(training(1), training(2))) is None


def test_gap_when_the_ledger_lacks_the_rows_training() -> None:
    first, second = training(1), training(2)
    facts = replace(healthy(first, second), trainings=(first,))
    assert ledger_gap(facts) == f"the ledger lacks training {second.id} (the row's training_id)"


def test_gap_when_no_training_made_the_models_latest_version() -> None:
    first = training(1)
    facts = replace(healthy(first), model=model_of([first], extra_newer=[version_hash("x")]))
    assert "lacks the training that made" in (ledger_gap(facts) or "")


def test_gap_when_the_ledger_is_empty_for_a_user_with_a_model() -> None:
    first = training(1)
    facts = UserFacts(row=row_for(first, training_id=" not a training id "),
                      model=model_of([]))
    assert ledger_gap(facts) == "the ledger has no training of this user"
    never_trained = UserFacts(row=replace(row_for(first), replicate_model_id=None,
                                          training_id=None))
    assert ledger_gap(never_trained) is None


def test_findings_use_the_row_read_now_not_the_cached_one() -> None:
    records = (training(1), training(2))
    stale = healthy(*records, replicate_version_id=records[0].version_hash)
    live = LiveFacts(stale, sync_problem="The training history could not be synced: 503")
    found = diagnose_live(stale.row, live)
    assert "STALE_VERSION" in {finding.code for finding in found.findings}
    assert found.notes == ("The training history could not be synced: 503",)
    repaired = healthy(*records).row  # the row after a repair; the facts were cached before
    assert diagnose_live(repaired, live).findings == ()


def test_facts_that_could_not_be_read_give_the_scan_error() -> None:
    row = healthy().row
    found = diagnose_live(row, problem="Replicate is unavailable; try again in a minute.")
    assert found.facts is None and found.problem is not None
    assert [finding.code for finding in found.findings] == ["SCAN_ERROR"]
    assert "Replicate is unavailable" in found.findings[0].title


def _scan(status: str, started: datetime) -> ScanSummary:
    return ScanSummary(id=7, started_at=started, finished_at=None, status=status,
                       users_total=100, users_scanned=40, requested_by="ada@x.test")


def test_a_running_scan_blocks_another_until_it_looks_dead() -> None:
    assert scan_blocked(None, now=NOW) is None
    assert scan_blocked(_scan("finished", NOW), now=NOW) is None
    assert scan_blocked(_scan("failed", NOW), now=NOW) is None
    blocked = scan_blocked(_scan("running", NOW - timedelta(minutes=5)), now=NOW)
    assert blocked is not None
    assert "Scan #7, started by ada@x.test at 2026-02-02 11:55 UTC" in blocked
    assert "(40 of 100 users)" in blocked
    dead = _scan("running", NOW - RUNNING_SCAN_STALE_AFTER)
    assert scan_blocked(dead, now=NOW) is None


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.PRODUCT])
def test_only_admins_start_scans(role: Role) -> None:
    actor = Actor(f"{role.value}@x.test", role)
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        # Refused before anything is touched: no engine or gateway is needed.
        start_scan(actor, app_engine=None, ops_engine=None, gateway=None)  # type: ignore[arg-type]
