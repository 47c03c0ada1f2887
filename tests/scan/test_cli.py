"""``python -m core.scan``: refuses bad settings with one line, before touching anything."""

from __future__ import annotations

import pytest

from core.scan.__main__ import main


def test_half_a_live_configuration_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.example.com/app")
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    assert main(["--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert "REPLICATE_API_TOKEN" in captured.err


def test_concurrency_must_be_at_least_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--concurrency", "0"])
    assert exited.value.code == 2
    assert "--concurrency must be 1 or more" in capsys.readouterr().err
