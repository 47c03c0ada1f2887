"""Links to Replicate's pages (LIVE) or the API's JSON for the same object (elsewhere)."""

from __future__ import annotations

from core.links import model_link, training_link, version_link

LIVE = "https://api.replicate.com"
SANDBOX = "http://127.0.0.1:8787"
HASH = "ab" * 32


def test_live_links_open_replicate_s_own_pages() -> None:
    assert model_link(LIVE, "sandrasocial/user-1-selfie-lora") == (
        "https://replicate.com/sandrasocial/user-1-selfie-lora"
    )
    assert version_link(LIVE, "sandrasocial/m", HASH) == (
        f"https://replicate.com/sandrasocial/m/versions/{HASH}"
    )
    assert training_link(LIVE, "kpqhbyhviba7byfbwdoekrn5pn") == (
        "https://replicate.com/p/kpqhbyhviba7byfbwdoekrn5pn"
    )


def test_elsewhere_links_open_the_api_json_and_never_leak_odd_characters() -> None:
    assert model_link(SANDBOX + "/", "o/m") == "http://127.0.0.1:8787/v1/models/o/m"
    assert training_link(SANDBOX, "a/b?c") == "http://127.0.0.1:8787/v1/trainings/a%2Fb%3Fc"
    assert version_link(SANDBOX, "o/m x", HASH).endswith(f"/v1/models/o/m%20x/versions/{HASH}")
