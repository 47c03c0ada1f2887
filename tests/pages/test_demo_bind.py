"""DEMO refuses to serve beyond this machine, wherever it is started from.

The repository's .streamlit/config.toml binds to loopback, but ``streamlit run`` reads it
only from the folder it runs in: started from anywhere else, Streamlit listens on every
interface, and DEMO has no login. The entry reads the address Streamlit serves on
(``server.address``, set here as ``--server.address`` would) before it starts anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from tests.pages.conftest import APP, LIVE_ENV_NAMES, LIVE_TOKEN, new_app, texts


@pytest.fixture
def serving_on() -> Iterator[Callable[[str | None], None]]:
    """Set Streamlit's ``server.address`` for this test; the one before is put back."""
    before = config.get_option("server.address")

    def serve(address: str | None) -> None:
        config.set_option("server.address", address)

    yield serve
    config.set_option("server.address", before)


@pytest.fixture
def demo_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A DEMO's settings (nothing configured) with a data folder of its own."""
    for name in LIVE_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("address", ["0.0.0.0", "192.0.2.10", None])
def test_demo_on_a_network_address_refuses_and_starts_nothing(
    address: str | None, serving_on: Callable[[str | None], None], demo_settings: Path
) -> None:
    serving_on(address)
    at = AppTest.from_file(APP, default_timeout=30)
    at.user = {}
    at.run()
    assert not at.exception, at.exception
    assert len(at.error) == 1
    refusal = str(at.error[0].value)
    assert "DEMO has no login, so it serves only this machine" in refusal
    assert f"python -m streamlit run {APP} --server.address 127.0.0.1" in refusal
    assert not at.selectbox and not at.dataframe and not at.button
    assert list(demo_settings.iterdir()) == []  # no database, sandbox or worker started


def test_live_on_a_network_address_is_unaffected(
    serving_on: Callable[[str | None], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in LIVE_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    # Never contacted: a logged-out visitor only gets the login page.
    monkeypatch.setenv("DATABASE_URL", "postgresql://console@127.0.0.1:9/app")
    monkeypatch.setenv("REPLICATE_API_TOKEN", LIVE_TOKEN)
    serving_on("0.0.0.0")
    at = new_app(email=None).run()
    assert not at.exception and not at.error
    assert at.button(key="login").label == "Log in"
    assert "Staff only" in texts(at)
