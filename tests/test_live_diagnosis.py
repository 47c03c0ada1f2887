"""core.live_diagnosis (the pure parts: when the ledger needs a sync, the findings from
gathered facts) and the pure parts of asking for a scan (who may, what a refusal says,
how far a scan is and when it looks dead).

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
from core.scan.progress import scan_progress
from core.scan.request import ScanOptions, cancel_scan, refusal, request_scan
from core.scan.values import ScanSummary
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
    facts = UserFacts(row=row_for(first, training_id=" not a training id "), model=model_of([]))
    assert ledger_gap(facts) == "the ledger has no training of this user"
    never_trained = UserFacts(
        row=replace(row_for(first), replicate_model_id=None, training_id=None)
    )
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


def _scan(status: str, started: datetime, **changes: object) -> ScanSummary:
    summary = ScanSummary(
        id=7,
        started_at=started,
        finished_at=None,
        status=status,
        users_total=100,
        users_scanned=40,
        requested_by="ada@x.test",
        phase="check",
        heartbeat_at=started,
        zips_total=10,
        zips_done=4,
    )
    return replace(summary, **changes)  # type: ignore[arg-type]


def test_a_refusal_names_the_scan_that_holds_the_place_and_how_far_it_is() -> None:
    running = refusal(_scan("running", NOW - timedelta(minutes=5)), now=NOW)
    assert running.startswith("Fleet scan #7, requested by ada@x.test 5 min ago, is running")
    assert "photos of 4 of 10 trainings read; 40 of 100 users checked" in running
    queued = refusal(_scan("queued", NOW, phase=None), now=NOW)
    assert "is queued, waiting for a worker" in queued


def test_progress_says_the_phase_and_when_the_heartbeat_stopped() -> None:
    stale_after = timedelta(minutes=2)
    alive = scan_progress(
        _scan("running", NOW - timedelta(minutes=1)), now=NOW, stale_after=stale_after
    )
    assert (alive.headline, alive.photos, alive.users, alive.stalled) == (
        "checking users",
        (4, 10),
        (40, 100),
        None,
    )
    syncing = scan_progress(
        _scan("running", NOW, phase="sync", zips_total=0), now=NOW, stale_after=stale_after
    )
    assert (syncing.headline, syncing.photos, syncing.users) == (
        "reading the training history from Replicate",
        None,
        None,
    )
    dead = scan_progress(
        _scan("running", NOW - timedelta(minutes=3)), now=NOW, stale_after=stale_after
    )
    assert dead.stalled is not None and "for 180 s" in dead.stalled
    assert (
        scan_progress(
            _scan("queued", NOW - timedelta(hours=5), phase=None), now=NOW, stale_after=stale_after
        ).stalled
        is None
    )  # waiting is not dying


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.PRODUCT])
def test_only_admins_ask_for_scans(role: Role) -> None:
    actor = Actor(f"{role.value}@x.test", role)
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        # Refused before anything is touched: no connection is needed.
        request_scan(None, actor, ScanOptions.of(), background=True)  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        cancel_scan(None, actor, 7)  # type: ignore[arg-type]
