"""Waiting in tests: one helper, always with a deadline that names what it waited for.

Why: a loop that polls without a deadline hangs a run until pytest-timeout kills it and
says nothing of what never happened; a loop with its own ad-hoc deadline says it a
different way each time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy (returned); fail naming ``what``
    at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class Ends(Protocol):
    @property
    def is_terminal(self) -> bool: ...


Ending = TypeVar("Ending", bound=Ends)


def until_ended(
    read: Callable[[], Ending], *, timeout: float = 30, what: str = "it to end"
) -> Ending:
    """``read()`` again until what it returns (a training, a prediction) has ended."""
    ended: Ending = wait_for(
        lambda: value if (value := read()).is_terminal else None,
        timeout=timeout,
        what=what,
        every=0.02,
    )
    return ended
