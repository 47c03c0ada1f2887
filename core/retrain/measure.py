"""Measuring a draft's photos on every core: a pool of processes, each with a dlib face
reader of its own.

Why processes and not threads: dlib's face descriptor holds the GIL (two threads computing
descriptors took 2.3 s for what one thread does in 2 x 0.93 s), so threads cannot use a
second core for the step that costs most. Processes also contain a file that crashes the
decoder or dlib: its process dies, the pool is rebuilt, the photos that were in flight are
measured again one at a time, and the one that kills its process again is rejected with
that reason instead of taking the worker down.

Processes are started with ``spawn`` (a worker has threads and open connections, which a
fork would copy half-way), load their reader once, and ignore Ctrl-C (the worker stops
them when it stops, after its running jobs finish).
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from core.imaging import SkippedMember, decode_photo
from core.imaging.faces import FaceReader
from core.imaging.measure import (
    MEASURE_LONG_SIDE,
    THUMBNAIL_SIDE,
    PhotoFacts,
    measure,
    thumbnail,
)

log = logging.getLogger(__name__)

# The measuring size and the one thumbnail are every photo path's (core.imaging.measure).
CHECK_LONG_SIDE = MEASURE_LONG_SIDE
__all__ = ["CHECK_LONG_SIDE", "THUMBNAIL_SIDE", "MeasuredPhoto", "PhotoMeasurer", "measure_file"]
# No photo takes this long (a 12 MP photo: about 0.3 s); past it the pool is taken to be
# stuck, its processes are stopped and the photos in flight are measured again alone.
PHOTO_DEADLINE_SECONDS = 120.0
CRASHED = "the checks' process died reading it (a file that crashes the decoder or dlib)"
TOO_SLOW = f"the checks took more than {PHOTO_DEADLINE_SECONDS:.0f} s on it"

Key = TypeVar("Key")


@dataclass(frozen=True)
class MeasuredPhoto:
    """One file's measurement: its facts and thumbnail, or why it could not be read."""

    facts: PhotoFacts | None
    thumbnail: bytes | None
    unreadable: str | None


def measure_file(name: str, content: bytes, reader: FaceReader) -> MeasuredPhoto:
    """Decode one file safely (the hostile-input rules of ``core.imaging``) at the checks'
    size, measure it and make its thumbnail."""
    decoded = decode_photo(
        name, io.BytesIO(content), byte_size=len(content), long_side=CHECK_LONG_SIDE
    )
    if isinstance(decoded, SkippedMember):
        return MeasuredPhoto(facts=None, thumbnail=None, unreadable=decoded.reason)
    try:
        return MeasuredPhoto(
            facts=measure(decoded, reader),
            thumbnail=thumbnail(decoded.image),
            unreadable=None,
        )
    finally:
        decoded.image.close()


# -- in each process ---------------------------------------------------------------------------

_process_reader: FaceReader | None = None


def _start_process() -> None:
    global _process_reader
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when its pool stops
    _process_reader = FaceReader()


def _measure_in_process(name: str, content: bytes) -> MeasuredPhoto:
    if _process_reader is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("the process has no face reader")
    return measure_file(name, content, _process_reader)


# -- the pool ----------------------------------------------------------------------------------


def default_processes() -> int:
    """One process per core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class PhotoMeasurer:
    """Measures photos on ``processes`` processes (started on first use, kept until
    ``close``); safe to share between threads (their photos share the processes)."""

    def __init__(self, processes: int | None = None) -> None:
        self.processes = max(1, processes or default_processes())
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> PhotoMeasurer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def start(self) -> None:
        """Start the processes and load their readers now (else on the first photo)."""
        list(self._executor().map(_noop, range(self.processes)))

    def measure(
        self, files: Iterable[tuple[Key, str, bytes]]
    ) -> Iterator[tuple[Key, MeasuredPhoto]]:
        """Each file's measurement as it is ready (not in the order given), with its key.
        ``files`` is read lazily, a few ahead of the processes, so a caller can load each
        file's bytes only when it is about to be measured."""
        source = iter(files)
        in_flight: dict[Future[MeasuredPhoto], tuple[Key, str, bytes]] = {}
        while True:
            while len(in_flight) < 2 * self.processes:
                item = next(source, None)
                if item is None:
                    break
                in_flight[self._submit(item)] = item
            if not in_flight:
                return
            done, _ = wait(in_flight, timeout=PHOTO_DEADLINE_SECONDS, return_when=FIRST_COMPLETED)
            if not done:
                log.warning(
                    "photo checks: nothing finished in %.0f s; restarting the processes",
                    PHOTO_DEADLINE_SECONDS,
                )
                stuck = list(in_flight.values())
                in_flight.clear()
                self._kill()
                yield from self._alone(stuck, TOO_SLOW)
                continue
            broken = []
            for future in done:
                item = in_flight.pop(future)
                try:
                    yield item[0], future.result()
                except BrokenProcessPool:
                    broken.append(item)
            if broken:
                # Every photo in flight failed with the pool, not only the culprit.
                broken += list(in_flight.values())
                in_flight.clear()
                log.warning(
                    "photo checks: a process died; measuring %d photos again alone", len(broken)
                )
                self._kill()
                yield from self._alone(broken, CRASHED)

    def _alone(
        self, items: list[tuple[Key, str, bytes]], failure: str
    ) -> Iterator[tuple[Key, MeasuredPhoto]]:
        """Each photo on a pool of its own turn: the one that fails again is named."""
        for key, name, content in items:
            future = self._submit((key, name, content))
            try:
                yield key, future.result(timeout=PHOTO_DEADLINE_SECONDS)
            except (BrokenProcessPool, TimeoutError):
                self._kill()
                yield key, MeasuredPhoto(facts=None, thumbnail=None, unreadable=failure)

    def _submit(self, item: tuple[Key, str, bytes]) -> Future[MeasuredPhoto]:
        _, name, content = item
        return self._executor().submit(_measure_in_process, name, content)

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_process,
                )
            return self._pool

    def _kill(self) -> None:
        """Stop the pool's processes at once (the next photo starts a new pool)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        # The executor keeps its processes in a private mapping; a stuck one would
        # otherwise keep shutdown waiting for ever.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)


def _noop(_: int) -> None:
    return None
