"""Real worker processes (``python -m core.worker``) for tests (``wait_for`` lives in
``tests.waits`` and is re-exported here for the tests that wait on workers).

Why: the job queue is only worth testing with the workers as deployed, separate
processes in LIVE mode (the test database as DATABASE_URL, the sandbox as
REPLICATE_BASE_URL); and every wait in a test needs a deadline that names what it
waited for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.waits import wait_for

ROOT = Path(__file__).resolve().parents[1]
__all__ = ["ROOT", "Workers", "wait_for", "worker_env"]

WORKER_TOKEN = "r8_jobsWorkerTestToken7"
# Settings that pick the mode: a worker's environment sets them itself.
MODE_SETTINGS = (
    "DATABASE_URL",
    "OPS_DATABASE_URL",
    "REPLICATE_API_TOKEN",
    "REPLICATE_BASE_URL",
    "REPLICATE_OWNER",
    "REPLICATE_USERNAME",
    "DATA_DIR",
)


def worker_env(
    *, database_url: str, sandbox_url: str, data_dir: Path, **extra: str
) -> dict[str, str]:
    """A worker's (or the CLI's) environment: LIVE, aimed at a test database and sandbox,
    no schedule, no watch."""
    env = {name: value for name, value in os.environ.items() if name not in MODE_SETTINGS}
    env.update(
        DATABASE_URL=database_url,
        REPLICATE_API_TOKEN=WORKER_TOKEN,
        REPLICATE_BASE_URL=sandbox_url,
        DATA_DIR=str(data_dir),
        SCAN_SCHEDULE="",
        WATCH_INTERVAL_SECONDS="0",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


@dataclass
class Workers:
    """Worker processes started by a test or module, stopped (SIGTERM, then SIGKILL) by
    ``stop_all``; their output kept in ``log_dir`` for failure reports."""

    env: Callable[..., dict[str, str]]
    log_dir: Path
    started: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def start(
        self, *, concurrency: int = 2, queues: tuple[str, ...] = (), **env: str
    ) -> subprocess.Popen[bytes]:
        log = self.log_dir / f"worker-{len(self.started)}.log"
        argv = [sys.executable, "-m", "core.worker", "--concurrency", str(concurrency)]
        for queue in queues:
            argv += ["--queue", queue]
        with log.open("wb") as output:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env(**env),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.started.append((process, log))
        return process

    def ensure_one(self) -> None:
        """Start a worker unless one of these is running."""
        if not any(process.poll() is None for process, _ in self.started):
            self.start()

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text()[-3000:]}" for _, log in self.started if log.exists()
        )

    def full_logs(self) -> str:
        """Every started worker's whole log."""
        return "\n".join(log.read_text() for _, log in self.started if log.exists())

    def stop_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in self.started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
