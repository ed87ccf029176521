"""Shared by the load benchmarks: keep-alive HTTP/1.1 clients (on asyncio streams, and on a plain
socket for pre-encoded requests) that cost the machine little. The service and the load generator share the same cores; httpx spends
~3 ms of CPU per request (its pool, its models, header normalisation), so with dozens of
clients the generator, not the service, would set the pace. Requests are written in one piece;
answers with Content-Length or chunked bodies are read. Only what the benchmarks need.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit


class HttpError(Exception):
    """The connection broke or the answer was not HTTP/1.1."""


class Response:
    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or []  # (lower-case name, value), in order; repeated fields repeated

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """The last value of field ``name`` (any case), None without one."""
        name = name.lower()
        return next((v for k, v in reversed(self.headers) if k == name), None)

    def cookies(self) -> dict[str, str]:
        """name -> value of every Set-Cookie (attributes left out)."""
        found = {}
        for k, v in self.headers:
            if k == "set-cookie":
                name, _, value = v.split(";", 1)[0].partition("=")
                found[name.strip()] = value.strip()
        return found


def multipart(field: str, filename: str, content: bytes, mime: str = "application/octet-stream") -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data upload of one file, encoded once, sent many times."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {mime}\r\n\r\n").encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Connection:
    """One client's connection; reconnects when the server closed it. With ``idle_reconnect``
    (seconds), a connection left unused that long is replaced before the next request, as
    connection pools do: a server closes idle keep-alive connections (uvicorn after 5 s), and a
    request written just as it does so would fail for nothing."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None,
                 idle_reconnect: float | None = None) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{self.host}:{self.port}", **(headers or {})}.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._idle_reconnect = idle_reconnect
        self._last_used = 0.0

    async def connect(self) -> None:
        """Open the connection now (else the first request does)."""
        if self._writer is None:
            await self._connect()

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        self._last_used = time.monotonic()

    async def request(self, method: str, path: str, body: bytes = b"", content_type: str | None = None,
                      headers: dict[str, str] | None = None) -> Response:
        """One request; ``headers`` are sent besides the connection's own."""
        if (self._writer is not None and self._idle_reconnect is not None
                and time.monotonic() - self._last_used > self._idle_reconnect):
            await self.close()
        if self._writer is None:
            await self._connect()
        head = f"{method} {path} HTTP/1.1\r\n{self._fixed}"
        if headers:
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if body or method in ("POST", "PUT"):
            head += f"Content-Length: {len(body)}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        assert self._writer is not None and self._reader is not None
        try:
            self._writer.write(head.encode() + b"\r\n" + body)
            await self._writer.drain()
            return await self._read()
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            await self.close()
            raise HttpError(str(exc)) from exc
        finally:
            self._last_used = time.monotonic()

    async def _read(self) -> Response:
        assert self._reader is not None
        header = await self._reader.readuntil(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        pairs = [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:] if line)]
        fields = dict(pairs)
        if "content-length" in fields:
            body = await self._reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            pieces = []
            while size := int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16):
                pieces.append(await self._reader.readexactly(size))
                await self._reader.readexactly(2)
            await self._reader.readuntil(b"\r\n")
            body = b"".join(pieces)
        else:
            body = b""
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, body, pairs)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        self._reader = self._writer = None


def encode_request(method: str, host: str, path: str, body: bytes = b"", content_type: str | None = None,
                   headers: dict[str, str] | None = None) -> bytes:
    """One request's bytes, built before the timed part of a benchmark."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class SocketConnection:
    """A blocking keep-alive connection sending pre-encoded requests (answers with Content-Length)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host = f"{parts.hostname}:{parts.port}"
        self._sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()

    def send(self, raw: bytes) -> Response:
        self._sock.sendall(raw)
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            self._recv()
        head = bytes(self._buf[:end]).split(b"\r\n")
        status = int(head[0].split()[1])
        size = next(int(line.split(b":", 1)[1]) for line in head[1:] if line.lower().startswith(b"content-length:"))
        start = end + 4
        while len(self._buf) < start + size:
            self._recv()
        body = bytes(self._buf[start:start + size])
        del self._buf[:start + size]
        return Response(status, body)

    def _recv(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise HttpError("the server closed the connection")
        self._buf += chunk

    def close(self) -> None:
        self._sock.close()
