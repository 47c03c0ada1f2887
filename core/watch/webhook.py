"""What goes to the alert webhook, and what one POST to it came to.

The message is Slack's mrkdwn (``{"text": ...}``): every data string escaped, the link
as ``<url|label>``. The POST goes out once, through an httpx transport that never follows
a redirect and never logs the URL (the webhook's URL is its credential), and its end is
sorted by how far it got: delivered, certainly not delivered (worth another attempt or
not), or perhaps delivered (``Outcome.UNKNOWN``: the caller never sends it again).
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from enum import StrEnum

import httpx
from pydantic import SecretStr

from core.ledger.reviews import Verdict
from core.redaction import with_urls_redacted

# Slack answers in well under a second. The whole exchange stays far inside
# RECOVERY_SECONDS (60 s by default), so a live sender records its outcome long before
# the maintenance job would take its claim for dead.
TIMEOUT = httpx.Timeout(connect=5.0, write=5.0, read=10.0, pool=5.0)
# A 429's Retry-After is waited for up to this (the deadline still bounds it).
MAX_RETRY_AFTER_SECONDS = 600.0
MAX_SENTENCE_CHARACTERS = 500
LINK_LABEL = "Open in the console"
# An error body worth quoting: Slack's are one word (invalid_payload, no_service).
_ERROR_WORD = re.compile(r"[A-Za-z0-9_.:-]{1,60}")


def slack_escaped(text: str) -> str:
    """``text`` shown literally by Slack's mrkdwn: ``&``, ``<`` and ``>`` as entities, the
    three characters Slack reads as control (``<!channel>``, ``<@U1>``, ``<url|label>``),
    so no email or sentence can ping a channel or plant a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_link(url: str, label: str) -> str:
    """``<url|label>``: ``&`` in the URL as an entity (Slack unescapes it), and ``|``,
    ``<``, ``>`` percent-encoded, so the URL cannot end the link early."""
    inert = url.replace("&", "&amp;")
    for character, encoded in (("|", "%7C"), ("<", "%3C"), (">", "%3E")):
        inert = inert.replace(character, encoded)
    return f"<{inert}|{slack_escaped(label)}>"


def one_sentence(text: str | None) -> str:
    """The review's sentence on one line, URLs without their secrets, cut to a length a
    channel reads."""
    said = " ".join(with_urls_redacted(text or "").split())
    if len(said) > MAX_SENTENCE_CHARACTERS:
        said = said[: MAX_SENTENCE_CHARACTERS - 1].rstrip() + "…"
    return said or "The review gave no sentence."


def alert_text(
    *, email: str | None, user_id: str, verdict: Verdict, sentence: str, link: str
) -> str:
    """The message: the verdict and who (their email, else their id), what is wrong, and
    the link to their User page. Every data string escaped for Slack."""
    who = email.strip() if email and email.strip() else f"user {user_id}"
    return (
        f"*{verdict.words} retrain* for {slack_escaped(who)}: "
        f"{slack_escaped(one_sentence(sentence))}\n{slack_link(link, LINK_LABEL)}"
    )


def alert_payload(text: str) -> dict[str, str]:
    """What an incoming webhook takes: ``{"text": ...}`` (Slack reads it as mrkdwn)."""
    return {"text": text}


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # certainly not delivered, and worth another attempt
    FAILED = "failed"  # certainly not delivered, and another attempt would not help
    UNKNOWN = "unknown"  # it may have been delivered: never sent again


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    reason: str
    retry_after: float = 0.0  # a 429's Retry-After, in seconds


def answered(status: int, body: str = "", retry_after: str | None = None) -> Delivery:
    """The webhook's answer, by its status."""
    said = f" ({body.strip()})" if _ERROR_WORD.fullmatch(body.strip()) else ""
    if 200 <= status < 300:
        return Delivery(Outcome.SENT, f"the webhook answered {status}")
    if status == 429:
        return Delivery(
            Outcome.RETRY,
            f"the webhook answered 429, too many messages{said}",
            _seconds(retry_after),
        )
    if status >= 500:
        return Delivery(Outcome.RETRY, f"the webhook answered {status}{said}")
    if 300 <= status < 400:
        return Delivery(
            Outcome.FAILED,
            f"the webhook answered {status}, a redirect, which is not followed: check "
            "ALERT_WEBHOOK_URL",
        )
    return Delivery(Outcome.FAILED, f"the webhook refused the message: {status}{said}")


def not_answered(error: httpx.HTTPError, *, url: str) -> Delivery:
    """A POST that raised instead of answering, by how far it got. ``url`` (the secret)
    is taken out of the reason."""
    what = f"{type(error).__name__}: {_without(str(error), url)}".rstrip(": ")
    if isinstance(
        error,
        httpx.ConnectError
        | httpx.ConnectTimeout
        | httpx.PoolTimeout
        | httpx.ProxyError
        # The body did not all leave this machine: a webhook acts on a whole request only.
        | httpx.WriteTimeout
        | httpx.WriteError,
    ):
        return Delivery(Outcome.RETRY, f"the webhook could not be reached ({what})")
    if isinstance(error, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return Delivery(Outcome.FAILED, f"the message could not be sent as asked ({what})")
    # Anything later (a read timeout, a connection closed before the answer) came after
    # the whole message was sent: the webhook may well have posted it, and a second POST
    # would be a second message. Ambiguous is recorded as such and never sent again.
    return Delivery(Outcome.UNKNOWN, f"the message was sent and no answer came back ({what})")


def _seconds(retry_after: str | None) -> float:
    try:
        seconds = float(retry_after or 0)
    except ValueError:  # an HTTP date: the backoff decides
        return 0.0
    if not math.isfinite(seconds):
        return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _without(text: str, url: str) -> str:
    """``text`` without the webhook's URL or its path and query (where its token is)."""
    parts = httpx.URL(url)
    for secret in (url, parts.raw_path.decode("ascii", "replace"), parts.path):
        if len(secret) > 1:
            text = text.replace(secret, "[webhook]")
    return text


def webhook_request(webhook: SecretStr, payload: dict[str, str]) -> httpx.Request:
    return httpx.Request(
        "POST",
        webhook.get_secret_value(),
        json=payload,
        headers={"User-Agent": "sselfie-console-alerts"},
        extensions={"timeout": TIMEOUT.as_dict()},
    )


def deliver(request: httpx.Request, *, url: str) -> Delivery:
    """POST ``request`` once. Through a transport, not a ``Client``: the client logs every
    request's full URL at INFO, and this URL is the webhook's credential (the transport
    leaves only httpcore's DEBUG traces, which name the host). A transport never follows
    a redirect, either."""
    transport = httpx.HTTPTransport()
    try:
        try:
            response = transport.handle_request(request)
        except httpx.HTTPError as exc:
            return not_answered(exc, url=url)
        body = _short_body(response)
        return answered(response.status_code, body, response.headers.get("retry-after"))
    finally:
        with contextlib.suppress(httpx.HTTPError, OSError):
            transport.close()


def _short_body(response: httpx.Response) -> str:
    """The start of the answer's body, for the reason (the status is what counts)."""
    try:
        read = b""
        for chunk in response.iter_raw():
            read += chunk
            if len(read) >= 200:
                break
        return read[:200].decode("utf-8", "replace")
    except httpx.HTTPError:
        return ""
    finally:
        with contextlib.suppress(httpx.HTTPError, OSError):
            response.close()
