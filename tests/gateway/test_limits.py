"""Client-side pacing with a fake clock, and the per-item isolation of bulk fetches."""

from __future__ import annotations

import threading

from core.gateway.limits import TokenBucket, map_bounded
from core.gateway.values import Training


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_bucket_allows_a_burst_then_paces_to_the_rate() -> None:
    fake = FakeTime()
    bucket = TokenBucket(600, burst=5, clock=fake.clock, sleep=fake.sleep)  # 10/s
    waits = [bucket.acquire() for _ in range(25)]
    assert waits[:5] == [0.0] * 5
    assert all(wait > 0 for wait in waits[5:])
    # 25 calls at 10/s with 5 free: the 25th may start 2 s after the first.
    assert abs(fake.now - 2.0) < 1e-6


def test_bucket_refills_while_idle() -> None:
    fake = FakeTime()
    bucket = TokenBucket(60, burst=1, clock=fake.clock, sleep=fake.sleep)  # 1/s
    assert bucket.acquire() == 0.0
    fake.now += 5
    assert bucket.acquire() == 0.0
    assert bucket.acquire() > 0.0


def test_threads_sharing_a_bucket_get_distinct_slots() -> None:
    """With the clock frozen, 200 reservations from 8 threads must be 10 free slots then
    one slot every 10 ms: no two threads are ever let through for the same slot."""
    bucket = TokenBucket(6000, burst=10, clock=lambda: 0.0, sleep=lambda seconds: None)
    waits: list[float] = []
    lock = threading.Lock()

    def reserve() -> None:
        for _ in range(25):
            wait = bucket.acquire()
            with lock:
                waits.append(round(wait, 6))

    threads = [threading.Thread(target=reserve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == [0.0] * 10 + [round(0.01 * n, 6) for n in range(1, 191)]


def test_map_bounded_keeps_failures_with_their_items() -> None:
    running, peak = 0, 0
    lock = threading.Lock()

    def work(item: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            if item % 7 == 0:
                raise ValueError(f"bad {item}")
            return item * 2
        finally:
            with lock:
                running -= 1

    outcomes = map_bounded(work, range(1, 50), max_workers=4)
    assert [outcome.item for outcome in outcomes] == list(range(1, 50))
    assert [o.value for o in outcomes if o.error is None] == [i * 2 for i in range(1, 50) if i % 7]
    assert [str(o.error) for o in outcomes if o.error] == [f"bad {i}" for i in range(7, 50, 7)]
    assert peak <= 4


def test_training_values_from_raw_json() -> None:
    training = Training.from_api(
        {
            "id": "abc",
            "model": "replicate/fast-flux-trainer",
            "version": "f" * 64,
            "status": "aborted",
            "input": {"trigger_word": "user1"},
            "output": None,
            "created_at": "2026-01-02T03:04:05.123456Z",
        }
    )
    assert training.is_terminal and training.destination is None
    assert training.input["trigger_word"] == "user1"
    done = Training.from_api(
        {
            "id": "x",
            "status": "succeeded",
            "output": {"version": "o/n:" + "a" * 64, "weights": "https://w"},
        }
    )
    assert done.destination == "o/n" and done.version_hash == "a" * 64
    malformed = Training.from_api(
        {"id": "y", "status": "succeeded", "output": {"version": "o/n:short"}}
    )
    assert malformed.version_hash is None
