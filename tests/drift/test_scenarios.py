"""The demo world's situations give exactly the codes a support agent should see."""

from __future__ import annotations

import pytest

from tests.drift.builders import codes
from tests.drift.scenarios import Scenario, scenarios


@pytest.mark.parametrize("scenario", scenarios(), ids=lambda scenario: scenario.name)
def test_scenario_gives_exactly_the_expected_codes(scenario: Scenario) -> None:
    assert codes(scenario.facts) == scenario.expected
