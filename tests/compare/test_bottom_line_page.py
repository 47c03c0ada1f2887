"""The Compare page's bottom line on the demo world's comparisons, through the real entry
in LIVE mode (AppTest) on the demo world's database and sandbox: the trigger-word persona
is told the trigger word is the cause, the stale persona the version, each coloured by
what it means, with the figures below it; prediction ids are no longer under the images.

Why LIVE on the demo world: the comparisons are run here the way the workers run them
(``tests/compare/conftest.py``), on the personas DEMO is seeded with, and the page then
reads them as a deployed console would.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.demo.personas import PERSONAS
from dashboard.diagnosis import forget_facts
from tests.demo_world import DemoWorld
from tests.pages.conftest import LIVE_ENV_NAMES, LIVE_TOKEN, new_app, open_page, unescaped

pytestmark = pytest.mark.timeout(420)
Compare = Callable[..., tuple[int, dict[str, Any]]]
EMAIL_OF = {persona.key: persona.email for persona in PERSONAS}


def _clear() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()
    forget_facts()


@pytest.fixture
def console_on_demo_world(
    synced_world: DemoWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[[int], AppTest]]:
    """Compare as support sees it, LIVE on the demo world; a runtime of the test's own
    (dropped after it, so no other test gets the demo world's engines)."""
    for name in LIVE_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", synced_world.url)
    monkeypatch.setenv("REPLICATE_API_TOKEN", LIVE_TOKEN)
    monkeypatch.setenv("REPLICATE_BASE_URL", synced_world.sandbox_url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HISTORY_FRESH_SECONDS", "86400")  # the world's sync stands for it
    _clear()

    def open_comparison(comparison_id: int) -> AppTest:
        at = open_page(
            new_app(email="support@staff.test").run(), "compare", comparison=str(comparison_id)
        )
        assert not at.exception, at.exception
        return at

    yield open_comparison
    _clear()


def _bottom_line(at: AppTest) -> tuple[str, str]:
    """(the alert kind, its text) of the page's bottom line: the first alert, in bold."""
    for kind in ("error", "success", "info", "warning"):
        for element in getattr(at, kind):
            text = unescaped(element.value)
            if text.startswith("**") and text.endswith("**"):
                return kind, text.strip("*")
    raise AssertionError("no bottom line on the page")


def _captions(at: AppTest) -> str:
    """The captions' words as read (a link's text, not where it goes)."""
    return "\n".join(
        re.sub(r"\]\([^)]*\)", "]", unescaped(caption.value)) for caption in at.caption
    )


def test_the_trigger_word_persona_is_told_the_trigger_word_is_the_cause(
    compare: Compare, console_on_demo_world: Callable[[int], AppTest]
) -> None:
    comparison_id, found = compare("trigger_overwritten", seed_count=2)
    header = found["header"]
    assert header.status == "finished"
    sent = header.columns[0]["input"]["prompt"].split(", ", 1)[0]  # the row's word, first
    trained = header.columns[2]["trigger_word"]
    assert sent and trained and sent != trained
    at = console_on_demo_world(comparison_id)
    kind, sentence = _bottom_line(at)
    assert kind == "error", sentence  # the app loses the face: worse, in red
    assert sentence.startswith(
        f"The app's images lose the face because the app sends the trigger word “{sent}”, "
        f"which this model never learned; Replicate's site sends “{trained}”"
    ), sentence
    # The figures follow it: the verdict lines and the table per column.
    assert any("loses the likeness" in unescaped(alert.value) for alert in at.error)
    assert any("faces" in frame.value.columns for frame in at.dataframe)
    # Prediction ids are in their own table to copy, not under every image.
    ids = {image.prediction_id for image in found["images"]}
    assert not any(prediction in _captions(at) for prediction in ids)
    (table,) = [frame.value for frame in at.dataframe if "prediction" in frame.value.columns]
    assert set(table["prediction"]) == ids


def test_the_stale_persona_is_told_the_app_uses_a_version_behind_the_latest(
    compare: Compare, console_on_demo_world: Callable[[int], AppTest]
) -> None:
    comparison_id, found = compare("stale_version", columns="stored,latest", seed_count=2)
    assert found["header"].status == "finished"
    at = console_on_demo_world(comparison_id)
    kind, sentence = _bottom_line(at)
    assert re.search(
        r"the app uses v1 · trained [^,]+, two versions behind the latest v3 · trained ", sentence
    ), sentence
    # Coloured by what it means: red, green, or neutral when within noise (then said so).
    if kind == "info":
        assert sentence.startswith("No difference beyond noise between the app and the latest")
        assert "more seeds would tell" in sentence
    elif sentence.startswith("No difference in likeness beyond noise"):  # but far less sharp
        assert "faces are far less sharp than" in sentence, sentence
        assert kind in ("error", "success"), (kind, sentence)
    else:
        assert kind in ("error", "success") and EMAIL_OF["stale_version"] in sentence, sentence
    # The columns are headed by their versions' names, not by bare hashes.
    (figures,) = [frame.value for frame in at.dataframe if "faces" in frame.value.columns]
    titles = list(figures["column"])
    assert titles[0].startswith("A: stored (v1 · trained ") and titles[0].endswith("app's input)")
    assert titles[1].startswith("B: latest (v3 · trained "), titles
