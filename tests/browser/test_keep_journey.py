"""Keep in a real browser: a retrain of the healthy-retrained persona queued from the
command line (as an admin would from a shell), watched on the Retrain page, where neither
Promote nor Keep is offered until the gate's comparison has ended; then Keep with a
reason, and the User page reports the now older stored version as kept by that decision,
at info, with no critical finding."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from playwright.sync_api import Page

from core.demo.personas import PERSONAS
from tests.browser.conftest import Console, new_user_environment, open_console, wait_for_text
from tests.browser.test_retrain_journey import ADMIN, decision_offered_only_once_the_gate_ended
from tests.workers import ROOT

pytestmark = pytest.mark.timeout(900)

HEALTHY = next(persona for persona in PERSONAS if persona.key == "healthy_retrained")


def _retrain_cli(console: Console, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "core.retrain", *args, "--user", HEALTHY.user_id, "--actor", ADMIN],
        cwd=ROOT,
        env=new_user_environment(console.data_dir),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_keep_is_offered_after_the_gate_and_the_user_page_knows_the_decision(
    page: Page, console: Console
) -> None:
    open_console(page, console.base_url, f"user?user={HEALTHY.user_id}&as={ADMIN}")
    wait_for_text(page, "Findings", 180)  # the demo world is seeded and its worker up
    checked = _retrain_cli(console, "check", "--json")  # the earlier trainings' photos
    gate = checked["gate"]
    assert isinstance(gate, dict)
    override = [] if gate["passed"] else ["--override-reason", "browser test: earlier photos"]
    _retrain_cli(
        console,
        "submit",
        "--retrain",
        str(checked["retrain_id"]),
        "--reason",
        "browser test: keep",
        *override,
        "--background",
        "--json",
    )
    open_console(page, console.base_url, f"retrain?user={HEALTHY.user_id}&as={ADMIN}")
    wait_for_text(page, "Promotion gate", 300)
    decision_offered_only_once_the_gate_ended(page)
    page.get_by_label("Why (kept in the audit log)").fill("Browser test: the old look is better")
    page.get_by_role("button", name="Keep the current version").click()
    wait_for_text(page, "Kept by", 60)

    open_console(page, console.base_url, f"user?user={HEALTHY.user_id}&as={ADMIN}")
    kept = wait_for_text(page, "Kept by decision #", 120).inner_text()
    assert "the old look is better" in kept
    body = page.inner_text("body")
    assert "STALE_VERSION" in body  # the finding is there, kept
    lines = [line.strip() for line in body.splitlines()]
    assert "info" in lines and "critical" not in lines  # the findings' severity badges
