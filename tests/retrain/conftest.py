"""The retrain tests' world: the job tests' own (a database of each test's own, a small
world of users trained on the session's sandbox, real worker processes)."""

from __future__ import annotations

from tests.jobs.conftest import workers, world

__all__ = ["workers", "world"]
