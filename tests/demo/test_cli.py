"""``python -m core.demo``: refuses LIVE before touching anything."""

from __future__ import annotations

import pytest

from core.demo.__main__ import main


def test_refuses_to_seed_in_live(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.example.com/app")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_Zx81kQm2Lp0Ws7Ty4Nc6Vb9")
    assert main(["--reset"]) == 2
    assert "only in DEMO" in capsys.readouterr().err


def test_rejects_a_negative_user_count() -> None:
    with pytest.raises(SystemExit):
        main(["--users", "-3"])
