"""A loopback HTTP server standing in for the alert webhook (a Slack incoming webhook).

Why: an alert is a real POST, and what matters about it (one message, the retries, the
secret path never logged) only shows against a real server. This one listens on
127.0.0.1 only, on a port of its own (0: the system picks), records every request it
gets (body, path, what it answered), and can be told to answer the next requests with
other statuses, to answer late, or to be down (its port refusing connections).
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

LOOPBACK = "127.0.0.1"
# Slack's answers: a word in plain text.
BODIES = {200: "ok", 404: "no_service", 429: "rate_limited", 500: "internal_error"}


@dataclass(frozen=True)
class Received:
    """One request the receiver got, and the status it answered."""

    path: str
    body: bytes
    status: int

    @property
    def payload(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value

    @property
    def text(self) -> str:
        return str(self.payload["text"])


@dataclass(frozen=True)
class Answer:
    status: int
    delay_seconds: float = 0.0
    retry_after: str | None = None


class Receiver:
    """The webhook: ``url`` carries a secret path, as Slack's does
    (``/services/T…/B…/<token>``). Answers 200 unless told otherwise (``answer``)."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(12)
        self.path = f"/services/T0ALERTS/B0ALERTS/{self.token}"
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._answers: deque[Answer] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._placeholder: socket.socket | None = None
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{self.path}"

    def answer(self, *answers: Answer | int) -> None:
        """Answer the next requests so, in order (then 200 again)."""
        with self._lock:
            self._answers.extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def delivered(self) -> list[Received]:
        """The requests answered 2xx: the messages a channel would show."""
        return [found for found in self.received() if 200 <= found.status < 300]

    def up(self) -> None:
        """Listen (again, on the same port once it had one)."""
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        self._server = ThreadingHTTPServer((LOOPBACK, self.port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Stop listening; the port stays bound but not listening, so a connection to it is
        refused (and no other process can take it meanwhile)."""
        self.stop()
        placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        placeholder.bind((LOOPBACK, self.port))
        self._placeholder = placeholder

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None

    def _next_answer(self) -> Answer:
        with self._lock:
            return self._answers.popleft() if self._answers else Answer(200)

    def _record(self, found: Received) -> None:
        with self._lock:
            self._received.append(found)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = receiver._next_answer()
                receiver._record(Received(self.path, body, answer.status))
                time.sleep(answer.delay_seconds)
                said = BODIES.get(answer.status, "error").encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(said)))
                    if answer.retry_after is not None:
                        self.send_header("Retry-After", answer.retry_after)
                    self.end_headers()
                    self.wfile.write(said)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (a late answer)

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: the default prints every request line (the secret path)."""

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook on a loopback port of its own, stopped after the test."""
    running = Receiver()
    try:
        yield running
    finally:
        running.stop()
