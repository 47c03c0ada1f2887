"""URLs as the gateway shows them and follows them: pure functions over plain strings.

``shown_url`` is the one way a URL reaches a message or a log line: a ZIP's URL may carry
``user:password@`` or a signed query, and messages are stored and shown to staff.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

import httpx

_SHOWN_MAX = 120
# For text urlsplit cannot parse: drop anything between "//" and "@", and the query.
_USERINFO = re.compile(r"//[^/?#]*@")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
# What DNS can look up: labels of letters, digits, hyphens (and the underscores some CDNs
# use), 1 to 63 characters each, 253 in all. ``socket`` refuses longer labels with a
# UnicodeError from its idna codec; the rest would only fail later as "not found".
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")
_MAX_HOST = 253


def shown_url(url: str | httpx.URL) -> str:
    """``url`` without credentials, query or fragment, at most 120 characters."""
    text = str(url)
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        if ":" in host:  # an IPv6 literal keeps its brackets
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
        shown = urlunsplit((parts.scheme, host + port, parts.path, "", ""))
    except ValueError:  # a port that is not a number, an unbalanced bracket
        shown = _USERINFO.sub("//", text.split("?", 1)[0].split("#", 1)[0])
    return shown if len(shown) <= _SHOWN_MAX else shown[: _SHOWN_MAX - 3] + "..."


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: a sandbox, never api.replicate.com."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_problem(raw_host: str) -> str | None:
    """Why ``raw_host`` (a URL's host as sent: IDNA-encoded, so ASCII) can never be looked
    up, in words; None for an IP address or a host name DNS can carry."""
    try:
        ipaddress.ip_address(raw_host.strip("[]"))
        return None
    except ValueError:
        pass
    name = raw_host[:-1] if raw_host.endswith(".") else raw_host  # a rooted name's dot
    if len(name) > _MAX_HOST:
        return f"its host name is {len(name):,} characters long; DNS allows {_MAX_HOST}"
    for label in name.split("."):
        if not label:
            return "its host name has an empty label (a leading dot or two dots in a row)"
        if len(label) > 63:
            return f"its host name has a label of {len(label)} characters; DNS allows 63"
        if not _LABEL.fullmatch(label):
            return "its host name has characters no host name can have"
    return None


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    return url.scheme, url.host, url.port or {"http": 80, "https": 443}.get(url.scheme)


def redirect_allowed(target: httpx.URL, api_base: httpx.URL) -> bool:
    """Whether a download may follow a redirect to ``target``.

    Only to https (a redirect to plain http could be read or altered on the way), or, when
    the API itself is a sandbox on loopback (DEMO and tests), to that sandbox's own origin.
    """
    if target.scheme == "https" and target.host:
        return True
    return is_loopback(api_base.host) and origin(target) == origin(api_base)
