"""The DEMO mode's sandbox: one process per data folder, started on first use, reused by
later runs and by parallel processes (several Streamlit servers, the CLI, the bench).

Its address is kept in ``<folder>/server.json``; a file lock makes two starters agree on
one process. The process is detached (``core.detached``), like the embedded PostgreSQL,
so the second start of the console costs a health check, not a launch.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import httpx

from core.detached import alive, locked, spawn_detached
from core.errors import ConfigError

PREFERRED_PORT = 8787
START_TIMEOUT_SECONDS = 30.0
DEMO_TRAINING_SECONDS = 20.0


def _healthy(base_url: str, folder: Path) -> bool:
    """True when ``base_url`` is a sandbox serving this very folder."""
    try:
        answer = httpx.get(f"{base_url}/_sandbox/health", timeout=2.0)
        return answer.status_code == 200 and Path(answer.json()["data_dir"]).resolve() == (
            folder.resolve()
        )
    except (httpx.HTTPError, ValueError, KeyError):
        return False


def _port(previous: int | None, *, preferred: bool = True) -> int:
    """The port this folder's sandbox had before (the URLs stored in the demo world carry
    it), else 8787 (the README's address), else any free port."""
    wanted = (*((previous,) if previous else ()), *((PREFERRED_PORT,) if preferred else ()))
    for candidate in (*wanted, 0):
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
    with locked(folder / "server.lock"):
        previous_port = None
        if record.exists():
            try:
                base_url = str(json.loads(record.read_text())["base_url"])
                previous_port = int(base_url.rsplit(":", 1)[1])
            except (ValueError, KeyError, IndexError):
                base_url = ""
            if base_url and _healthy(base_url, folder):
                return base_url
        # The port chosen may be taken between choosing it and the sandbox binding it
        # (another process starting a sandbox at that moment): then any free port.
        for port in (_port(previous_port), _port(None, preferred=False)):
            pid = spawn_detached(
                [
                    sys.executable,
                    "-m",
                    "core.sandbox",
                    "--port",
                    str(port),
                    "--data",
                    str(folder),
                    "--training-seconds",
                    str(DEMO_TRAINING_SECONDS),
                ],
                log_path=folder / "sandbox.log",
                what="the Replicate sandbox",
            )
            base_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not _healthy(base_url, folder):
                if not alive(pid):
                    break
                if time.monotonic() > deadline:
                    raise ConfigError(
                        f"The Replicate sandbox did not start (see {folder / 'sandbox.log'})."
                    )
                time.sleep(0.1)
            else:
                break
        else:
            raise ConfigError(
                f"The Replicate sandbox did not start (see {folder / 'sandbox.log'})."
            )
        record.write_text(json.dumps({"base_url": base_url, "pid": pid}))
        return base_url


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
        alive(pid)  # reap it if it was our child
    except (ValueError, AttributeError, ProcessLookupError):
        return False
    return True
