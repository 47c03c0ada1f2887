"""The DEMO sandbox process: started once per data folder, found again by later callers,
including other processes starting at the same moment."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from core.sandbox.service import ensure_sandbox, stop_sandbox

ROOT = Path(__file__).resolve().parents[2]


def test_started_once_and_reused(tmp_path: Path) -> None:
    folder = tmp_path / "sandbox"
    try:
        first = ensure_sandbox(folder)
        assert httpx.get(f"{first}/_sandbox/health").json()["ok"] is True
        assert ensure_sandbox(folder) == first
    finally:
        assert stop_sandbox(folder)
    assert not stop_sandbox(folder)


def test_parallel_processes_share_one_sandbox(tmp_path: Path) -> None:
    folder = tmp_path / "sandbox"
    code = (
        "import sys; from pathlib import Path; from core.sandbox.service import "
        "ensure_sandbox; print(ensure_sandbox(Path(sys.argv[1])))"
    )
    try:
        starters = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(folder)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        urls = {starter.communicate(timeout=60)[0].strip() for starter in starters}
        assert len(urls) == 1
        assert httpx.get(f"{urls.pop()}/_sandbox/health").status_code == 200
    finally:
        stop_sandbox(folder)


def test_a_restarted_sandbox_keeps_its_port(tmp_path: Path) -> None:
    """The demo world stores absolute sandbox URLs: a restart must come back on them."""
    folder = tmp_path / "sandbox"
    try:
        first = ensure_sandbox(folder)
        stop_sandbox(folder)
        assert ensure_sandbox(folder) == first
    finally:
        stop_sandbox(folder)


def test_the_sandbox_keeps_none_of_the_starters_files(tmp_path: Path) -> None:
    """A console's listening socket inherited by the sandbox would keep the console's port
    taken after the console stops (seen with Streamlit): the sandbox must not hold it."""
    folder = tmp_path / "sandbox"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.set_inheritable(True)
    try:
        ensure_sandbox(folder)
        pid = json.loads((folder / "server.json").read_text())["pid"]
        held = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(FileNotFoundError):  # one the sandbox closed meanwhile
                held.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        assert f"socket:[{os.fstat(listener.fileno()).st_ino}]" not in held
    finally:
        listener.close()
        stop_sandbox(folder)


def test_a_dead_sandbox_is_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "sandbox"
    try:
        ensure_sandbox(folder)
        stop_sandbox(folder)
        (folder / "server.json").write_text('{"base_url": "http://127.0.0.1:9", "pid": 1}')
        again = ensure_sandbox(folder)
        assert httpx.get(f"{again}/_sandbox/health").status_code == 200
    finally:
        stop_sandbox(folder)
