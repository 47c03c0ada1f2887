"""What Replicate said, read from the HTTP answer itself rather than from the client's
objects: the client's ``ReplicateError`` drops the headers (``Retry-After``) and the
``invalid_fields`` of a 422, and its models reject shapes Replicate really sends.

These exceptions live only inside the gateway: ``retry.translate`` turns each into the
project's error tree before anything leaves ``core.gateway``.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Mapping
from typing import Any

# The two wordings Replicate's 429 bodies use for the same fact.
_RESETS_IN = re.compile(r"resets in ~?\s*(\d+(?:\.\d+)?)\s*s", re.IGNORECASE)
_AVAILABLE_IN = re.compile(r"available in\s+(\d+(?:\.\d+)?)\s*sec", re.IGNORECASE)
# "- input.prompt: prompt is required" (one line per invalid field in a 422's detail).
_DETAIL_FIELD = re.compile(r"^\s*-\s*([A-Za-z_][\w.\[\]]*)\s*:", re.MULTILINE)
# The first id a body cut short still names (Replicate's answers carry it early).
_FIRST_ID = re.compile(rb'"id"\s*:\s*"([A-Za-z0-9_-]{1,64})"')
# The documented answer for a version that does not exist or is not ours names no field.
_INVALID_VERSION_TITLE = "invalid version"
_INVALID_VERSION_DETAIL = "specified version does not exist"


class ApiRefusal(Exception):
    """Replicate (or a download host) answered with an HTTP error status."""

    def __init__(
        self,
        status: int,
        *,
        title: str = "",
        detail: str = "",
        fields: tuple[str, ...] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"HTTP {status}: {detail or title}")
        self.status = status
        self.title = title
        self.detail = detail
        self.fields = fields
        self.headers: Mapping[str, str] = dict(headers or {})

    @classmethod
    def from_answer(cls, status: int, headers: Mapping[str, str], body: bytes) -> ApiRefusal:
        """Read an RFC 7807 body if there is one; any other body (HTML from a proxy, a bare
        string) leaves title and detail empty."""
        problem = json_object(body) or {}
        return cls(
            status,
            title=_text(problem.get("title")),
            detail=_text(problem.get("detail")),
            fields=invalid_fields(problem),
            headers={key.lower(): value for key, value in headers.items()},
        )

    def retry_after(self, now: float) -> float | None:
        return retry_after_seconds(self.headers, self.detail, now, throttled=self.status == 429)


class UnreadableAnswer(Exception):
    """A 2xx answer whose body the gateway cannot read as the object it asked for.

    For a create this means Replicate ACCEPTED it: ``created_id`` is the id when the body
    at least said that much.
    """

    def __init__(self, status: int, reason: str, *, created_id: str | None = None) -> None:
        super().__init__(f"HTTP {status}: {reason}")
        self.status = status
        self.reason = reason
        self.created_id = created_id


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        value = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        return None
    return value if isinstance(value, dict) else None


def id_in(body: bytes) -> str | None:
    """The ``id`` a body names, if any: how a caller finds an accepted create. Replicate's
    answers carry it early, so it often survives a body cut short."""
    value = (json_object(body) or {}).get("id")
    if isinstance(value, str) and value:
        return value
    match = _FIRST_ID.search(body)
    return match.group(1).decode() if match else None


def retry_after_seconds(
    headers: Mapping[str, str], detail: str, now: float, *, throttled: bool = True
) -> float | None:
    """How long Replicate asked us to wait, in seconds, or None when it did not say.

    In order: ``Retry-After`` as seconds or as an HTTP date (RFC 9110); then, for a 429
    (``throttled``) only, ``ratelimit-reset`` (seconds until the window resets: Replicate
    sends it on every answer) and the body's wording ("Your rate limit resets in ~30s.",
    "Expected available in 1 second."). ``now`` is the wall clock, for the date form.
    """
    header = (headers.get("retry-after") or "").strip()
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0.0, when.timestamp() - now)
    if not throttled:
        return None
    reset = (headers.get("ratelimit-reset") or "").strip()
    try:
        if reset:
            return max(0.0, float(reset))
    except ValueError:
        pass
    for wording in (_RESETS_IN, _AVAILABLE_IN):
        match = wording.search(detail or "")
        if match:
            return float(match.group(1))
    return None


def invalid_fields(problem: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields a 422 names: ``invalid_fields[].field``, else the ``- field:`` lines of
    its detail."""
    named = problem.get("invalid_fields")
    fields = tuple(
        str(item["field"]).strip()
        for item in (named if isinstance(named, list) else [])
        if isinstance(item, Mapping) and isinstance(item.get("field"), str) and item["field"]
    )
    if fields:
        return fields
    return tuple(_DETAIL_FIELD.findall(_text(problem.get("detail"))))


def names_the_version(title: str, detail: str, fields: tuple[str, ...]) -> bool:
    """True when a 422 is about the version itself, not the input.

    By the field named when there is one (``version``, not ``input.version_note``);
    otherwise only Replicate's documented invalid-version answer counts, never a message
    that merely contains the word "version".
    """
    if fields:
        return any(field == "version" or field.startswith("version.") for field in fields)
    return title.strip().lower().startswith(_INVALID_VERSION_TITLE) or _INVALID_VERSION_DETAIL in (
        detail.lower()
    )


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
