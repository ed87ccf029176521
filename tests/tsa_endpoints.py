"""Real network endpoints in front of (or instead of) an RFC 3161 TSA, for tests of per-request TSA
choices: a reverse proxy to the service's /pki/tsa that demands HTTP Basic or a TLS client
certificate, and misbehaving servers (garbage, endless or huge bodies, silence, redirects,
rejections, replays). Each is a small threaded server on 127.0.0.1 inside the test process;
certificates come from a throw-away CA made with ``cryptography``.

Use::

    ca = TestCa.create(tmp_path / "ca", "Test TLS CA")
    server = ca.issue("127.0.0.1", server=True)          # CertFiles(cert, key)
    client = ca.issue("tsa-client", client=True)
    with TsaProxy(upstream=service.url + "/pki/tsa", tls=server_tls(server, client_ca=ca)) as proxy:
        proxy.url                                         # https://127.0.0.1:PORT/tsa
    with TsaProxy(upstream=..., basic=("user", "secret")) as proxy: ...
    with HugeBodyServer(10 << 20) as big: big.url, big.bytes_sent
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TS_REPLY = "application/timestamp-reply"


# --- a throw-away CA ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path

    @property
    def cert_pem(self) -> bytes:
        return self.cert.read_bytes()


@dataclass
class TestCa:
    directory: Path
    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    __test__ = False  # not a pytest class

    @property
    def pem_file(self) -> Path:
        return self.directory / "ca.pem"

    @classmethod
    def create(cls, directory: Path, name: str) -> "TestCa":
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
                .not_valid_after(now + dt.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        ca = cls(directory, name, key, cert)
        ca.pem_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return ca

    def issue(self, name: str, *, server: bool = False, client: bool = False, key_password: bytes | None = None
              ) -> CertFiles:
        """A leaf certificate: ``server`` for 127.0.0.1 / localhost (SAN), ``client`` for TLS client auth."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(self.certificate.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
                   .not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                  critical=False))
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client
                                                                          else [])
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        safe = "".join(c if c.isalnum() else "_" for c in name)
        files = CertFiles(self.directory / f"{safe}.pem", self.directory / f"{safe}.key")
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        encryption = (serialization.BestAvailableEncryption(key_password) if key_password
                      else serialization.NoEncryption())
        files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                encryption))
        os.chmod(files.key, 0o600)
        return files


def server_tls(server: CertFiles, client_ca: TestCa | None = None) -> ssl.SSLContext:
    """A server context; with ``client_ca`` it DEMANDS a client certificate issued by that CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(server.cert), str(server.key))
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(client_ca.pem_file))
    return context


# --- a tiny HTTP/1.1 server in threads ---------------------------------------------------------------
@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer_certificate: dict[str, Any] | None


Body = bytes | Iterator[bytes]


class HttpEndpoint:
    """An HTTP/1.1 server on 127.0.0.1 answering each request with ``handle`` (one request per
    connection, a thread per connection; blocking sockets, so a failed TLS handshake sends its
    alert as a real server does). With ``tls`` it speaks HTTPS. ``requests`` counts the requests
    that reached the handler, ``bytes_sent`` the body bytes written."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.requests = 0
        self.bytes_sent = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/tsa"

    def handle(self, request: Request) -> tuple[int, dict[str, str], Body]:
        raise NotImplementedError

    def __enter__(self) -> "HttpEndpoint":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self._sock.close()

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def prepare_socket(self, conn: socket.socket) -> None:
        """Hook for socket options of an accepted connection."""

    def _connection(self, conn: socket.socket) -> None:
        conn.settimeout(60)
        self.prepare_socket(conn)
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
                try:
                    conn.do_handshake()  # a refused client certificate ends here, its alert sent
                except (OSError, ValueError):
                    _linger(conn)
                    raise
            request = self._read_request(conn)
            if request is None:
                return
            with self._lock:
                self.requests += 1
            status, headers, body = self.handle(request)
            self._write(conn, status, headers, body)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _read_request(self, conn: socket.socket) -> Request | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            body += chunk
        peer = conn.getpeercert() if isinstance(conn, ssl.SSLSocket) else None
        return Request(method, path, headers, body[:length], peer)

    def _write(self, conn: socket.socket, status: int, headers: dict[str, str], body: Body) -> None:
        head = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()] + ["Connection: close"]
        if isinstance(body, bytes):
            head.append(f"Content-Length: {len(body)}")
            conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            self.bytes_sent += len(body)
            return
        chunked = not any(k.lower() == "content-length" for k in headers)
        if chunked:
            head.append("Transfer-Encoding: chunked")
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        for chunk in body:
            conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
            self.bytes_sent += len(chunk)
        if chunked:
            conn.sendall(b"0\r\n\r\n")


def _linger(conn: socket.socket) -> None:
    """Close as web servers do (lingering close): stop sending, read what the client still sends,
    then close, so the TLS alert already sent is not wiped out by a reset (a TLS 1.3 client has
    sent its request before it learns that its certificate was refused)."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(5)
        while conn.recv(65536):
            pass


class TsaProxy(HttpEndpoint):
    """A reverse proxy to ``upstream`` (an RFC 3161 URL, the service's /pki/tsa) that answers 401
    without the right ``basic`` credentials; with ``tls`` from ``server_tls(..., client_ca=...)`` the
    TLS handshake itself demands a client certificate. ``mode`` 'imprint' forwards a request for
    another imprint, 'replay' answers every request with the first reply (stale nonce)."""

    def __init__(self, upstream: str, *, basic: tuple[str, str] | None = None, tls: ssl.SSLContext | None = None,
                 mode: str = "forward") -> None:
        super().__init__(tls)
        self.upstream = upstream
        self.basic = basic
        self.mode = mode
        self.client_subjects: list[str] = []
        self._first_reply: bytes | None = None

    def handle(self, request: Request) -> tuple[int, dict[str, str], Body]:
        if request.peer_certificate is not None:
            self.client_subjects.append(str(request.peer_certificate.get("subject")))
        if self.basic is not None:
            expected = "Basic " + base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
            if request.headers.get("authorization") != expected:
                return 401, {"WWW-Authenticate": 'Basic realm="tsa"', "Content-Type": "text/plain"}, b"who are you?"
        body = request.body
        if self.mode == "imprint":
            body = _other_imprint(body)
        if self.mode == "replay" and self._first_reply is not None:
            return 200, {"Content-Type": TS_REPLY}, self._first_reply
        with httpx.Client(timeout=30, trust_env=False) as client:
            r = client.post(self.upstream, content=body, headers={"Content-Type": "application/timestamp-query"})
        self._first_reply = self._first_reply or r.content
        return r.status_code, {"Content-Type": r.headers.get("content-type", "")}, r.content


def _other_imprint(query: bytes) -> bytes:
    from asn1crypto import tsp

    req = tsp.TimeStampReq.load(query)
    imprint = req["message_imprint"]
    digest = bytes(len(imprint["hashed_message"].native))  # all zero: not what was asked for
    return tsp.TimeStampReq({"version": 1, "message_imprint": {"hash_algorithm": imprint["hash_algorithm"],
                                                              "hashed_message": digest},
                             "nonce": req["nonce"], "cert_req": req["cert_req"]}).dump()


class FixedAnswer(HttpEndpoint):
    """Answers every request with the same status, headers and body (garbage, HTML, a redirect, a
    PKIStatus rejection)."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(tls)
        self.answer = (status, headers, body)

    def handle(self, request: Request) -> tuple[int, dict[str, str], Body]:
        return self.answer


def rejection_reply() -> bytes:
    """A TimeStampResp with PKIStatus rejection (badAlg)."""
    from asn1crypto import tsp

    status = tsp.PKIStatusInfo({"status": "rejection", "status_string": ["no, not today"],
                                "fail_info": tsp.PKIFailureInfo({"bad_alg"})}).dump()
    assert len(status) < 128
    return b"\x30" + bytes([len(status)]) + status  # SEQUENCE { status } (no timeStampToken, as RFC 3161 allows)


class HugeBodyServer(HttpEndpoint):
    """Answers 200 application/timestamp-reply with ``size`` bytes, written 64 KiB at a time, with a
    Content-Length (``declared``) or chunked; ``bytes_sent`` tells how much the client took before it
    hung up. The socket's send buffer is kept small so the count stays close to what was read."""

    def __init__(self, size: int, *, declared: bool) -> None:
        super().__init__()
        self.size = size
        self.declared = declared

    def prepare_socket(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)

    def handle(self, request: Request) -> tuple[int, dict[str, str], Body]:
        def chunks() -> Iterator[bytes]:
            block = b"\x30" * 65536
            left = self.size
            while left > 0:
                yield block[:min(left, len(block))]
                left -= len(block)
        headers = {"Content-Type": TS_REPLY}
        if self.declared:
            headers["Content-Length"] = str(self.size)
        return 200, headers, chunks()


class RawServer:
    """A TCP server on 127.0.0.1 that sends ``greeting`` (not HTTP) and closes, or, with None,
    accepts and never answers."""

    def __init__(self, greeting: bytes | None) -> None:
        self.greeting = greeting
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tsa"

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            if self.greeting is None:
                self._held.append(conn)
                continue
            with contextlib.suppress(OSError):
                conn.recv(65536)
                conn.sendall(self.greeting)
                _linger(conn)  # no reset: the client reads the greeting whatever it still had to send
            conn.close()

    def __enter__(self) -> "RawServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        for conn in self._held:
            conn.close()
        self._sock.close()


def closed_port() -> int:
    """A loopback port nobody listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

