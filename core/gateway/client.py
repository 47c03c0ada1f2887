"""How the gateway holds the official ``replicate`` client: ``build_client`` is the one
place that knows how replicate 1.x is wired, and it uses only its public surface.

replicate 1.0.7 builds its own httpx session lazily and keeps it private, wraps every
transport in a ``RetryTransport`` (10 tries on 429/503/504, unbounded ``Retry-After``
sleeps), sends prediction creates and uploads with ``timeout=None`` (no timeout at all),
and its errors drop the response. ``build_client`` passes the client an httpx mount of
the gateway's own transport (``Client(**httpx_kwargs)`` forwards ``mounts`` and
``event_hooks`` to httpx), so that:

- every request goes through ``_BoundedTransport``, past the hidden retry loop: the
  gateway is the only one retrying; and no request waits without a timeout;
- every answer the client receives is kept, per thread (``last_answer``): when the
  client cannot parse what Replicate really sent, the gateway reads that same answer;
- the gateway's own requests (pages the client cannot follow, Replicate's file
  downloads) share the client's connection pool, token and timeouts.

``tests/gateway/test_client.py`` fails on a client version that stops forwarding these.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from typing import Any

import httpx
from replicate.client import Client

from core.errors import ConfigError

REPLICATE_MAJOR = "1"  # 2.x retries POSTs itself and Replicate has no idempotency key
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0, read=20.0, write=30.0, pool=10.0)
_USER_AGENT = "sselfie-console"


@dataclass(frozen=True)
class Answer:
    """One HTTP answer the official client received, read in full (API bodies are small)."""

    status: int
    headers: httpx.Headers
    body: bytes


class _AnswerLog:
    """The last answer each thread's client call received (gateway calls are per thread)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def record(self, response: httpx.Response) -> None:
        response.read()
        self._local.answer = Answer(response.status_code, response.headers, response.content)

    def forget(self) -> None:
        self._local.answer = None

    def last(self) -> Answer | None:
        answer: Answer | None = getattr(self._local, "answer", None)
        return answer


class _BoundedTransport(httpx.BaseTransport):
    """The shared connection pool, giving every request the gateway's timeouts where the
    caller asked for none (replicate 1.0.7 sends creates and uploads with timeout=None),
    and sending no Authorization header at all for a blank token."""

    def __init__(self, timeout: httpx.Timeout) -> None:
        self._pool = httpx.HTTPTransport()
        self._defaults = timeout.as_dict()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") == "":
            del request.headers["authorization"]
        asked = dict(request.extensions.get("timeout") or {})
        request.extensions["timeout"] = {
            key: asked[key] if asked.get(key) is not None else default
            for key, default in self._defaults.items()
        }
        return self._pool.handle_request(request)

    def close(self) -> None:
        self._pool.close()


class ReplicateConnection:
    """The official client (``client``) and the gateway's two sessions beside it.

    ``api``: the client's base URL, token, timeouts and connection pool, for requests the
    client has no public call for. ``public``: no token at all, for third-party downloads
    (the app's blob store, replicate.delivery). ``close()`` closes them all.
    """

    def __init__(
        self,
        client: Client,
        api: httpx.Client,
        public: httpx.Client,
        transport: _BoundedTransport,
        answers: _AnswerLog,
    ) -> None:
        self.client = client
        self.api = api
        self.public = public
        self._transport = transport
        self._answers = answers

    @property
    def base_url(self) -> httpx.URL:
        return self.api.base_url

    @property
    def timeout(self) -> httpx.Timeout:
        return self.api.timeout

    def forget_answer(self) -> None:
        """Before a client call: so that ``last_answer`` is that call's or None."""
        self._answers.forget()

    def last_answer(self) -> Answer | None:
        """The answer this thread's last client call received."""
        return self._answers.last()

    def close(self) -> None:
        """Close every session and the shared pool (keep-alive sockets). Idempotent."""
        self.api.close()
        self.public.close()
        self._transport.close()


def build_client(
    api_token: str, base_url: str | None = None, timeout: httpx.Timeout = DEFAULT_TIMEOUT
) -> ReplicateConnection:
    """A connection for the gateway: explicit token and base URL, never read from globals.

    Raises ``ConfigError`` for a replicate client that is not 1.x or a base URL that is
    not http(s).
    """
    try:
        version = installed_version("replicate")
    except PackageNotFoundError:
        version = ""
    check_client_version(version)
    base = (base_url or "https://api.replicate.com").rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ConfigError(f"REPLICATE_BASE_URL must be an http(s) URL, not {base[:60]!r}.")
    transport = _BoundedTransport(timeout)
    answers = _AnswerLog()
    mounts: dict[str, Any] = {"all://": transport}
    client = Client(
        api_token=api_token,
        base_url=base,
        timeout=timeout,
        # An empty Authorization stops the client reading REPLICATE_API_TOKEN for a blank
        # token; the transport removes it before sending.
        headers={} if api_token else {"Authorization": ""},
        mounts=mounts,
        event_hooks={"response": [answers.record]},
    )
    headers = {"User-Agent": f"{_USER_AGENT} replicate-python/{version}"}
    if api_token:
        headers["Authorization"] = f"Bearer {api_token}"
    api = httpx.Client(base_url=base, headers=headers, timeout=timeout, transport=transport)
    public = httpx.Client(headers={"User-Agent": _USER_AGENT}, timeout=timeout, transport=transport)
    return ReplicateConnection(client, api, public, transport, answers)


def check_client_version(version: str) -> None:
    """``ConfigError`` unless ``version`` is a replicate 1.x: the wiring above is 1.x's,
    and 2.x retries POSTs itself (Replicate has no idempotency key: a create paid twice)."""
    if version.split(".")[0] != REPLICATE_MAJOR:
        raise ConfigError(
            f"replicate {version or '(not installed)'} is installed; the console needs 1.x "
            "(see the pin in requirements.txt: 2.x may send a paid create twice)."
        )


def close_client(connection: ReplicateConnection) -> None:
    """Close a connection from ``build_client`` (the official client has no close())."""
    connection.close()
