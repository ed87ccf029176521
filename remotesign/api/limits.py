"""Request body size limit as pure ASGI middleware: rejects by Content-Length up front and counts
streamed bytes otherwise, so an oversized body is never read into memory. Upload routes that
stream to disk raise their own, larger limit by path prefix."""

from __future__ import annotations

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
        del envelope_prefixes  # kept for callers; errors.error_content picks each API's shape by path

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
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await reject(send, path, 400, "invalid_request", "bad Content-Length header")
                    return
                if declared > limit:
                    await reject(send, path, 413, "payload_too_large", f"request body exceeds {limit} bytes")
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
                    await reject(send, path, 413, "payload_too_large", f"request body exceeds {limit} bytes")
                return
            await send(message)

        await self.app(scope, counting_receive, tracking_send)
        if exceeded and not replaced:
            await reject(send, path, 413, "payload_too_large", f"request body exceeds {limit} bytes")


async def reject(send: Send, path: str, status: int, code: str, message: str) -> None:
    """Answer from a middleware, before routing, in the error shape of the API that owns ``path``."""
    from remotesign.api.errors import error_response

    await send_response(send, error_response(path, status, code, message))


async def send_response(send: Send, response: Any) -> None:
    """Send a complete (non-streaming) Starlette response through a bare ASGI ``send``."""
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})
