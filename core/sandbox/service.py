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


def _port() -> int:
    """8787 when it is free (the README's address), otherwise any free port."""
    for candidate in (PREFERRED_PORT, 0):
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
        if record.exists():
            try:
                base_url = str(json.loads(record.read_text())["base_url"])
            except (ValueError, KeyError):
                base_url = ""
            if base_url and _healthy(base_url, folder):
                return base_url
        port = _port()
        log = (folder / "sandbox.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "core.sandbox", "--port", str(port), "--data", str(folder),
             "--training-seconds", str(DEMO_TRAINING_SECONDS)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _healthy(base_url, folder):
            if process.poll() is not None or time.monotonic() > deadline:
                raise ConfigError(
                    f"The Replicate sandbox did not start (see {folder / 'sandbox.log'}).")
            time.sleep(0.1)
        record.write_text(json.dumps({"base_url": base_url, "pid": process.pid}))
        return base_url


def stop_sandbox(folder: Path) -> bool:
    """Stop this folder's sandbox process if one is recorded and running."""
    record = folder.resolve() / "server.json"
    if not record.exists():
        return False
    try:
        pid = int(json.loads(record.read_text())["pid"])
        os.kill(pid, 15)
    except (ValueError, KeyError, ProcessLookupError):
        return False
    finally:
        record.unlink(missing_ok=True)
    return True
