"""The ``watch_latency`` bench figure's calls part at a tiny size: the demo world, then 40
users, passes with 0 and 2 new trainings, counted by the sandbox.

Only that the figure is complete and its counters count: what the calls should be at
1,500 users is the figure's own business (``python -m core.bench --only watch_latency``).
"""

from __future__ import annotations

import pytest

from core.bench.watch import calls_per_pass

# Seeding the personas on a sandbox, a ledger sync, a few passes.
pytestmark = pytest.mark.timeout(300)


def test_the_calls_of_each_pass_are_counted() -> None:
    figure = calls_per_pass(fleet_users=40, new_trainings=(0, 2))

    assert figure["fleet_users"] == 40 and figure["small_fleet_users"] < 40
    small = figure["small_fleet_0_new"]
    passes = figure["users_40"]
    assert list(passes) == ["0_new", "2_new"]
    # The sandbox's counts reach the figure: every pass reads the listing's first page.
    for measured in (small, *passes.values()):
        assert measured["listing_calls"] == 1
        assert measured["replicate_calls"] >= measured["listing_calls"] + measured["reads_by_id"]
        assert measured["errors"] == 0
    assert (small["reviews_queued"], passes["0_new"]["reviews_queued"]) == (0, 0)
    two = passes["2_new"]
    assert (two["new_trainings_listed"], two["reviews_queued"]) == (2, 2)
    assert two["ledger_trainings"] == passes["0_new"]["ledger_trainings"] + 2
    assert figure["ratio_calls_1500_to_small_fleet"] > 0
