"""One request through the official client, read from the answer Replicate actually sent.

replicate 1.0.7's pydantic models reject shapes Replicate really sends (``aborted``, a
null ``cog_version``, a bare hash in a training's ``output.version``, a file without
``etag``...). So the client only SENDS: whatever its parser says, the gateway reads the
JSON of the very answer it received (``ReplicateConnection.last_answer``), and a parse
error of the client never leaves here. What even the raw JSON cannot give becomes
``UnreadableAnswer``, an error status ``ApiRefusal``; httpx errors pass through. All three
are for the gateway's retry loop, which translates them into the project's error tree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import replicate.exceptions

from core.errors import ConfigError
from core.gateway.answers import ApiRefusal, UnreadableAnswer, id_in, json_object
from core.gateway.client import Answer, ReplicateConnection
from core.gateway.urls import origin, shown_url

V = TypeVar("V")

# What replicate 1.0.7 raises when its models cannot parse an answer: pydantic's
# ValidationError (a ValueError), ValueError for a bare hash in output.version, TypeError
# for a null one, AttributeError/LookupError for a body of the wrong JSON type.
_CLIENT_PARSE_ERRORS = (ValueError, TypeError, LookupError, AttributeError)
# What a value's ``from_api`` raises for an answer without an id.
_VALUE_ERRORS = (KeyError, TypeError, ValueError)


def send(
    connection: ReplicateConnection, request: Callable[[], object]
) -> tuple[dict[str, Any], Answer]:
    """Send one request through the official client; the JSON object Replicate answered."""
    connection.forget_answer()
    try:
        request()
    except replicate.exceptions.ReplicateError as exc:
        answer = connection.last_answer()
        if answer is None:
            raise ApiRefusal(
                exc.status or 500, title=exc.title or "", detail=exc.detail or ""
            ) from exc
        raise ApiRefusal.from_answer(answer.status, answer.headers, answer.body) from exc
    except _CLIENT_PARSE_ERRORS:
        if connection.last_answer() is None:
            raise  # it failed before sending anything: a bug, not Replicate's answer
        # The client could not parse what Replicate sent: the answer is read below.
    answer = connection.last_answer()
    if answer is None:
        raise ConfigError(
            "The replicate client sent its request around the gateway's HTTP transport; "
            "install the replicate version pinned in requirements.txt."
        )
    if answer.status >= 400:
        raise ApiRefusal.from_answer(answer.status, answer.headers, answer.body)
    body = json_object(answer.body)
    if body is None:
        raise UnreadableAnswer(answer.status, "not a JSON object", created_id=id_in(answer.body))
    return body, answer


def read(
    connection: ReplicateConnection,
    parse: Callable[[Mapping[str, Any]], V],
    request: Callable[[], object],
    what: str,
) -> V:
    """``parse`` of the answer to ``request`` (sent through the official client)."""
    body, answer = send(connection, request)
    return value_of(parse, body, answer.status, what, created_id=id_in(answer.body))


def get_json(connection: ReplicateConnection, url: str) -> dict[str, Any]:
    """GET a page the client cannot follow (``next`` links) on the client's own session."""
    target = connection.base_url.join(url)
    if origin(target) != origin(connection.base_url):
        # The token goes only to our own API: a page may not send it elsewhere.
        raise UnreadableAnswer(200, f"a next link to another host ({shown_url(target)})")
    response = connection.api.get(target)
    if response.status_code >= 400:
        raise ApiRefusal.from_answer(response.status_code, response.headers, response.content)
    body = json_object(response.content)
    if body is None:
        raise UnreadableAnswer(response.status_code, "not a JSON object")
    return body


def value_of(
    parse: Callable[[Mapping[str, Any]], V],
    body: Mapping[str, Any],
    status: int,
    what: str,
    *,
    created_id: str | None = None,
) -> V:
    """``parse(body)``, or ``UnreadableAnswer`` when even the raw JSON is not one."""
    try:
        return parse(body)
    except _VALUE_ERRORS as exc:
        raise UnreadableAnswer(status, f"no usable {what} in it", created_id=created_id) from exc
