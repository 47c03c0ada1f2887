"""The DEMO mode's sandbox: one process per data folder, started on first use, reused by
later runs and by parallel processes (several Streamlit servers, the CLI, the bench).

Its address is kept in ``<folder>/server.json``; a file lock makes two starters agree on
one process. The process is detached, like the embedded PostgreSQL, so the second start
of the console costs a health check, not a launch.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from core.errors import ConfigError

PREFERRED_PORT = 8787
START_TIMEOUT_SECONDS = 30.0
DEMO_TRAINING_SECONDS = 20.0


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _healthy(base_url: str, folder: Path) -> bool:
    """True when ``base_url`` is a sandbox serving this very folder."""
    try:
        answer = httpx.get(f"{base_url}/_sandbox/health", timeout=2.0)
        return answer.status_code == 200 and Path(answer.json()["data_dir"]).resolve() == (
            folder.resolve())
    except (httpx.HTTPError, ValueError, KeyError):
        return False


def _port(previous: int | None) -> int:
    """The port this folder's sandbox had before (the URLs stored in the demo world carry
    it), else 8787 (the README's address), else any free port."""
    for candidate in (*((previous,) if previous else ()), PREFERRED_PORT, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise ConfigError("No free loopback port for the Replicate sandbox.")


def ensure_sandbox(folder: Path) -> str:
    """The base URL of this folder's sandbox, starting it if it is not running."""
    folder = folder.resolve()
    record = folder / "server.json"
    with _locked(folder / "server.lock"):
        previous_port = None
        if record.exists():
            try:
                base_url = str(json.loads(record.read_text())["base_url"])
                previous_port = int(base_url.rsplit(":", 1)[1])
            except (ValueError, KeyError, IndexError):
                base_url = ""
            if base_url and _healthy(base_url, folder):
                return base_url
        port = _port(previous_port)
        pid = _spawn_detached(
            [sys.executable, "-m", "core.sandbox", "--port", str(port), "--data", str(folder),
             "--training-seconds", str(DEMO_TRAINING_SECONDS)],
            log_path=folder / "sandbox.log",
        )
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _healthy(base_url, folder):
            if not _alive(pid) or time.monotonic() > deadline:
                raise ConfigError(
                    f"The Replicate sandbox did not start (see {folder / 'sandbox.log'}).")
            time.sleep(0.1)
        record.write_text(json.dumps({"base_url": base_url, "pid": pid}))
        return base_url


# Runs in a short-lived launcher process: it starts the sandbox in a session of its own
# and exits, so the sandbox belongs to no console process and keeps none of its files.
_LAUNCHER = (
    "import subprocess, sys\n"
    "log = open(sys.argv[1], 'ab')\n"
    "child = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log,\n"
    "                         stderr=log, start_new_session=True, close_fds=True)\n"
    "print(child.pid)\n"
)


def _spawn_detached(argv: list[str], *, log_path: Path) -> int:
    """Start ``argv`` detached, output to ``log_path``; return its pid.

    ``close_fds`` matters: a Streamlit server's listening socket inherited by the sandbox
    would keep the console's port taken after the console stops.
    """
    environment = dict(os.environ)
    project = str(Path(__file__).resolve().parents[2])
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (project, environment.get("PYTHONPATH", "")) if part)
    launched = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(log_path), *argv], env=environment,
        capture_output=True, text=True, close_fds=True, check=False, timeout=30,
    )
    if launched.returncode != 0 or not launched.stdout.strip().isdigit():
        raise ConfigError(f"Could not launch the Replicate sandbox: {launched.stderr[-300:]}")
    return int(launched.stdout.strip())


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:  # not our child: ask the kernel instead
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def stop_sandbox(folder: Path) -> bool:
    """Stop this folder's sandbox process if one is recorded and running.

    The record keeps the address (not the pid), so the next start takes the same port.
    """
    record = folder.resolve() / "server.json"
    if not record.exists():
        return False
    try:
        recorded = json.loads(record.read_text())
        pid = recorded.get("pid")
        if not isinstance(pid, int):
            return False
        record.write_text(json.dumps({"base_url": recorded.get("base_url"), "pid": None}))
        os.kill(pid, 15)
        _alive(pid)  # reap it if it was our child
    except (ValueError, AttributeError, ProcessLookupError):
        return False
    return True
