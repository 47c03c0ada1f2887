"""The browser test infrastructure works: a new user's DEMO console renders in chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Console, open_console, wait_for_text

pytestmark = pytest.mark.timeout(600)


def test_console_root_renders_the_demo_users_page(page: Page, console: Console) -> None:
    open_console(page, console.base_url)

    sidebar = page.get_by_test_id("stSidebar")
    wait_for_text(sidebar, "DEMO — sandbox data")
    expect(page.get_by_test_id("stSidebarNavLink").filter(has_text="Users")).to_be_visible()
    expect(page.get_by_test_id("stMain").get_by_role("heading", name="Users")).to_be_visible()
