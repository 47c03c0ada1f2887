"""The ``page_loads`` bench figure's machinery at a tiny size: a demo world of 5 synthetic
users (and the personas), then 40 users, every page measured once through the real entry.

Only that the figure is complete and its counters count: how fast the pages are is the
figure's own business (``python -m core.bench --only page_loads``), never a threshold here.
"""

from __future__ import annotations

import pytest

from core.bench.page_loads import page_loads

# Seeding the personas on a sandbox, a scan, reading one user's photos, two rounds of pages.
pytestmark = pytest.mark.timeout(420)

PAGES = {"baseline", "Users", "User", "Fleet", "Compare", "Review", "Retrain", "Audit"}
COUNTS = (
    "replicate_calls_first",
    "replicate_calls_rerun",
    "fleet_listings",
    "file_requests_first",
    "sql_statements_first",
    "sql_statements_rerun",
)


def test_every_page_is_measured_at_both_sizes() -> None:
    figure = page_loads(users=5, large_users=40, repeats=1)

    worlds = figure["worlds"]
    assert list(worlds) == ["22_users", "40_users"]  # 17 personas + 5, then bulk rows
    for world in worlds.values():
        assert set(world) == PAGES
        for name, page in world.items():
            assert all(page[count] >= 0 for count in COUNTS), name
            assert page["sql_statements_first"] > 0, name
            assert page["first_load_s"] > 0 and page["rerun_s"] > 0, name
            assert page["ratio_first_to_baseline"] > 0, name
        assert world["baseline"]["page"] == "Settings"
        assert world["baseline"]["ratio_first_to_baseline"] == 1.0
        # The sandbox's counts reach the figure: the User page reads the user's model.
        assert world["User"]["replicate_routes_first"]["GET /v1/models/{owner}/{name}"] >= 1
