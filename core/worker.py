"""``python -m core.worker [--concurrency N] [--queue NAME ...] [--one-shot]``: run jobs.

See ``core.jobs.worker``. Start as many as you like, on as many machines as you like,
all pointed at the same database: they share the queue.
"""

from __future__ import annotations

from core.jobs.worker import main

if __name__ == "__main__":
    raise SystemExit(main())
