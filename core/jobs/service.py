"""DEMO's own worker: one detached ``python -m core.worker`` per data folder.

The console starts it on first use and checks it on every page load (a pid file and a
look at the process: milliseconds), restarting it if it died; later consoles, the CLI
and parallel Streamlit servers reuse it. ``python -m core.db stop`` stops it. In LIVE
the console starts nothing: workers are deployed (README, *Deploying*).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import psutil

from core.config import Settings
from core.detached import alive, locked, spawn_detached

WORKER_SUBDIR = "worker"
STOP_TIMEOUT_SECONDS = 15.0


def worker_folder(data_dir: Path) -> Path:
    return data_dir.resolve() / WORKER_SUBDIR


def _recorded_pid(folder: Path) -> int | None:
    try:
        pid = json.loads((folder / "worker.json").read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) else None


def _is_worker(pid: int) -> bool:
    """The process is alive and is a console worker (a pid can be reused by anything)."""
    if not alive(pid):
        return False
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and "core.worker" in " ".join(
            process.cmdline()
        )
    except psutil.Error:
        return False


def running_worker(data_dir: Path) -> int | None:
    """The pid of this folder's worker if it runs, else None."""
    pid = _recorded_pid(worker_folder(data_dir))
    return pid if pid is not None and _is_worker(pid) else None


def ensure_worker(settings: Settings) -> tuple[int, bool]:
    """This data folder's worker, started if it is not running: (pid, started now)."""
    folder = worker_folder(settings.data_dir)
    with locked(folder / "worker.lock"):
        pid = _recorded_pid(folder)
        if pid is not None and _is_worker(pid):
            return pid, False
        environment = dict(os.environ)
        # The worker may start from another working directory: give it the same folder.
        environment["DATA_DIR"] = str(settings.data_dir.resolve())
        pid = spawn_detached(
            [
                sys.executable,
                "-m",
                "core.worker",
                "--concurrency",
                str(settings.worker_concurrency),
                "--name",
                "demo-worker",
            ],
            log_path=folder / "worker.log",
            what="the DEMO worker",
            environment=environment,
        )
        (folder / "worker.json").write_text(json.dumps({"pid": pid, "started": time.time()}))
        return pid, True


def stop_worker(data_dir: Path) -> bool:
    """Stop this folder's worker if it runs (running jobs finish first, up to
    ``STOP_TIMEOUT_SECONDS``; then it is killed and its jobs run again later)."""
    folder = worker_folder(data_dir)
    with locked(folder / "worker.lock"):
        pid = _recorded_pid(folder)
        if pid is None or not _is_worker(pid):
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
        (folder / "worker.json").unlink(missing_ok=True)
        return True
