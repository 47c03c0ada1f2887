"""The start gate: a planned failure must hit the training it was planned for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core.demo.history import TrainingStarts
from tests.waits import wait_for


def _wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    wait_for(condition, timeout=seconds, what="the starts to reach that state", every=0.005)


def test_an_exclusive_start_waits_for_running_ones_and_goes_before_new_ones() -> None:
    starts = TrainingStarts()
    order: list[str] = []

    def exclusive() -> None:
        with starts.exclusive():
            order.append("exclusive")

    def shared() -> None:
        with starts.shared():
            order.append("later shared")

    with starts.shared():
        first = threading.Thread(target=exclusive)
        first.start()
        _wait_until(lambda: starts._waiting == 1)
        second = threading.Thread(target=shared)
        second.start()
        time.sleep(0.05)
        order.append("running shared")
    first.join(5)
    second.join(5)
    assert order == ["running shared", "exclusive", "later shared"]
