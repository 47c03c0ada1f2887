"""Running a sandbox: in this process on a background thread (tests, the dashboard),
or standalone (``python -m core.sandbox``)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from core.sandbox.engine import Sandbox, SandboxConfig
from core.sandbox.faults import FaultBook, RateLimits
from core.sandbox.http import build_app
from core.sandbox.shapes import ShapeBook

CLOCK_INTERVAL_SECONDS = 0.1


@dataclass
class RunningSandbox:
    """A sandbox serving on loopback; ``stop()`` shuts it down and closes its store."""

    base_url: str
    sandbox: Sandbox
    faults: FaultBook
    limits: RateLimits
    shapes: ShapeBook
    _server: uvicorn.Server
    _threads: list[threading.Thread] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        self._stopping.set()
        self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=10)
        self.sandbox.store.close()


def _clock(sandbox: Sandbox, stopping: threading.Event) -> None:
    """Move running jobs forward even when nobody polls them, as Replicate does."""
    while not stopping.wait(CLOCK_INTERVAL_SECONDS):
        try:
            sandbox.tick()
        except Exception:
            time.sleep(1)


def _server(
    sandbox: Sandbox, faults: FaultBook, limits: RateLimits, shapes: ShapeBook
) -> uvicorn.Server:
    config = uvicorn.Config(
        build_app(sandbox, faults, limits, shapes),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
        server_header=False,
    )
    return uvicorn.Server(config)


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def start_sandbox(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    config: SandboxConfig | None = None,
    **settings: Any,
) -> RunningSandbox:
    """Start a sandbox on a background thread; port 0 picks a free one."""
    sandbox_config = config or SandboxConfig()
    sandbox_config.update(settings)
    sandbox = Sandbox(data_dir, config=sandbox_config)
    faults, limits, shapes = FaultBook(), RateLimits(), ShapeBook()
    server = _server(sandbox, faults, limits, shapes)
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    running = RunningSandbox(f"http://{host}:{bound_port}", sandbox, faults, limits, shapes, server)
    serve = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{bound_port}", daemon=True
    )
    clock = threading.Thread(
        target=_clock,
        args=(sandbox, running._stopping),
        name=f"sandbox-clock-{bound_port}",
        daemon=True,
    )
    running._threads += [serve, clock]
    serve.start()
    clock.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not serve.is_alive():
            running.stop()
            raise RuntimeError(f"the sandbox did not start on {host}:{bound_port}")
        time.sleep(0.01)
    return running


def serve_forever(data_dir: Path, *, host: str, port: int, config: SandboxConfig) -> None:
    """Run in the foreground until interrupted (the CLI)."""
    sandbox = Sandbox(data_dir, config=config)
    faults, limits, shapes = FaultBook(), RateLimits(), ShapeBook()
    stopping = threading.Event()
    clock = threading.Thread(target=_clock, args=(sandbox, stopping), daemon=True)
    clock.start()
    try:
        _server(sandbox, faults, limits, shapes).run(sockets=[bind(host, port)])
    finally:
        stopping.set()
        sandbox.store.close()
