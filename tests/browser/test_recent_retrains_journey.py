"""Recent retrains in a real browser: support opens a user whose last retrain the watch
judged worse and sees it in red under the heading; "Fleet → Recent retrains" opens Fleet
on that tab (kept in the address, so a copied link opens it too), the retrain is in its
table, and a click on its row comes back to the user, acting as the same person.

The review is written into ops.retrain_reviews as the review job writes one (AppTest
cannot follow a page link, nor show which tab the browser opened).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page
from sqlalchemy import delete, insert

from core.db import embedded_postgres_url, make_engine
from core.demo.personas import PERSONAS
from core.ledger.reviews import retrain_reviews
from tests.browser.conftest import Console, click_row_with, open_console, wait_for_text

pytestmark = pytest.mark.timeout(600)

BLURRY = next(persona for persona in PERSONAS if persona.key == "blurry_retrain")
SUPPORT = "support@demo.sselfie.test"
TRAINING = "browser-recent-retrain"
SENTENCE = "The new version is blurrier than the one before: it was trained on soft photos."


@pytest.fixture
def worse_retrain(page: Page, console: Console) -> Iterator[None]:
    """The blurry persona's retrain, judged worse a minute ago (once DEMO is seeded)."""
    open_console(page, console.base_url, f"user?user={BLURRY.user_id}&as={SUPPORT}")
    wait_for_text(page, "Findings", 180)  # the demo world is seeded, schema ops migrated
    engine = make_engine(embedded_postgres_url(console.data_dir))
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(retrain_reviews).values(
                    training_id=TRAINING,
                    user_id=BLURRY.user_id,
                    training_status="succeeded",
                    ended_at=datetime.now(UTC) - timedelta(minutes=1),
                    status="done",
                    verdict="worse",
                    sentence=SENTENCE,
                    photos_before=12,
                    photos_after=8,
                    alert_status="off",
                )
            )
        yield
        with engine.begin() as conn:
            conn.execute(delete(retrain_reviews).where(retrain_reviews.c.training_id == TRAINING))
    finally:
        engine.dispose()


def _query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_support_follows_a_worse_retrain_from_the_user_to_fleet_and_back(
    page: Page, console: Console, worse_retrain: None
) -> None:
    open_console(page, console.base_url, f"user?user={BLURRY.user_id}&as={SUPPORT}")
    wait_for_text(page, "Last retrain: Worse", 60)
    assert page.locator('[data-testid="stAlertContentError"]', has_text=SENTENCE).count() == 1

    # Fleet seen first on its default tab, in the same session: the link still opens
    # Recent retrains (the tab's last value must not win over the link's).
    page.locator('[data-testid="stSidebarNavLink"]', has_text="Fleet drift").click()
    wait_for_text(page, "last fleet scan", 120)
    page.locator('[data-testid="stSidebarNavLink"]', has_text="Users").click()
    click_row_with(page, BLURRY.email, 60)
    wait_for_text(page, "Last retrain: Worse", 60)
    page.get_by_role("link", name="Fleet → Recent retrains").click()
    wait_for_text(page, "ended in the last 7 days:", 60)
    selected = page.locator('[role="tab"][aria-selected="true"]')
    assert selected.inner_text().strip() == "Recent retrains"
    page.wait_for_function("() => location.pathname.endsWith('/fleet')", timeout=30_000)
    assert _query(page)["view"] == ["Recent retrains"] and _query(page)["as"] == [SUPPORT]

    # The address alone opens the same tab (a copied link, a reload).
    page.reload()
    wait_for_text(page, "ended in the last 7 days:", 60)

    click_row_with(page, BLURRY.email)
    wait_for_text(page, f"User {BLURRY.user_id}", 60)
    assert _query(page)["user"] == [BLURRY.user_id] and _query(page)["as"] == [SUPPORT]
