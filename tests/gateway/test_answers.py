"""Pure decisions of the gateway, with values built in memory: how long Replicate asked us
to wait, which 422 is about the version, which failure may have paid, how URLs are shown
and which redirects are followed."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from core.errors import (
    CreateOutcomeUnknown,
    DashboardError,
    InvalidInput,
    InvalidVersion,
    RateLimited,
    ReplicateError,
    ReplicateNotFound,
    ReplicateUnavailable,
    Unauthorized,
)
from core.gateway.answers import (
    ApiRefusal,
    UnreadableAnswer,
    id_in,
    invalid_fields,
    names_the_version,
    retry_after_seconds,
)
from core.gateway.retry import CallKind, is_retryable, may_have_been_accepted, translate
from core.gateway.urls import is_loopback, redirect_allowed, shown_url

NOW = 1_750_000_000.0
SANDBOX = httpx.URL("http://127.0.0.1:8787")
LIVE = httpx.URL("https://api.replicate.com")


@pytest.mark.parametrize(
    ("headers", "detail", "expected"),
    [
        ({"retry-after": "7"}, "", 7.0),
        ({"retry-after": "0.5"}, "", 0.5),
        ({"retry-after": email.utils.formatdate(NOW + 12, usegmt=True)}, "", 12.0),
        ({"retry-after": email.utils.formatdate(NOW - 60, usegmt=True)}, "", 0.0),
        ({"retry-after": "soon", "ratelimit-reset": "3"}, "", 3.0),
        ({"ratelimit-remaining": "0", "ratelimit-reset": "1"}, "", 1.0),
        ({}, "Request was throttled. Your rate limit resets in ~30s.", 30.0),
        ({}, "Request was throttled. Expected available in 1 second.", 1.0),
        ({}, "Request was throttled. Expected available in 12 seconds.", 12.0),
        ({}, "Request was throttled.", None),
        ({}, "", None),
    ],
)
def test_how_long_replicate_asked_us_to_wait(
    headers: dict[str, str], detail: str, expected: float | None
) -> None:
    assert retry_after_seconds(headers, detail, NOW) == expected


def test_only_a_429_waits_for_the_rate_limit_window() -> None:
    """Replicate sends ratelimit-reset on every answer: a 503 still backs off its own way."""
    headers = httpx.Headers({"ratelimit-remaining": "2999", "ratelimit-reset": "1"})
    assert ApiRefusal.from_answer(503, headers, b"").retry_after(NOW) is None
    assert ApiRefusal.from_answer(429, headers, b"").retry_after(NOW) == 1.0
    headers = httpx.Headers({"retry-after": "4", "ratelimit-reset": "1"})
    assert ApiRefusal.from_answer(503, headers, b"").retry_after(NOW) == 4.0


def test_a_429_keeps_the_wait_it_was_given() -> None:
    refusal = ApiRefusal.from_answer(
        429,
        httpx.Headers({"Retry-After": email.utils.formatdate(NOW + 20, usegmt=True)}),
        b'{"detail":"Request was throttled. Expected available in 20 seconds."}',
    )
    error = translate(refusal, "reading model a/b", CallKind.SAFE, now=NOW)
    assert isinstance(error, RateLimited) and error.retry_after == 20.0
    assert "about 20 s" in str(error)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Replicate's documented invalid-version answer names no field: its title says it.
        (
            b'{"title":"Invalid version or not permitted","detail":"The specified version does'
            b' not exist (or perhaps you don\'t have permission to use it?)","status":422}',
            InvalidVersion,
        ),
        # The same answer with only its detail.
        (b'{"detail":"The specified version does not exist (or perhaps...)"}', InvalidVersion),
        (b'{"detail":"- version: version is required\\n","status":422}', InvalidVersion),
        (
            b'{"title":"Input validation failed","detail":"- input: prompt is required\\n",'
            b'"invalid_fields":[{"type":"required","field":"input","description":"x"}]}',
            InvalidInput,
        ),
        # Merely containing the word "version" does not make it about the version.
        (
            b'{"title":"Input validation failed","detail":"- input.version_note: must name'
            b' the version\\n","invalid_fields":[{"field":"input.version_note"}]}',
            InvalidInput,
        ),
        (b'{"detail":"- input.hf_lora: this version of the weights is too old\\n"}', InvalidInput),
        (b'{"detail":"Your cog version is too old for this hardware"}', InvalidInput),
        (b"<html>422</html>", InvalidInput),
    ],
)
def test_422s_are_classified_by_the_field_they_name(
    body: bytes, expected: type[ReplicateError]
) -> None:
    refusal = ApiRefusal.from_answer(422, httpx.Headers(), body)
    assert type(translate(refusal, "running a version", CallKind.PAID)) is expected


def test_fields_come_from_invalid_fields_else_from_the_detail() -> None:
    assert invalid_fields({"invalid_fields": [{"field": "input.seed"}, {"type": "x"}]}) == (
        "input.seed",
    )
    assert invalid_fields({"detail": "- input.seed: bad\n- version: bad\n"}) == (
        "input.seed",
        "version",
    )
    assert not names_the_version("Input validation failed", "", ("input.version",))
    assert names_the_version("", "", ("version",))


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (ApiRefusal(500), CreateOutcomeUnknown),
        (ApiRefusal(502), CreateOutcomeUnknown),
        (UnreadableAnswer(201, "not a JSON object"), CreateOutcomeUnknown),
        (httpx.ReadTimeout("late"), CreateOutcomeUnknown),
        (httpx.RemoteProtocolError("cut"), CreateOutcomeUnknown),
        (httpx.WriteError("broken"), CreateOutcomeUnknown),
        (httpx.DecodingError("gzip"), CreateOutcomeUnknown),
        (httpx.ConnectError("refused"), ReplicateUnavailable),
        (httpx.ConnectTimeout("slow"), ReplicateUnavailable),
        (httpx.PoolTimeout("busy"), ReplicateUnavailable),
        (httpx.UnsupportedProtocol("ftp"), ReplicateError),
        (httpx.InvalidURL("bad"), ReplicateError),
        (ApiRefusal(429), RateLimited),
        (ApiRefusal(401), Unauthorized),
        (ApiRefusal(404), ReplicateNotFound),
        (ApiRefusal(409), ReplicateError),
        (ApiRefusal(413), ReplicateError),
    ],
)
def test_a_paid_create_is_outcome_unknown_exactly_when_it_may_have_been_accepted(
    failure: Exception, expected: type[DashboardError]
) -> None:
    error = translate(failure, "starting a training", CallKind.PAID, now=NOW)
    assert type(error) is expected
    assert may_have_been_accepted(failure) is (expected is CreateOutcomeUnknown)
    if isinstance(error, CreateOutcomeUnknown):
        assert "check Replicate before trying again" in str(error)
    # Only a 429 or a request that never left may be sent again.
    never_left = isinstance(failure, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    throttled = isinstance(failure, ApiRefusal) and failure.status == 429
    assert is_retryable(failure, CallKind.PAID) is (never_left or throttled)


def test_an_accepted_create_reports_its_id_when_the_answer_named_it() -> None:
    cut = b'{"completed_at":null,"created_at":"2026-01-02T03:04:05Z","error":null,"id":"ab2c'
    assert id_in(cut) is None  # the id itself was cut: nothing to report
    cut = b'{"id":"pw050dtb51rj40cjb2vrcw97b8","model":"replicate/fast-flux-trai'
    assert id_in(cut) == "pw050dtb51rj40cjb2vrcw97b8"
    error = translate(
        UnreadableAnswer(201, "not a JSON object", created_id=id_in(cut)),
        "starting a training",
        CallKind.PAID,
    )
    assert isinstance(error, CreateOutcomeUnknown)
    assert error.created_id == "pw050dtb51rj40cjb2vrcw97b8"
    assert "pw050dtb51rj40cjb2vrcw97b8" in str(error)


def test_reads_retry_what_may_pass_and_stop_on_what_will_not() -> None:
    passing: list[Exception] = [ApiRefusal(503), httpx.ReadError("x"), UnreadableAnswer(200, "")]
    lasting: list[Exception] = [ApiRefusal(404), ApiRefusal(422), httpx.UnsupportedProtocol("x")]
    assert all(is_retryable(failure, CallKind.SAFE) for failure in passing)
    assert not any(is_retryable(failure, CallKind.SAFE) for failure in lasting)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pa55@blob.example.com/a/b.zip?sig=1#x", "https://blob.example.com/a/b.zip"),
        ("http://token@127.0.0.1:8787/_blob/x.zip", "http://127.0.0.1:8787/_blob/x.zip"),
        ("https://[::1]:9000/p?q", "https://[::1]:9000/p"),
        ("https://u:p@host:notaport/p?q=1", "https://host:notaport/p"),
        ("not a url at all", "not a url at all"),
        ("https://h/" + "a" * 200, "https://h/" + "a" * 107 + "..."),
    ],
)
def test_shown_urls_carry_no_credentials_or_query(url: str, shown: str) -> None:
    assert shown_url(url) == shown
    assert shown_url(httpx.URL(url) if "notaport" not in url and " " not in url else url) == (shown)


def test_redirects_go_to_https_or_to_the_sandbox_itself() -> None:
    assert redirect_allowed(httpx.URL("https://replicate.delivery/x.tar"), LIVE)
    assert redirect_allowed(httpx.URL("https://127.0.0.1:9/x"), LIVE)
    assert not redirect_allowed(httpx.URL("http://replicate.delivery/x.tar"), LIVE)
    assert not redirect_allowed(httpx.URL("http://api.replicate.com/v1/files/a"), LIVE)
    assert redirect_allowed(httpx.URL("http://127.0.0.1:8787/_blob/x.zip"), SANDBOX)
    assert not redirect_allowed(httpx.URL("http://127.0.0.1:8788/_blob/x.zip"), SANDBOX)
    assert not redirect_allowed(httpx.URL("http://localhost:8787/_blob/x.zip"), SANDBOX)
    assert not redirect_allowed(httpx.URL("ftp://127.0.0.1:8787/x.zip"), SANDBOX)
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("api.replicate.com") and not is_loopback("10.0.0.1")
