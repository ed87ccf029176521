"""Request body size limit as pure ASGI middleware: rejects by Content-Length up front and counts
streamed bytes otherwise, so an oversized body is never read into memory. Upload routes that
stream to disk raise their own, larger limit by path prefix."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodySizeLimit:
    def __init__(self, app: ASGIApp, default_limit: int, prefix_limits: dict[str, int] | None = None,
                 envelope_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.default_limit = default_limit
        self.prefix_limits = prefix_limits or {}
        self.envelope_prefixes = envelope_prefixes  # paths answering {"data": null, "error": ...}

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.prefix_limits.items():
            if path.startswith(prefix):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.limit_for(path)
        envelope = path.startswith(self.envelope_prefixes)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reject(send, 400, "invalid_request", "bad Content-Length header", envelope)
                    return
                if declared > limit:
                    await _reject(send, 413, "payload_too_large", f"request body exceeds {limit} bytes", envelope)
                    return
        received = 0
        exceeded = False

        async def counting_receive() -> Message:
            # Past the limit, pretend the client went away: frameworks stop reading, and whatever
            # the app answers is replaced by a 413 in tracking_send.
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        replaced = False

        async def tracking_send(message: Message) -> None:
            nonlocal replaced
            if exceeded:
                if message["type"] == "http.response.start" and not replaced:
                    replaced = True
                    await _reject(send, 413, "payload_too_large", f"request body exceeds {limit} bytes", envelope)
                return
            await send(message)

        await self.app(scope, counting_receive, tracking_send)
        if exceeded and not replaced:
            await _reject(send, 413, "payload_too_large", f"request body exceeds {limit} bytes", envelope)


async def _reject(send: Send, status: int, code: str, message: str, envelope: bool = False) -> None:
    payload = {"error": {"code": code, "message": message}}
    body = json.dumps({"data": None, **payload} if envelope else payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
