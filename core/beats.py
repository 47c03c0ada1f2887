"""A thread that does one small thing every few seconds while a block of work runs: a
scan's heartbeat, a lease renewed. It dies with its process, which is the point: whatever
it stamps stops being stamped when the work's process is killed, and that silence is how
the maintenance job tells a dead owner from a slow one."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Beating(ABC):
    """Context manager: ``beat()`` every ``every`` seconds until the block ends (and once
    on entry when ``beat_on_entry``); ``stop()`` ends it early from inside a beat."""

    def __init__(self, every: float, *, name: str, beat_on_entry: bool = False) -> None:
        self._every = every
        self._beat_on_entry = beat_on_entry
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @abstractmethod
    def beat(self) -> None:
        """One beat; it must not raise (a failed beat is tried again at the next)."""

    def stop(self) -> None:
        self._stop.set()

    def __enter__(self) -> Self:
        if self._beat_on_entry:
            self.beat()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self._every + 5)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.beat()
