"""What every API client shares: the ``httpx.Client`` (yours, or one it makes), the token, and
turning an error answer into a :class:`~remotesign_client.errors.RemotesignError`."""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Union

import httpx

from remotesign_client.auth import BearerToken
from remotesign_client.errors import TransportError, from_response

#: a file to send: its bytes, a path, or a binary file object (streamed, not read into memory)
Content = Union[bytes, str, Path, IO[bytes]]
DEFAULT_TIMEOUT = 120.0


class ApiClient:
    """Base of the per-API clients.

    ``base_url``: the service, e.g. ``https://sign.example.com``; ``auth``: an ``httpx.Auth``
    (:class:`~remotesign_client.auth.ClientCredentials`, ...) or a token string; ``http``: an
    ``httpx.Client`` to use (then ``base_url`` may be omitted when it has one). A client made
    here is closed by :meth:`close` (or ``with``); an injected one is left to its owner."""

    def __init__(self, base_url: str | None = None, auth: httpx.Auth | str | None = None, *,
                 http: httpx.Client | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        if http is None and not base_url:
            raise ValueError("give base_url or an httpx.Client")
        self._owned = http is None
        self.http = http if http is not None else httpx.Client(timeout=timeout)
        self.base_url = str(base_url or http.base_url).rstrip("/")  # type: ignore[union-attr]
        self.auth: httpx.Auth | None = BearerToken(auth) if isinstance(auth, str) else auth

    def close(self) -> None:
        if self._owned:
            self.http.close()

    def __enter__(self) -> "ApiClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return self.base_url + path

    def request(self, method: str, path: str, *, expect: tuple[int, ...] = (200,), auth: bool = True,
                **kwargs: Any) -> httpx.Response:
        """Send; raise the mapped error unless the status is one of ``expect``."""
        if auth and self.auth is not None:
            kwargs["auth"] = self.auth
        try:
            r = self.http.request(method, self.url(path), **kwargs)
        except httpx.HTTPError as exc:
            raise TransportError(f"{method} {path}: {exc}") from exc
        if r.status_code not in expect:
            raise from_response(r)
        return r

    def stream_to(self, path: str, out: IO[bytes], **kwargs: Any) -> int:
        """GET ``path`` into the file object ``out`` without holding it in memory; bytes written."""
        if self.auth is not None:
            kwargs["auth"] = self.auth
        written = 0
        try:
            with self.http.stream("GET", self.url(path), **kwargs) as r:
                if r.status_code != 200:
                    r.read()
                    raise from_response(r)
                for chunk in r.iter_bytes(1 << 20):
                    out.write(chunk)
                    written += len(chunk)
        except httpx.HTTPError as exc:
            raise TransportError(f"GET {path}: {exc}") from exc
        return written


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def der_of(certificate: Any) -> bytes:
    """DER bytes of a certificate given as DER, PEM (bytes or str), or a ``cryptography`` /
    ``asn1crypto`` certificate object."""
    if isinstance(certificate, str):
        certificate = certificate.encode()
    if isinstance(certificate, (bytes, bytearray)):
        data = bytes(certificate)
        if data.lstrip().startswith(b"-----BEGIN"):
            body = b"".join(line for line in data.strip().splitlines() if not line.startswith(b"-----"))
            return base64.b64decode(body)
        return data
    if hasattr(certificate, "public_bytes"):  # cryptography.x509.Certificate
        from cryptography.hazmat.primitives.serialization import Encoding

        return bytes(certificate.public_bytes(Encoding.DER))
    if hasattr(certificate, "dump"):  # asn1crypto.x509.Certificate
        return bytes(certificate.dump())
    raise TypeError(f"not a certificate: {type(certificate).__name__}")


def file_part(content: Content, name: str | None = None) -> tuple[str, Any]:
    """(file name, content) for a multipart part; a path is opened by the caller's ``with``."""
    if isinstance(content, (bytes, bytearray)):
        return name or "document", bytes(content)
    if isinstance(content, (str, Path)):
        raise TypeError("open paths with open_content()")
    return name or Path(getattr(content, "name", "document") or "document").name, content


class open_content:
    """``with open_content(x, name) as (filename, payload)``: a path opened for the request and
    closed after it, bytes and file objects passed through."""

    def __init__(self, content: Content, name: str | None = None) -> None:
        self.content = content
        self.name = name
        self._fh: IO[bytes] | None = None

    def __enter__(self) -> tuple[str, Any]:
        if isinstance(self.content, (str, Path)):
            path = Path(self.content)
            self._fh = open(path, "rb")
            return self.name or path.name, self._fh
        return file_part(self.content, self.name)

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
