"""Request bodies and URLs are checked before any parser sees them: JSON nesting depth, and NUL.

Python's JSON decoder, pydantic and every recursive walk over a decoded body recurse once per level:
100,000 ``[`` is a RecursionError (a 500 and a huge traceback) if it reaches them. No request of
this service's APIs nests deeper than a handful of levels, so a cheap byte scan refuses anything
deeper than ``MAX_DEPTH`` with a 400 in the API's own error shape, before routing. A NUL character
(``%00`` in a URL or form, ``\\u0000`` in JSON) is never meaningful in this service's identifiers,
names or base64 values, and PostgreSQL refuses it in text columns (a 500 deep in a query), so it is
refused up front too.
"""

from __future__ import annotations

import json
import operator
import re
from itertools import accumulate
from typing import Any

from starlette.concurrency import run_in_threadpool

from remotesign.api.limits import ASGIApp, Message, Receive, Scope, Send, reject

MAX_DEPTH = 32
INLINE_SCAN_BYTES = 256 << 10  # bodies up to this size are scanned on the event loop (well under a millisecond)
# A JSON string, escapes included; an unterminated one runs to the end (linear: no backtracking).
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_WEIGHT = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")  # opener +1, closer -1 (after subtracting 1)
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)  # an escaped NUL, not an escaped backslash
_URL_NUL = re.compile(rb"%00|\x00")
_JSON_TYPES = ("application/json", "text/json", "text/plain")
_FORM_TYPE = "application/x-www-form-urlencoded"
NUL_MESSAGE = "NUL characters are not accepted"


class JsonInputError(ValueError):
    """The body is not JSON, or nests deeper than the service accepts."""


def nesting_depth(raw: bytes) -> int:
    """The deepest bracket nesting outside strings (invalid JSON gives some number too; it fails
    to parse anyway)."""
    weights = _STRING.sub(b"", raw).translate(None, _NOT_BRACKET).translate(_WEIGHT)
    openers = weights.count(2)
    if openers <= 1:
        return openers
    return max(map(operator.sub, accumulate(weights), range(1, len(weights) + 1)))


def loads_untrusted(raw: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for bodies from the network: depth-checked first, every failure one error type."""
    data = raw.encode() if isinstance(raw, str) else raw
    if nesting_depth(data) > max_depth:
        raise JsonInputError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise JsonInputError("the request body is not valid JSON") from exc


def _body_kind(scope: Scope) -> str | None:
    """``json`` for a JSON (or text) Content-Type, ``form`` for a URL-encoded form, ``unknown`` when
    there is none (a route may still parse the body as JSON), None for every other type (uploads,
    DER protocol messages), which are not buffered here."""
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media = value.decode("latin-1").split(";", 1)[0].strip().lower()
            if media in _JSON_TYPES or media.endswith("+json"):
                return "json"
            return "form" if media == _FORM_TYPE else None
    return "unknown"


def _problem(kind: str, body: bytes, max_depth: int) -> str | None:
    if kind == "form":
        return NUL_MESSAGE if _URL_NUL.search(body) else None
    if kind == "unknown" and not body.lstrip()[:1] in (b"[", b"{"):
        return None  # not JSON (a DER request without a Content-Type, say): the route decides
    if nesting_depth(body) > max_depth:
        return f"JSON nested deeper than {max_depth} levels"
    return NUL_MESSAGE if _JSON_NUL.search(body) else None


class JsonDepthGuard:
    """Pure ASGI middleware: refuses a URL with a NUL; buffers a JSON-like or form body (at most
    ``max_bytes``, else 413), refuses it when nested deeper than ``max_depth`` or carrying a NUL
    (400), and replays it to the application."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int = MAX_DEPTH) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        code = "invalid_json" if _is_signapi(path) else "invalid_request"
        if "\x00" in path or _URL_NUL.search(scope.get("query_string", b"")):
            await reject(send, path, 400, "invalid_request", NUL_MESSAGE)
            return
        kind = _body_kind(scope)
        if kind is None or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # a disconnect: the application sees it after the buffered part
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                if kind != "unknown":
                    await reject(send, path, 413, "payload_too_large", f"this body is at most {self.max_bytes} bytes")
                    return
                break  # no Content-Type and large: not JSON for any route; stream it on unchecked
            if not message.get("more_body", False):
                break
        if size <= self.max_bytes:
            body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
            if len(body) > INLINE_SCAN_BYTES:  # a large body is scanned in the thread pool, not on the loop
                problem = await run_in_threadpool(_problem, kind, body, self.max_depth)
            else:
                problem = _problem(kind, body, self.max_depth)
            if problem is not None:
                await reject(send, path, 400, code if kind != "form" else "invalid_request", problem)
                return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _is_signapi(path: str) -> bool:
    from remotesign.api.eparaksts import PATH_PREFIXES

    return path.startswith(PATH_PREFIXES)
