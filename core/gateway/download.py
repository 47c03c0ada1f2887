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

A URL comes from the app's users, so anything may be in it. An address no try can read
is refused before anything is sent, or as soon as it shows (``unusable``): httpx's
refusals (control characters, too long, a bad port or host), a host DNS cannot carry
(``urls.host_problem``; socket's idna codec raised a raw UnicodeError for a label over
63 characters), a host idna refuses, a redirect to any of these; and a TLS certificate
we refuse or a host that does not speak TLS (``tls_refusal``). No library error about
the address leaves this module.
"""

from __future__ import annotations

import io
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from core.errors import DashboardError, DataRejected, ReplicateUnavailable, Unauthorized
from core.gateway.answers import ApiRefusal
from core.gateway.client import ReplicateConnection
from core.gateway.retry import RETRYABLE_STATUSES
from core.gateway.urls import host_problem, origin, redirect_allowed, shown_url

MAX_REDIRECTS = 5
MAX_URL_LENGTH = 65_536  # httpx refuses longer URLs (httpx._urlparse.MAX_URL_LENGTH)
DOWNLOAD_DEADLINE_SECONDS = 120.0
# Whether a file still answers is asked by a page: one short HEAD, not retried.
ANSWER_DEADLINE_SECONDS = 2.0
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
    """The URL to read, or ``DataRejected`` saying why this address can never be read."""
    if not url.startswith(("http://", "https://")):
        raise DataRejected(f"Cannot download {shown_url(url)!r}: only http(s) URLs are read.")
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise unusable(repr(shown_url(url)), _invalid_url(url, exc)) from exc
    except ValueError as exc:  # UnicodeEncodeError: a lone surrogate, which no URL holds
        raise unusable(repr(shown_url(url)), "it has characters no URL can carry") from exc
    check_address(target, repr(shown_url(url)))
    return target


def check_address(target: httpx.URL, shown: str) -> None:
    """``DataRejected`` when ``target`` (the URL asked for or a redirect's) has no host,
    a host DNS cannot carry, or a port that is no port: no try can ever reach it."""
    try:
        host = target.host  # decodes "xn--" labels: idna refuses some (a UnicodeError)
    except UnicodeError as exc:
        raise unusable(shown, "its host name is not valid IDNA (idna refuses it)") from exc
    problem = host_problem(target.raw_host.decode("ascii", "replace")) if host else None
    if not host:
        problem = "it has no host name"
    elif target.port is not None and not 0 < target.port < 65536:
        problem = f"its port {target.port} is not a port (1 to 65535)"
    if problem is not None:
        raise unusable(shown, problem)


def unusable(shown: str, why: str) -> DataRejected:
    """The refusal of an address that no try can read: permanent, so it is cached."""
    return DataRejected(
        f"Cannot download {shown}: {why}. The address itself is wrong, so trying again "
        "cannot help; the file has to be given under a valid URL."
    )


def _invalid_url(url: str, exc: httpx.InvalidURL) -> str:
    """Why httpx refused ``url``, in words; never httpx's text, which may quote the URL."""
    said = str(exc)
    if "too long" in said:
        return f"it is {len(url):,} characters long, more than a URL may be ({MAX_URL_LENGTH:,})"
    if "non-printable" in said:
        return "it has a control character (such as NUL, a tab or a line break) in it"
    if "port" in said:
        return "its port is not a number"
    if "IDNA" in said or "IPv4" in said or "IPv6" in said:
        return "its host name is not a valid host name or IP address"
    return "it is not a valid URL"


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
    head: bool = False,
) -> bytes:
    """One attempt: follow allowed redirects from ``start`` and read the body (``head``:
    ask with HEAD and read nothing; b"" when the file answers)."""
    shown = shown_url(start)
    url, visited = start, {str(start)}
    for _ in range(MAX_REDIRECTS + 1):
        deadline.check(shown)
        own_path = own_file_path(connection, url)
        session = connection.api if own_path is not None else connection.public
        # user:password of a URL goes as Basic auth, never in the URL (httpx logs URLs).
        auth = httpx.BasicAuth(url.username, url.password) if url.userinfo else None
        request = session.build_request(
            "HEAD" if head else "GET",
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
        except httpx.ConnectError as exc:
            refused = tls_refusal(exc, shown, own=own_path is not None)
            if refused is not None:
                raise refused from exc
            raise
        except httpx.LocalProtocolError as exc:
            # h11 would not write this request (it never left): the same next time.
            raise unusable(shown, "no valid HTTP request can be made for it") from exc
        except ValueError as exc:
            # A host idna refuses (UnicodeError) that only showed on the way: httpx reads
            # a redirect's host before handing us the answer, the socket encodes ours
            # again. The same address fails the same way on every try.
            raise unusable(shown, _address_failure(exc)) from exc
        try:
            if response.status_code in _REDIRECT_STATUSES and "location" in response.headers:
                url = _next_hop(url, response.headers["location"], connection.base_url, shown)
                if str(url) in visited:
                    raise DataRejected(f"{shown} redirects in a loop; it leads to no file.")
                visited.add(str(url))
                continue
            if head:
                _check_status(response, shown, own=own_path is not None)
                return b""
            return _read(response, shown, max_bytes, deadline, own=own_path is not None)
        finally:
            response.close()
    raise DataRejected(f"{shown} redirects more than {MAX_REDIRECTS} times; it leads to no file.")


def _next_hop(current: httpx.URL, location: str, api_base: httpx.URL, shown: str) -> httpx.URL:
    try:
        target = current.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise DataRejected(f"{shown} redirects to an address that is not a URL.") from exc
    check_address(target, f"{shown_url(target)} (where {shown} redirects)")
    if not redirect_allowed(target, api_base):
        raise DataRejected(
            f"{shown} redirects to {shown_url(target)}, which is refused: downloads follow "
            "redirects only to https."
        )
    return target


def _address_failure(exc: ValueError) -> str:
    if isinstance(exc, UnicodeError):
        return "its host name, or that of the address it redirects to, is refused by idna"
    return f"the address, or the one it redirects to, is refused ({type(exc).__name__})"


# TLS failures that say something about the host, not about this moment: a certificate we
# refuse (self-signed, expired, issued for another name) or an answer that is not TLS at
# all (plain http on an https address). The next try meets the same host, so they are
# permanent (``DataRejected``, not retried). A handshake cut short or a server's alert
# may be a bad moment: those stay network errors, retried, then ``ReplicateUnavailable``.
_NOT_TLS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "HTTP_REQUEST",
        "UNKNOWN_PROTOCOL",
        "PACKET_LENGTH_TOO_LONG",
    }
)


def ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` behind an httpx error (httpx wraps httpcore wraps ssl)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def tls_refusal(exc: httpx.ConnectError, shown: str, *, own: bool) -> DashboardError | None:
    """The error for a TLS failure that no try will get past; None to retry as usual."""
    cause = ssl_cause(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        why = f"its host's TLS certificate is refused ({_verify_message(cause)})"
    elif cause is not None and cause.reason in _NOT_TLS:
        why = "its host does not answer in TLS (https) on that port"
    else:
        return None
    if own:  # our own API's host: this machine's CA certificates or a proxy in the way
        return ReplicateUnavailable(
            f"Cannot download Replicate's file {shown}: {why}. Check this machine's CA "
            "certificates and any proxy between it and REPLICATE_BASE_URL."
        )
    return DataRejected(
        f"Cannot download {shown}: {why}. Trying again cannot help until the host "
        "fixes its https; the file has to be given under an address that serves it."
    )


def _verify_message(cause: ssl.SSLCertVerificationError) -> str:
    said = cause.verify_message or cause.reason or "verification failed"
    return str(said)[:100]


def _read(
    response: httpx.Response, shown: str, max_bytes: int, deadline: Deadline, *, own: bool
) -> bytes:
    """The body of a streamed response, refusing more than ``max_bytes``."""
    _check_status(response, shown, own=own)
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


def _check_status(response: httpx.Response, shown: str, *, own: bool) -> None:
    """What the answer's status says: nothing for a 2xx, else the error it is."""
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
