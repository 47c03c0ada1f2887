"""One attempt at reading a file by URL, under the gateway's download policy.

The policy (``ReplicateGateway.download`` says it to callers):
- a file of this Replicate's files API is read from ``/v1/files/{id}/download`` with the
  token; any other URL with a session that has no token at all;
- redirects are followed by hand, at most ``MAX_REDIRECTS``, only to https or (when the
  API is a sandbox on loopback) to the sandbox's own origin, never in a loop;
- the body is streamed into one growing buffer, never held twice, and refused past
  ``max_bytes`` (declared or not); ``Accept-Encoding: identity``, so a compressed answer
  cannot expand past the cap inside one chunk;
- every step checks an overall deadline, and each request's timeouts are cut to what is
  left of it.
Permanent refusals raise ``DataRejected``; what may work later raises
``ReplicateUnavailable`` (or ``Unauthorized`` for our own token); statuses worth
retrying raise ``ApiRefusal`` for the gateway's retry loop.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from core.errors import DataRejected, ReplicateUnavailable, Unauthorized
from core.gateway.answers import ApiRefusal
from core.gateway.client import ReplicateConnection
from core.gateway.retry import RETRYABLE_STATUSES
from core.gateway.urls import origin, redirect_allowed, shown_url

MAX_REDIRECTS = 5
DOWNLOAD_DEADLINE_SECONDS = 120.0
# A file of the files API: ``urls.get`` is /v1/files/{id}, its bytes are at .../download.
_OWN_FILE_PATH = re.compile(r"^/v1/files/([A-Za-z0-9_-]+)(?:/download)?/?$")
_GONE_STATUSES = frozenset({404, 410})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_IDENTITY = {"Accept-Encoding": "identity"}


@dataclass(frozen=True)
class Deadline:
    """The moment a download must be over, on the monotonic clock."""

    at: float
    seconds: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, seconds, clock)

    def left(self) -> float:
        return self.at - self.clock()

    def check(self, shown: str) -> None:
        if self.left() <= 0:
            raise ReplicateUnavailable(
                f"Downloading {shown} did not finish within {self.seconds:.0f} s; the host "
                "is too slow right now. Nothing was changed; try again later."
            )

    def timeout(self, base: httpx.Timeout) -> httpx.Timeout:
        """``base`` with every limit cut to the time left."""
        left = max(0.001, self.left())

        def cut(limit: float | None) -> float:
            return left if limit is None else min(limit, left)

        return httpx.Timeout(
            connect=cut(base.connect),
            read=cut(base.read),
            write=cut(base.write),
            pool=cut(base.pool),
        )


def parse_download_url(url: str) -> httpx.URL:
    """The URL to read, or ``DataRejected`` when it is not an http(s) URL with a host."""
    try:
        target = httpx.URL(url) if url.startswith(("http://", "https://")) else None
    except httpx.InvalidURL:
        target = None
    if target is None or not target.host:
        raise DataRejected(f"Cannot download {shown_url(url)!r}: only http(s) URLs are read.")
    return target


def own_file_path(connection: ReplicateConnection, target: httpx.URL) -> str | None:
    """``/v1/files/{id}/download`` when ``target`` is a file under our API base URL."""
    base = connection.base_url
    if origin(target) != origin(base):
        return None
    prefix = base.path.rstrip("/")
    if not target.path.startswith(prefix):
        return None
    match = _OWN_FILE_PATH.match(target.path[len(prefix) :])
    return f"/v1/files/{match.group(1)}/download" if match else None


def fetch(
    connection: ReplicateConnection,
    start: httpx.URL,
    *,
    max_bytes: int,
    deadline: Deadline,
) -> bytes:
    """One attempt: follow allowed redirects from ``start`` and read the body."""
    shown = shown_url(start)
    url, visited = start, {str(start)}
    for _ in range(MAX_REDIRECTS + 1):
        deadline.check(shown)
        own_path = own_file_path(connection, url)
        session = connection.api if own_path is not None else connection.public
        # user:password of a URL goes as Basic auth, never in the URL (httpx logs URLs).
        auth = httpx.BasicAuth(url.username, url.password) if url.userinfo else None
        request = session.build_request(
            "GET",
            own_path if own_path is not None else url.copy_with(userinfo=b""),
            headers=_IDENTITY,
            timeout=deadline.timeout(session.timeout),
        )
        try:
            response = session.send(request, stream=True, auth=auth)
        except httpx.RemoteProtocolError as exc:
            # httpx refuses a redirect whose Location is no URL before we see the answer.
            if "location header" in str(exc).lower():
                raise DataRejected(f"{shown} redirects to an address that is not a URL.") from exc
            raise
        try:
            if response.status_code in _REDIRECT_STATUSES and "location" in response.headers:
                url = _next_hop(url, response.headers["location"], connection.base_url, shown)
                if str(url) in visited:
                    raise DataRejected(f"{shown} redirects in a loop; it leads to no file.")
                visited.add(str(url))
                continue
            return _read(response, shown, max_bytes, deadline, own=own_path is not None)
        finally:
            response.close()
    raise DataRejected(f"{shown} redirects more than {MAX_REDIRECTS} times; it leads to no file.")


def _next_hop(current: httpx.URL, location: str, api_base: httpx.URL, shown: str) -> httpx.URL:
    try:
        target = current.join(location)
    except httpx.InvalidURL as exc:
        raise DataRejected(f"{shown} redirects to an address that is not a URL.") from exc
    if not redirect_allowed(target, api_base):
        raise DataRejected(
            f"{shown} redirects to {shown_url(target)}, which is refused: downloads follow "
            "redirects only to https."
        )
    return target


def _read(
    response: httpx.Response, shown: str, max_bytes: int, deadline: Deadline, *, own: bool
) -> bytes:
    """The body of a streamed response, refusing more than ``max_bytes``."""
    status = response.status_code
    if status in _GONE_STATUSES:
        raise ReplicateUnavailable(
            f"{shown} is not there (HTTP {status}): deleted, expired or not visible yet. "
            "Nothing was changed; it is checked again next time.",
            status=status,
        )
    if own and status in (401, 403):
        raise Unauthorized(
            f"Replicate refused the API token for its file {shown} (HTTP {status}). Check "
            "REPLICATE_API_TOKEN.",
            status=status,
        )
    if status in RETRYABLE_STATUSES:
        raise ApiRefusal(status, headers=response.headers)
    if status >= 500:
        raise ReplicateUnavailable(
            f"{shown} could not be read (HTTP {status}). Nothing was changed; try again later.",
            status=status,
        )
    if status >= 400:
        raise DataRejected(f"{shown} refused the download (HTTP {status}); it is not public.")
    if not 200 <= status < 300:
        raise DataRejected(f"{shown} answered HTTP {status} instead of a file.")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise DataRejected(
            f"{shown} is {int(declared):,} bytes, more than the {max_bytes:,} allowed."
        )
    # One growing buffer: BytesIO.getvalue() hands over that buffer rather than a copy.
    body = io.BytesIO()
    for chunk in response.iter_bytes():
        if body.tell() + len(chunk) > max_bytes:
            raise DataRejected(f"{shown} is larger than the {max_bytes:,} bytes allowed.")
        body.write(chunk)
        deadline.check(shown)
    return body.getvalue()
