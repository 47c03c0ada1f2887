"""What chromium draws from ``core.text.inert``'s Markdown: the characters as given, and
nothing Markdown or Streamlit would make of them.

AppTest only sees the Markdown source; whether Streamlit's frontend (react-markdown with
GFM, its directives, icons, emoji, math and typography plugins) really draws an escaped
string as its characters is only seen in a browser. ``inert_sample.py`` draws every one
of ``SAMPLES`` inert in each kind of Markdown a page uses (markdown, caption, alert,
button, expander, metric, progress, subheader, checkbox, image caption, tab); each must
read exactly as the sample (control and bidi characters aside) with no link, picture,
formula, icon, colour or formatting inside. A Streamlit upgrade that reads plain text in
a new way fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from core.bench.browser import console_command
from core.bench.common import free_port
from tests.browser.conftest import SCRIPT_DONE
from tests.browser.inert_samples import SAMPLES, as_read

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PAGE = Path(__file__).with_name("inert_sample.py")
HEALTH_TIMEOUT_S = 60.0
WORD_JOINER = "\u2060"
# The marker each drawn string starts with: its kind and the sample's index.
_MARKED = re.compile(r"^([MCEBXLVPSKIT])(\d+)\|")
# Inside a drawn string, nothing but text: what each kind may hold of its own.
_FORMATTING = "strong, em, del, code, pre, ul, ol, li, blockquote, table, h1, h2, h4, sup, sub"
_INSPECT = """(formatting) => {
  const found = [];
  for (const element of document.querySelectorAll(
      '[data-testid="stMain"] [data-testid="stMarkdownContainer"], '
      + '[data-testid="stMain"] [data-testid="stCaptionContainer"]')) {
    found.push({
      text: element.innerText,
      links: Array.from(element.querySelectorAll('a')).map(a => a.getAttribute('href')),
      pictures: element.querySelectorAll('img, svg:not(a svg)').length,
      formulas: element.querySelectorAll('.katex').length,
      icons: element.querySelectorAll('[data-testid="stIconMaterial"]').length,
      coloured: element.querySelectorAll(
        'span[style*="color"], span[style*="background"], span[class*="Badge"]').length,
      formatted: element.querySelectorAll(formatting).length,
    });
  }
  return found;
}"""


@pytest.fixture(scope="module")
def sample_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run inert_sample.py`` on a free loopback port (no console, no data)."""
    port = free_port()
    log = tmp_path_factory.mktemp("inert-render") / "streamlit.log"
    command = console_command(port, str(SAMPLE_PAGE))
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{base_url}/_stcore/health", timeout=2.0).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the sample page did not start: {log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=20)


def _drawn(browser: Browser, base_url: str) -> list[dict[str, Any]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(base_url)
        page.locator(SCRIPT_DONE).wait_for(state="attached", timeout=60_000)
        page.get_by_text("END-OF-SAMPLES").wait_for(timeout=60_000)
        # Every element drawn: the last sample's image caption, then its tab.
        page.get_by_text(f"I{len(SAMPLES) - 1}|", exact=False).wait_for(timeout=30_000)
        found: list[dict[str, Any]] = page.evaluate(_INSPECT, _FORMATTING)
        return found
    finally:
        context.close()


def test_inert_text_is_drawn_as_its_characters_and_nothing_else(
    browser: Browser, sample_page: str
) -> None:
    drawn = _drawn(browser, sample_page)
    seen: set[tuple[str, int]] = set()
    wrong = []
    for element in drawn:
        marked = _MARKED.match(element["text"].strip())
        if marked is None:
            continue
        kind, index = marked[1], int(marked[2])
        seen.add((kind, index))
        text = " ".join(element["text"].replace(WORD_JOINER, "").split())
        expected = f"{kind}{index}|{as_read(SAMPLES[index])}|"
        # A subheader's own anchor link, to itself.
        links = [href for href in element["links"] if not (kind == "S" and href.startswith("#"))]
        made = {
            name: element[name]
            for name in ("pictures", "formulas", "icons", "coloured", "formatted")
            if element[name]
        }
        if text != expected or links or made:
            wrong.append((expected, text, links, made))
    assert not wrong, wrong
    kinds = {kind for kind, _ in seen}
    assert kinds == set("MCEBXLVPSKIT"), kinds  # every kind drawn (help tooltips aside)
    assert {index for _, index in seen} == set(range(len(SAMPLES)))
