"""ReplicateGateway.download: Replicate's own files with the token, everyone else's without,
a size cap enforced while streaming, and failures in the project's error tree.

The third party is a real HTTP server on loopback that records what it was sent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

from core.errors import DataRejected, ReplicateUnavailable
from core.gateway.gateway import ReplicateGateway

PAYLOAD = bytes(range(256)) * 1200  # 307,200 bytes


@dataclass
class ThirdParty:
    base_url: str
    headers: list[dict[str, str]] = field(default_factory=list)
    flaky_left: int = 0


@pytest.fixture
def third_party() -> Iterator[ThirdParty]:
    state = ThirdParty(base_url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            state.headers.append({key.lower(): value for key, value in self.headers.items()})
            self.path = urlsplit(self.path).path
            if self.path == "/flaky" and state.flaky_left > 0:
                state.flaky_left -= 1
                self._send(503, b"busy")
            elif self.path in (
                "/files/images.zip",
                "/v1/files/abcdefghijklmnopqrstuvwxyz",
                "/flaky",
            ):
                self._send(200, PAYLOAD)
            elif self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/files/images.zip")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/chunked":  # no Content-Length: only streaming can cap it
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(PAYLOAD), 65536):
                    chunk = PAYLOAD[start : start + 65536]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            elif self.path == "/private":
                self._send(403, b"AccessDenied")
            else:
                self._send(404, b"no such blob")

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


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
    gateway.download(f"{third_party.base_url}/moved", max_bytes=len(PAYLOAD))
    assert len(third_party.headers) == 4  # the redirect was followed
    assert all("authorization" not in headers for headers in third_party.headers)


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


def test_failures_say_what_happened(
    gateway: ReplicateGateway,
    third_party: ThirdParty,
    sandbox: object,
) -> None:
    with pytest.raises(DataRejected, match=r"gone \(HTTP 404\)"):
        gateway.download(f"{third_party.base_url}/nothing-here", max_bytes=1000)
    with pytest.raises(DataRejected, match=r"HTTP 403.*not public"):
        gateway.download(f"{third_party.base_url}/private", max_bytes=1000)
    with pytest.raises(DataRejected, match="only http"):
        gateway.download("file:///etc/passwd", max_bytes=1000)
    base = str(gateway._client._client.base_url).rstrip("/")
    with pytest.raises(DataRejected, match=r"gone \(HTTP 404\)"):
        gateway.download(f"{base}/v1/files/abcdefghijklmnopqrstuvwxyz", max_bytes=1000)


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
