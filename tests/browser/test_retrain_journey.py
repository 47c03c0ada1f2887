"""The retrain wizard in a real browser, acting as admin on the blurry-retrain persona: its
earlier photos plus 6 new ones (2 bad, rejected with reasons), Submit double-clicked, live
progress, the tab closed and opened again mid-training, the gate's comparison, Promote;
then the Audit log shows each step, the sandbox started exactly one training and the
user's row holds the new bare hash."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page

from core.db import embedded_postgres_url, make_engine
from core.demo.personas import PERSONAS
from core.gateway.values import is_version_hash
from core.schema import app_metadata
from tests.browser.conftest import Console, open_console, wait_for_text
from tests.photos import face_photo

pytestmark = pytest.mark.timeout(900)

ADMIN = "admin@demo.sselfie.test"
BLURRY = next(persona for persona in PERSONAS if persona.key == "blurry_retrain")
# Every photo has its verdict: the two bad uploads rejected, none still being checked (the
# worker may load the earlier photos before or after the uploads, while the first scan runs).
CHECKED = """() => {
    const text = document.body.innerText;
    return /reject\\s+blurry\\.jpg · upload/.test(text)
        && /reject\\s+landscape\\.jpg · upload/.test(text)
        && /(ok|warn)\\s+new-3\\.jpg · upload/.test(text)
        && !/checking\\s+\\S+ · (upload|previous)/.test(text)
        && !text.includes('Checking photos');
}"""


def _uploads(folder: Path) -> list[str]:
    """Four good new selfies, one blurred and one without a face."""
    paths = []
    for index in range(4):
        path = folder / f"new-{index}.jpg"
        path.write_bytes(face_photo(40 + index, long_side=1600))
        paths.append(str(path))
    blurry = folder / "blurry.jpg"
    blurry.write_bytes(face_photo(45, long_side=1600, blur=4))
    landscape = folder / "landscape.jpg"
    out = io.BytesIO()
    Image.linear_gradient("L").resize((1600, 1200)).convert("RGB").save(out, format="JPEG")
    landscape.write_bytes(out.getvalue())
    return [*paths, str(blurry), str(landscape)]


def _sandbox_trainings(console: Console) -> int:
    base = json.loads((console.data_dir / "sandbox" / "server.json").read_text())["base_url"]
    return int(httpx.get(f"{base}/_sandbox/stats").json()["counts"].get("trainings.create", 0))


def _stored_version(console: Console) -> str:
    engine = make_engine(embedded_postgres_url(console.data_dir))
    try:
        user_models = app_metadata.tables["user_models"]
        with engine.connect() as conn:
            return str(
                conn.execute(user_models.select().where(user_models.c.user_id == BLURRY.user_id))
                .one()
                .replicate_version_id
            )
    finally:
        engine.dispose()


# One consistent look at the page, taken between two runs of its script with no stale
# element left (while a run or a fragment's rerun is under way, the last run's elements
# stand beside the new ones).
DECISION_STATE = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const labels = [...document.querySelectorAll('button')].map(button => button.innerText);
    return {
        settled: app !== null && app.getAttribute('data-test-script-state') === 'notRunning'
            && document.querySelector('[data-stale="true"]') === null,
        waiting: document.body.innerText.includes('promote or keep once it has ended'),
        promote: labels.some(label => label.includes('Promote the new version')),
        keep: labels.some(label => label.includes('Keep the current version')),
    };
}"""


def decision_offered_only_once_the_gate_ended(page: Page, timeout_s: float = 300) -> None:
    """Watch the Retrain page until Promote is offered: while the gate's comparison runs
    the page says so and offers neither Promote nor Keep (seen at least once)."""
    deadline = time.monotonic() + timeout_s
    waited = False
    while True:
        state = page.evaluate(DECISION_STATE)
        if state["settled"]:
            if state["waiting"]:
                assert not state["promote"] and not state["keep"], state
                waited = True
            elif state["promote"]:
                assert state["keep"], state
                break
        assert time.monotonic() < deadline, "Promote was never offered"
        time.sleep(0.3)
    assert waited, "the page never showed the gate's comparison running"


def test_an_admin_retrains_the_blurry_persona_and_promotes_the_new_version(
    page: Page, browser: Browser, console: Console, tmp_path: Path
) -> None:
    open_console(page, console.base_url, f"retrain?user={BLURRY.user_id}&as={ADMIN}")
    start = page.get_by_role("button", name="Start a retrain")
    start.wait_for(state="visible", timeout=180_000)  # the demo world is seeded by now
    before_trainings = _sandbox_trainings(console)
    before_version = _stored_version(console)
    start.click()
    wait_for_text(page, "Dataset gate", 180)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(_uploads(tmp_path))
    wait_for_text(page, "landscape.jpg", 30)
    page.get_by_role("button", name="Add photos").click()
    # Every photo checked by the worker: the two bad uploads rejected, each with its reason.
    page.wait_for_function(CHECKED, timeout=300_000)
    wait_for_text(page, "The dataset passes the gate.", 60)
    body = page.inner_text("body")
    around = body[body.find("blurry.jpg") - 60 : body.find("blurry.jpg") + 200]
    assert re.search(r"reject\s+blurry\.jpg · upload\s+blurry: the face measures \d+", body), around
    assert re.search(r"reject\s+landscape\.jpg · upload[\s\S]{0,200}no face found", body)
    assert "Replicate drops what replicate/fast-flux-trainer does not declare: " in body

    page.get_by_role("button", name="Submit retrain…").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(state="visible")
    dialog.get_by_label("Why (kept in the audit log)").fill("Browser test: images got worse")
    dialog.get_by_role("button", name="Confirm and submit").dblclick()
    wait_for_text(page, "Retrain #", 60)
    wait_for_text(page, "elapsed", 60)  # live progress

    # The tab closed mid-training and opened again: the live state is there.
    page.close()
    again = browser.new_page()
    open_console(again, console.base_url, f"retrain?user={BLURRY.user_id}&as={ADMIN}")
    wait_for_text(again, "Retrain #", 60)
    wait_for_text(again, "Promotion gate", 300)
    decision_offered_only_once_the_gate_ended(again)
    reading = wait_for_text(again, "The new version is", 300).inner_text()
    assert "not worse" in reading, reading
    again.get_by_label("Why (kept in the audit log)").fill("Browser test: the gate says better")
    again.get_by_role("button", name="Promote the new version").click()
    wait_for_text(again, "Promoted by", 60)

    assert _sandbox_trainings(console) - before_trainings == 1
    promoted = _stored_version(console)
    assert is_version_hash(promoted) and promoted != before_version
    for action in ("retrain:submit", "retrain:finish", "repair:promote_retrain"):
        open_console(again, console.base_url, f"audit?action={action}&as={ADMIN}")
        again.wait_for_function(
            "(user) => [...document.querySelectorAll('[id^=glide-cell]')]"
            ".some(cell => cell.innerText.includes(user))",
            arg=BLURRY.email,  # the log leads with the person
            timeout=60_000,
        )
    again.close()
