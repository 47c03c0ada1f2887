"""ReplicateGateway.download with addresses that cannot be read: a ZIP URL comes from the
app's users, so anything may be in it. Every such failure leaves the gateway in the error
tree with the reason in words (never an httpx, idna or ssl exception): ``DataRejected``
when no try can read the address (so it is cached as rejected), ``ReplicateUnavailable``
when a later try may.

Hosts that no resolver is asked about (a label over 63 characters, idna's refusals) need
no network; TLS is tried against real local servers: the sandbox (plain http) asked in
https, a TLS server with a self-signed certificate, and one that hangs up mid-handshake.
"""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.errors import DataRejected, ReplicateUnavailable
from core.gateway.gateway import ReplicateGateway
from core.gateway.urls import host_problem
from core.sandbox.server import RunningSandbox
from tests.conftest import quick_gateway

SECRETS = ("hunter2", "sandra", "s3cr3t", "X-Amz")
LONG_LABEL = "a" * 64


def _secret(url_tail: str) -> str:
    """``https://sandra:hunter2@`` + ``url_tail`` + a signed query: none may be shown."""
    return f"https://sandra:hunter2@{url_tail}?X-Amz-Signature=s3cr3t"


def _rejected(gateway: ReplicateGateway, url: str) -> str:
    with pytest.raises(DataRejected) as caught:
        gateway.download(url, max_bytes=1000, deadline_seconds=5)
    message = str(caught.value)
    assert not any(secret in message for secret in SECRETS), message
    assert "trying again cannot help" in message.lower()
    return message


# -- host names DNS cannot carry ------------------------------------------------------------
@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        # socket's idna codec refuses these with a UnicodeError (measured: it failed a scan)
        (f"{LONG_LABEL}.example.com/images.zip", "a label of 64 characters; DNS allows 63"),
        ("blob..example.com/images.zip", "empty label"),
        (".example.com/images.zip", "empty label"),
        # idna refuses these "xn--" labels when httpx decodes the host (a UnicodeError too)
        ("xn--a.example.com/images.zip", "not valid IDNA"),
        ("xn--ls8h.la/images.zip", "not valid IDNA"),
        # httpx refuses these hosts (InvalidURL) while parsing
        ("\u2603.example.com/images.zip", "not a valid host name"),
        ("exa\u200dmple.com/images.zip", "not a valid host name"),
        # httpx takes these, and they could never be looked up
        ("a%20b.example.com/images.zip", "characters no host name can have"),
        ("a b.example.com/images.zip", "characters no host name can have"),
        ("a." * 130 + "com/images.zip", "263 characters long; DNS allows 253"),
    ],
)
def test_a_host_name_dns_cannot_carry_is_rejected_with_the_reason(
    gateway: ReplicateGateway, tail: str, reason: str
) -> None:
    assert reason in _rejected(gateway, _secret(tail))


def test_a_redirect_to_a_host_dns_cannot_carry_is_rejected(
    gateway: ReplicateGateway, sandbox: RunningSandbox, control: httpx.Client
) -> None:
    """The same checks hold for where a redirect leads (a raw UnicodeError came out of
    the redirect's host check and of the connect before)."""
    for name, to in (
        ("long", f"https://{LONG_LABEL}.example.com/x.zip"),
        ("idna", "https://xn--a.com/x"),
    ):
        rule = {"path": f"^/_blob/{name}.zip$", "redirect_to": to, "status": 302}
        control.post("/faults", json=rule).raise_for_status()
    message = _rejected(gateway, f"{sandbox.base_url}/_blob/long.zip?sig=s3cr3t")
    assert f"where {sandbox.base_url}/_blob/long.zip redirects" in message
    assert "a label of 64 characters" in message
    # httpx reads this one's host itself while it builds the redirect (a UnicodeError).
    assert "redirects to, is refused by idna" in _rejected(
        gateway, f"{sandbox.base_url}/_blob/idna.zip"
    )


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("replicate.delivery", None),
        ("blob.vercel-storage.com.", None),  # a rooted name
        ("my_bucket.s3.amazonaws.com", None),  # underscores: some storage hosts have them
        ("127.0.0.1", None),
        ("::1", None),
        ("xn--bcher-kva.example", None),  # bücher.example, IDNA-encoded as sent
        (f"{'a' * 63}.com", None),
        (f"{'a' * 64}.com", "a label of 64 characters"),
        ("a..com", "empty label"),
        ("a.com..", "empty label"),
    ],
)
def test_which_host_names_dns_can_carry(host: str, problem: str | None) -> None:
    found = host_problem(host)
    assert found is None if problem is None else problem in (found or "")


# -- URLs httpx will not send ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (_secret("blob.example.com/a\x00b.zip"), "control character"),
        (_secret("blob.example.com/images.zip\n"), "control character"),
        (_secret("blob.example.com/images\x7f.zip"), "control character"),
        (_secret("blob.example.com/" + "x" * 70_000), "more than a URL may be (65,536)"),
        (_secret("blob.example.com:abc/images.zip"), "port is not a number"),
        (_secret("blob.example.com:99999/images.zip"), "port 99999 is not a port"),
        (_secret("blob.example.com:0/images.zip"), "port 0 is not a port"),
        (_secret("blob.example.com/\udc80.zip"), "characters no URL can carry"),
        # What httpx would send nowhere (UnsupportedProtocol): no host at all.
        ("http://", "no host name"),
        ("http://sandra:hunter2@127.0.0.1@:1/x?X-Amz-Signature=s3cr3t", "no host name"),
    ],
)
def test_a_url_httpx_refuses_is_rejected_with_the_reason(
    gateway: ReplicateGateway, url: str, reason: str
) -> None:
    assert reason in _rejected(gateway, url)


def test_a_url_that_is_not_http_is_still_said_to_be_so(gateway: ReplicateGateway) -> None:
    for url in ("file:///etc/passwd", "ftp://example.com/a.zip", "HTTPS//blob/x.zip"):
        with pytest.raises(DataRejected, match="only http"):
            gateway.download(url, max_bytes=1000)


# -- TLS -------------------------------------------------------------------------------------
def test_https_to_a_host_that_does_not_speak_tls_is_rejected(
    gateway: ReplicateGateway, sandbox: RunningSandbox
) -> None:
    """The sandbox answers plain http; asked in https on its port, the handshake fails the
    same way every time (a raw ssl error surfacing as httpx.ConnectError)."""
    httpx.put(f"{sandbox.base_url}/_blob/tls/images.zip", content=b"zip").raise_for_status()
    port = httpx.URL(sandbox.base_url).port
    url = f"https://sandra:hunter2@127.0.0.1:{port}/_blob/tls/images.zip?X-Amz-Signature=s3cr3t"
    message = _rejected(gateway, url)
    assert f"https://127.0.0.1:{port}/_blob/tls/images.zip" in message
    assert "does not answer in TLS" in message


def test_a_tls_failure_of_our_own_api_is_not_the_file_s_fault(sandbox: RunningSandbox) -> None:
    """A Replicate file whose API host fails TLS: this machine's setup (CA bundle, a
    proxy), so it is transient and says where to look, never the file's rejection."""
    port = httpx.URL(sandbox.base_url).port
    gateway = quick_gateway(f"https://127.0.0.1:{port}")
    try:
        with pytest.raises(ReplicateUnavailable, match="CA certificates") as caught:
            gateway.download(f"https://127.0.0.1:{port}/v1/files/abc123", max_bytes=10)
    finally:
        gateway.close()
    assert not isinstance(caught.value, DataRejected)


@dataclass
class TlsServer:
    port: int
    connections: int = 0


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _serve(handle: Callable[[socket.socket], None]) -> Iterator[TlsServer]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    state = TlsServer(port=listener.getsockname()[1])
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            state.connections += 1
            # ssl.SSLError is an OSError: the client gave up on the handshake.
            with conn, contextlib.suppress(OSError):
                handle(conn)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield state
    stop.set()
    thread.join(timeout=5)
    listener.close()


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[TlsServer]:
    """A TLS server on loopback whose certificate no CA signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*_self_signed(tmp_path))

    def handshake(conn: socket.socket) -> None:
        conn.settimeout(5)
        with context.wrap_socket(conn, server_side=True):
            pass

    yield from _serve(handshake)


@pytest.fixture
def hang_up_server() -> Iterator[TlsServer]:
    """A server that reads the TLS hello and hangs up: a handshake cut short."""

    def hang_up(conn: socket.socket) -> None:
        conn.settimeout(5)
        conn.recv(65536)
        conn.shutdown(socket.SHUT_RDWR)

    yield from _serve(hang_up)


def test_a_certificate_that_is_refused_is_rejected_at_once(
    gateway: ReplicateGateway, self_signed_server: TlsServer
) -> None:
    url = _secret(f"127.0.0.1:{self_signed_server.port}/images.zip")
    message = _rejected(gateway, url)
    assert "TLS certificate is refused" in message and "self-signed" in message
    assert self_signed_server.connections == 1  # the same host next time: not retried


def test_a_handshake_cut_short_is_retried_then_unavailable(
    gateway: ReplicateGateway, hang_up_server: TlsServer
) -> None:
    url = _secret(f"127.0.0.1:{hang_up_server.port}/images.zip")
    with pytest.raises(ReplicateUnavailable, match="the TLS handshake failed") as caught:
        gateway.download(url, max_bytes=1000, deadline_seconds=10)
    assert not isinstance(caught.value, DataRejected)
    assert "try again" in str(caught.value)
    assert not any(secret in str(caught.value) for secret in SECRETS)
    assert hang_up_server.connections > 1
