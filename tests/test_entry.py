"""The console's entry, imported the way multiprocessing imports a parent's main module.

A process spawned (the retrain checks' measuring pool) by a process whose main module is
``dashboard/app.py`` (an AppTest's) runs that file as ``__mp_main__``. It once started a
whole DEMO console there, in the default data folder of whatever directory it ran in.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from tests.workers import MODE_SETTINGS

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


def test_the_entry_as_a_spawned_processes_main_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in MODE_SETTINGS:  # the settings of a DEMO: nothing configured
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    namespace = runpy.run_path(str(APP), run_name="__mp_main__")
    assert callable(namespace["main"])  # the file was run, its console was not started
    assert list(tmp_path.iterdir()) == []  # no .data: no database, sandbox or worker
