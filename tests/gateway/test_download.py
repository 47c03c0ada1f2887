"""ReplicateGateway.download: Replicate's own files with the token, everyone else's without,
redirects only where allowed, a size cap and an overall deadline, credentials never shown,
and every failure in the error tree as permanent (DataRejected) or transient
(ReplicateUnavailable).

The third party is a real HTTP server on loopback that records what it was sent; the
sandbox plays the API (and, through redirect rules, hosts that redirect).
"""

from __future__ import annotations

import logging
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

from core.errors import DashboardError, DataRejected, ReplicateUnavailable, Unauthorized
from core.gateway.gateway import ReplicateGateway
from core.gateway.retry import RetryPolicy
from core.sandbox.server import RunningSandbox

PAYLOAD = bytes(range(256)) * 1200  # 307,200 bytes
MakeGateway = Callable[..., ReplicateGateway]


@dataclass
class ThirdParty:
    base_url: str
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)  # paths asked with HEAD
    flaky_left: int = 0
    big: bytes = b""


@pytest.fixture
def third_party() -> Iterator[ThirdParty]:
    state = ThirdParty(base_url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_HEAD(self) -> None:
            state.headers.append({key.lower(): value for key, value in self.headers.items()})
            path = urlsplit(self.path).path
            state.heads.append(path)
            self.send_response(200 if path == "/files/images.zip" else 404)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()

        def do_GET(self) -> None:
            state.headers.append({key.lower(): value for key, value in self.headers.items()})
            path = urlsplit(self.path).path
            state.paths.append(path)
            if path == "/flaky" and state.flaky_left > 0:
                state.flaky_left -= 1
                self._send(503, b"busy")
            elif path in ("/files/images.zip", "/v1/files/abcdefghijklmnopqrstuvwxyz", "/flaky"):
                self._send(200, PAYLOAD)
            elif path == "/big":
                self._send(200, state.big)
            elif path == "/moved":
                self._redirect("/files/images.zip")
            elif path == "/to-self":
                self._redirect("/to-self")
            elif path == "/no-location":
                self._send(302, b"")
            elif path == "/chunked":  # no Content-Length: only streaming can cap it
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(PAYLOAD), 65536):
                    chunk = PAYLOAD[start : start + 65536]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            elif path == "/drip":  # a byte at a time, each within any read timeout
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            elif path == "/bad-gzip":
                self.send_response(200)
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", "20")
                self.end_headers()
                self.wfile.write(b"this is not gzip....")
            elif path == "/private":
                self._send(403, b"AccessDenied")
            else:
                self._send(404, b"no such blob")

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def _redirect(control: httpx.Client, path: str, to: str, status: int = 302) -> None:
    rule = {"path": f"^{path}$", "redirect_to": to, "status": status}
    control.post("/faults", json=rule).raise_for_status()


def _blob(sandbox: RunningSandbox, path: str, content: bytes) -> str:
    httpx.put(f"{sandbox.base_url}/_blob/{path}", content=content).raise_for_status()
    return f"{sandbox.base_url}/_blob/{path}"


# -- whose session ---------------------------------------------------------------------------
def test_a_replicate_file_is_read_through_the_authenticated_files_api(
    gateway: ReplicateGateway,
    control: httpx.Client,
) -> None:
    uploaded = gateway.upload_file(PAYLOAD, filename="images.zip", content_type="application/zip")
    assert uploaded.url.endswith(f"/v1/files/{uploaded.id}")
    assert gateway.download(uploaded.url, max_bytes=len(PAYLOAD)) == PAYLOAD
    assert gateway.download(f"{uploaded.url}/download", max_bytes=len(PAYLOAD)) == PAYLOAD
    assert control.get("/stats").json()["counts"]["GET /v1/files/{id}/download"] == 2


def test_other_hosts_never_receive_the_token(
    gateway: ReplicateGateway,
    third_party: ThirdParty,
) -> None:
    assert (
        gateway.download(f"{third_party.base_url}/files/images.zip?sig=x", max_bytes=len(PAYLOAD))
        == PAYLOAD
    )
    # A path that looks like Replicate's on another host is still someone else's.
    gateway.download(
        f"{third_party.base_url}/v1/files/abcdefghijklmnopqrstuvwxyz", max_bytes=len(PAYLOAD)
    )
    assert len(third_party.headers) == 2
    assert all("authorization" not in headers for headers in third_party.headers)
    assert all(headers["accept-encoding"] == "identity" for headers in third_party.headers)


# -- whether a file still answers (one HEAD, the same policy) ------------------------------
def test_answers_is_one_head_under_the_download_policy(
    gateway: ReplicateGateway,
    sandbox: RunningSandbox,
    control: httpx.Client,
    third_party: ThirdParty,
) -> None:
    kept = _blob(sandbox, "outputs/kept.png", PAYLOAD)
    assert gateway.answers(kept)
    assert not gateway.answers(f"{sandbox.base_url}/_blob/outputs/deleted.png")  # 404
    asked = control.get("/stats").json()["counts"]
    assert asked.get("HEAD /_blob/outputs/kept.png") == 1
    assert not any(key.startswith("GET /_blob/outputs/") for key in asked)  # nothing read
    # Redirected to plain http elsewhere: refused before it is followed, as a download is.
    _redirect(control, "/_blob/outputs/away.png", f"{third_party.base_url}/files/images.zip")
    assert not gateway.answers(f"{sandbox.base_url}/_blob/outputs/away.png")
    assert third_party.paths == [] and third_party.heads == []
    # Nothing to ask, no exception: an address that is not one, a host that is not there.
    assert not gateway.answers("file:///etc/passwd")
    assert not gateway.answers("https://exa mple.com/x.png")
    assert not gateway.answers("http://127.0.0.1:9/x.png")


def test_answers_asks_with_head_and_sends_no_token(
    gateway: ReplicateGateway, third_party: ThirdParty
) -> None:
    assert gateway.answers(f"{third_party.base_url}/files/images.zip")
    assert not gateway.answers(f"{third_party.base_url}/files/gone.zip")
    assert third_party.heads == ["/files/images.zip", "/files/gone.zip"]
    assert third_party.paths == []  # no GET: nothing downloaded
    assert all("authorization" not in headers for headers in third_party.headers)


# -- redirects -------------------------------------------------------------------------------
def test_redirects_within_the_sandbox_are_followed(
    gateway: ReplicateGateway, sandbox: RunningSandbox, control: httpx.Client
) -> None:
    target = _blob(sandbox, "datasets/real.zip", PAYLOAD)
    _redirect(control, "/_blob/datasets/old.zip", "/_blob/datasets/hop.zip", status=301)
    _redirect(control, "/_blob/datasets/hop.zip", target, status=307)
    assert gateway.download(f"{sandbox.base_url}/_blob/datasets/old.zip", max_bytes=10**6) == (
        PAYLOAD
    )
    # Replicate's own file may send us elsewhere too (a signed storage URL, in LIVE).
    uploaded = gateway.upload_file(b"elsewhere", filename="x.zip", content_type="application/zip")
    _redirect(control, f"/v1/files/{uploaded.id}/download", target)
    assert gateway.download(uploaded.url, max_bytes=10**6) == PAYLOAD


def test_a_redirect_to_plain_http_elsewhere_is_refused_before_it_is_followed(
    gateway: ReplicateGateway,
    sandbox: RunningSandbox,
    control: httpx.Client,
    third_party: ThirdParty,
) -> None:
    _redirect(control, "/_blob/away.zip", f"{third_party.base_url}/files/images.zip")
    with pytest.raises(DataRejected, match=r"redirects to http://127\.0\.0\.1:\d+/files/images"):
        gateway.download(f"{sandbox.base_url}/_blob/away.zip", max_bytes=10**6)
    # A third party on http may not redirect even to itself.
    with pytest.raises(DataRejected, match="only to https"):
        gateway.download(f"{third_party.base_url}/moved", max_bytes=10**6)
    assert third_party.paths == ["/moved"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_url_that_redirects_to_itself_is_rejected_not_an_httpx_error(
    gateway: ReplicateGateway, sandbox: RunningSandbox, control: httpx.Client, status: int
) -> None:
    _redirect(control, "/_blob/loop.zip", "/_blob/loop.zip", status=status)
    with pytest.raises(DataRejected, match="in a loop"):
        gateway.download(f"{sandbox.base_url}/_blob/loop.zip", max_bytes=10**6)


def test_more_than_five_redirects_are_rejected(
    gateway: ReplicateGateway, sandbox: RunningSandbox, control: httpx.Client
) -> None:
    for hop in range(7):
        _redirect(control, f"/_blob/hop{hop}.zip", f"/_blob/hop{hop + 1}.zip")
    with pytest.raises(DataRejected, match="more than 5 times"):
        gateway.download(f"{sandbox.base_url}/_blob/hop0.zip", max_bytes=10**6)
    control.delete("/faults")
    _blob(sandbox, "hop5.zip", b"five")  # hop0 -> hop5 is five redirects: allowed
    for hop in range(5):
        _redirect(control, f"/_blob/hop{hop}.zip", f"/_blob/hop{hop + 1}.zip")
    assert gateway.download(f"{sandbox.base_url}/_blob/hop0.zip", max_bytes=10) == b"five"


def test_odd_redirects_are_rejected(
    gateway: ReplicateGateway,
    sandbox: RunningSandbox,
    control: httpx.Client,
    third_party: ThirdParty,
) -> None:
    _redirect(control, "/_blob/broken.zip", "https://files.example.com:port/x.zip")
    with pytest.raises(DataRejected, match="not a URL"):
        gateway.download(f"{sandbox.base_url}/_blob/broken.zip", max_bytes=10**6)
    _redirect(control, "/_blob/ftp.zip", "ftp://files.example.com/x.zip")
    with pytest.raises(DataRejected, match="refused"):
        gateway.download(f"{sandbox.base_url}/_blob/ftp.zip", max_bytes=10**6)
    with pytest.raises(DataRejected, match="HTTP 302 instead of a file"):
        gateway.download(f"{third_party.base_url}/no-location", max_bytes=10**6)


# -- size and time ---------------------------------------------------------------------------
def test_the_cap_holds_with_and_without_a_declared_length(
    gateway: ReplicateGateway,
    third_party: ThirdParty,
) -> None:
    with pytest.raises(DataRejected, match="307,200 bytes, more than the 1,000 allowed"):
        gateway.download(f"{third_party.base_url}/files/images.zip", max_bytes=1000)
    with pytest.raises(DataRejected, match="larger than the 100,000 bytes allowed"):
        gateway.download(f"{third_party.base_url}/chunked", max_bytes=100_000)
    assert gateway.download(f"{third_party.base_url}/chunked", max_bytes=len(PAYLOAD)) == PAYLOAD
    uploaded = gateway.upload_file(PAYLOAD, filename="big.zip", content_type="application/zip")
    with pytest.raises(DataRejected, match="more than the 1,000 allowed"):
        gateway.download(uploaded.url, max_bytes=1000)


def test_the_body_is_not_held_twice(gateway: ReplicateGateway, third_party: ThirdParty) -> None:
    """Peak memory while downloading 24 MB stays well under twice the body."""
    third_party.big = bytes(range(256)) * (24 * 4096)
    size = len(third_party.big)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        body = gateway.download(f"{third_party.base_url}/big", max_bytes=size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert body == third_party.big
    assert peak < 1.5 * size, f"peak {peak:,} for a {size:,}-byte body"


def test_a_dripping_server_is_cut_off_at_the_deadline(
    gateway: ReplicateGateway, third_party: ThirdParty
) -> None:
    """A byte every 0.2 s never trips a read timeout; the overall deadline stops it (the
    whole body would arrive after 20 s, so without the deadline nothing is raised)."""
    with pytest.raises(ReplicateUnavailable, match="did not finish within 1 s"):
        gateway.download(f"{third_party.base_url}/drip", max_bytes=1000, deadline_seconds=1.0)


def test_the_deadline_cuts_each_request_timeout_and_the_retries(
    gateway: ReplicateGateway, sandbox: RunningSandbox, control: httpx.Client
) -> None:
    url = _blob(sandbox, "slow.zip", PAYLOAD)
    control.post("/faults", json={"timeout": True, "hang_seconds": 10, "path": "^/_blob/slow"})
    with pytest.raises(ReplicateUnavailable) as caught:
        gateway.download(url, max_bytes=10**6, deadline_seconds=1.0)
    assert "try again" in str(caught.value)
    # The client's own read timeout is 5 s and the retries allow 15 s: without the
    # deadline cutting both, the hanging blob would have been asked for again.
    (rule,) = control.get("/faults").json()["rules"]
    assert rule["hits"] == 1


# -- failures, permanent and transient -------------------------------------------------------
def test_permanent_failures_are_data_rejected(
    gateway: ReplicateGateway,
    third_party: ThirdParty,
) -> None:
    with pytest.raises(DataRejected, match=r"HTTP 403.*not public"):
        gateway.download(f"{third_party.base_url}/private", max_bytes=1000)
    for url in ("file:///etc/passwd", "ftp://example.com/a.zip"):
        with pytest.raises(DataRejected, match="only http"):
            gateway.download(url, max_bytes=1000)
    # Addresses that are http(s) but unusable: tests/gateway/test_unusable_addresses.py.
    with pytest.raises(DataRejected, match="no host name"):
        gateway.download("http://", max_bytes=1000)
    with pytest.raises(DataRejected, match="port is not a number"):
        gateway.download("https://h:abc/x", max_bytes=1000)


def test_gone_files_are_transient_not_rejected(
    gateway: ReplicateGateway,
    third_party: ThirdParty,
) -> None:
    """A 404/410 may be a file not visible yet or a host's hiccup: the next scan retries."""
    with pytest.raises(ReplicateUnavailable, match=r"not there \(HTTP 404\)") as caught:
        gateway.download(f"{third_party.base_url}/nothing-here", max_bytes=1000)
    assert caught.value.status == 404
    with pytest.raises(ReplicateUnavailable, match=r"HTTP 404"):
        gateway.download(f"{gateway.base_url}/v1/files/abcdefghijklmnopqrstuvwxyz", max_bytes=10)


def test_server_errors_are_retried_then_reported_as_unavailable(
    gateway: ReplicateGateway,
    third_party: ThirdParty,
) -> None:
    third_party.flaky_left = 2
    assert gateway.download(f"{third_party.base_url}/flaky", max_bytes=len(PAYLOAD)) == PAYLOAD
    assert len(third_party.headers) == 3
    third_party.flaky_left = 100
    with pytest.raises(ReplicateUnavailable, match=r"Could not download .*HTTP 503"):
        gateway.download(f"{third_party.base_url}/flaky", max_bytes=len(PAYLOAD))


def test_a_host_that_does_not_answer_is_unavailable(gateway: ReplicateGateway) -> None:
    with pytest.raises(ReplicateUnavailable, match=r"Could not download .*ConnectError"):
        gateway.download("http://127.0.0.1:9/images.zip", max_bytes=1000)


def test_a_body_that_cannot_be_decoded_is_retried_then_rejected_not_an_httpx_error(
    gateway: ReplicateGateway, third_party: ThirdParty
) -> None:
    """Read again (the same as any unreadable answer), and when every try brought the same
    undecodable bytes, rejected for good: the stored file is what is wrong."""
    with pytest.raises(DataRejected, match="body that cannot be decoded") as caught:
        gateway.download(f"{third_party.base_url}/bad-gzip?sig=s3cr3t", max_bytes=1000)
    assert f"{third_party.base_url}/bad-gzip:" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
    assert third_party.paths.count("/bad-gzip") > 1


def test_own_files_with_a_refused_token_are_unauthorized(
    make_gateway: MakeGateway, control: httpx.Client
) -> None:
    gateway = make_gateway()
    uploaded = gateway.upload_file(b"zip", filename="x.zip", content_type="application/zip")
    control.post("/faults", json={"status": 403, "path": "/download$"}).raise_for_status()
    with pytest.raises(Unauthorized, match="REPLICATE_API_TOKEN"):
        gateway.download(uploaded.url, max_bytes=10)


# -- what is shown ---------------------------------------------------------------------------
def test_credentials_and_queries_never_reach_messages_or_logs(
    make_gateway: MakeGateway,
    third_party: ThirdParty,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway = make_gateway(policy=RetryPolicy(base_delay=0.01, max_delay=0.01, max_attempts=3))
    host = third_party.base_url.removeprefix("http://")
    third_party.flaky_left = 100
    messages = []
    caplog.set_level(logging.DEBUG)
    for path in ("/nothing-here", "/private", "/flaky", "/moved", "/drip"):
        url = f"http://sandra:hunter2@{host}{path}?X-Amz-Signature=s3cr3t#frag"
        with pytest.raises(DashboardError) as caught:
            gateway.download(url, max_bytes=10, deadline_seconds=0.5)
        messages.append(str(caught.value))
    ours = [record.getMessage() for record in caplog.records if record.name.startswith("core")]
    shown = "\n".join(messages + ours)
    for secret in ("hunter2", "sandra", "s3cr3t", "X-Amz", "frag"):
        assert secret not in shown
    assert f"http://{host}/nothing-here" in shown
    # The password never travels in a URL, so no library logs it either.
    assert not any("hunter2" in record.getMessage() for record in caplog.records)
    assert all(
        headers.get("authorization") == "Basic c2FuZHJhOmh1bnRlcjI="
        for headers in third_party.headers
    )
