"""Processes that outlive the console: DEMO's sandbox and its worker.

The console starts them on first use and later starts reuse them, like the embedded
PostgreSQL: a process is launched through a short-lived launcher that starts it in a
session of its own and exits, so it belongs to no console process and keeps none of its
files open (``close_fds``: a Streamlit server's listening socket inherited by a child
would keep the console's port taken after the console stops). A file lock makes two
starters (two Streamlit servers, a CLI) agree on one process.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import ConfigError

PROJECT_DIR = Path(__file__).resolve().parents[1]

_LAUNCHER = (
    "import subprocess, sys\n"
    "log = open(sys.argv[1], 'ab')\n"
    "child = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log,\n"
    "                         stderr=log, start_new_session=True, close_fds=True)\n"
    "print(child.pid)\n"
)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if needed) for the block, across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def spawn_detached(
    argv: list[str], *, log_path: Path, what: str, environment: dict[str, str] | None = None
) -> int:
    """Start ``argv`` detached, its output appended to ``log_path``; return its pid.

    The project folder is put on ``PYTHONPATH`` so ``python -m core....`` works from
    any working directory.
    """
    env = dict(os.environ if environment is None else environment)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(PROJECT_DIR), env.get("PYTHONPATH", "")) if part
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    launched = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(log_path), *argv],
        env=env,
        capture_output=True,
        text=True,
        close_fds=True,
        check=False,
        timeout=30,
    )
    if launched.returncode != 0 or not launched.stdout.strip().isdigit():
        raise ConfigError(f"Could not launch {what}: {launched.stderr[-300:]}")
    return int(launched.stdout.strip())


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (reaping it if it was our child and has ended)."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:  # not our child: ask the kernel instead
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
