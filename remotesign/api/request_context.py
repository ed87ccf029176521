"""Request ids, one-line logging and the last line of defence against unexpected errors.

Every request gets an id (a sane incoming ``X-Request-Id`` or a fresh one), echoed in the response
and stamped on every log record written while the request runs, so an operator can match a
client's complaint to the log. An exception nothing else handled is answered here, in the error
shape of the API that was called, and logged as ONE line: a hostile input that makes a library
recurse 10,000 frames deep must not write 88 KB of traceback per request. The line names the four
innermost frames, which is usually enough to find the fault; full tracebacks, cut to a bound, only
when the operator runs at debug level. The exception is not re-raised, so the ASGI server does not
log it a second time.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import traceback
from contextvars import ContextVar
from typing import Any

from fastapi.responses import Response

from remotesign.api.baseline_headers import with_baseline
from remotesign.api.errors import error_response
from remotesign.api.limits import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("remotesign.api")

HEADER = "X-Request-Id"
_HEADER_KEY = HEADER.lower().encode()
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_current: ContextVar[str] = ContextVar("remotesign_request_id", default="-")

MAX_MESSAGE_CHARS = 300      # of an exception's message in the one-line report
MAX_LINE_CHARS = 2000        # of any log line
MAX_TRACEBACK_CHARS = 16_000  # of a traceback at debug level (the innermost frames are kept)


def current_request_id() -> str:
    """The id of the request being served in this context, ``-`` outside a request."""
    return _current.get()


def request_id_of(scope: Scope) -> str:
    """The incoming ``X-Request-Id`` if it is short and plain (no log or header injection), else a
    fresh random id."""
    for name, value in scope.get("headers", []):
        if name == _HEADER_KEY:
            text = value.decode("latin-1")
            if _SANE_ID.fullmatch(text):
                return text
            break
    return secrets.token_hex(8)


def _one_line(text: str, limit: int) -> str:
    flat = text.replace("\r", "\\r").replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[:limit] + "…"


def unexpected_error_response(scope: Scope, exc: BaseException) -> Response:
    """The answer to an exception no handler took, logged as one line.

    A RecursionError comes from a library walking input nested deeper than Python's stack allows
    (JSON, PDF objects, ASN.1, XML): the caller's input is at fault, so it is a 400 in the API's
    error shape, logged as a warning."""
    path = str(scope.get("path", ""))
    method = str(scope.get("method", ""))
    rid = scope.get("state", {}).get("request_id") or current_request_id()
    summary = _one_line(f"{type(exc).__name__}: {exc}", MAX_MESSAGE_CHARS)
    if isinstance(exc, RecursionError):
        log.warning("input nested too deeply: %s (request %s, %s %s)", summary, rid, method, path)
        status, code, message = 400, "invalid_request", "the input is nested too deeply to be processed"
    else:
        log.error("unexpected error %s at %s (request %s, %s %s)", summary, _where(exc), rid, method, path)
        status, code, message = 500, "internal_error", f"internal error; the service log names request {rid}"
    if log.isEnabledFor(logging.DEBUG):
        log.debug("traceback of request %s:\n%s", rid, _traceback(exc))
    return error_response(path, status, code, message, headers={HEADER: rid})


def _where(exc: BaseException, frames: int = 4) -> str:
    """The innermost frames of ``exc`` as ``file:line function``, innermost first: where an
    unexpected error happened, in the one line (the whole traceback only at debug level)."""
    found = traceback.extract_tb(exc.__traceback__, limit=-frames) if exc.__traceback__ else []
    parts = []
    for frame in reversed(found):
        name = frame.filename.replace("\\", "/")
        if "/site-packages/" in name:
            name = name.rsplit("/site-packages/", 1)[1]
        elif "/remotesign/" in name:
            name = "remotesign/" + name.rsplit("/remotesign/", 1)[1]
        else:
            name = "/".join(name.split("/")[-2:])
        parts.append(f"{name}:{frame.lineno} {frame.name}")
    return _one_line(" < ".join(parts) or "?", MAX_MESSAGE_CHARS)


def _traceback(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-40))
    return text if len(text) <= MAX_TRACEBACK_CHARS else "…" + text[-MAX_TRACEBACK_CHARS:]


class RequestContext:
    """Pure ASGI middleware, outermost: assigns the request id, echoes it, answers what escaped."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        configure_logging()  # built at the first ASGI event, after the server configured its loggers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = rid
        token = _current.set(rid)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER_KEY]
                message = {**message, "headers": [*with_baseline(headers), (_HEADER_KEY, rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - the last line of defence answers everything
            if started:
                log.error("error after the response started: %s (request %s, %s %s)",
                          _one_line(f"{type(exc).__name__}: {exc}", MAX_MESSAGE_CHARS), rid,
                          scope.get("method"), scope.get("path"))
                return
            await unexpected_error_response(scope, exc)(scope, receive, send_with_id)
        finally:
            _current.reset(token)


class _RequestIdFilter(logging.Filter):
    """Stamps ``request_id`` on every record the service's handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


MAX_ACCESS_PATH_CHARS = 200  # of the path and query in an access-log line


class _AccessLogRequestId(logging.Filter):
    """Uvicorn's access formatter reads its fields from the record's args: name the request id
    next to the client address, and cut the path (an OCSP GET or a hostile URL can be 16 KB) so
    that one request writes one short line."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            rid = current_request_id()
            client = f"{args[0]} [{rid}]" if rid != "-" else args[0]
            path = str(args[2])
            if len(path) > MAX_ACCESS_PATH_CHARS:
                path = f"{path[:MAX_ACCESS_PATH_CHARS]}…({len(path)} chars)"
            record.args = (client, args[1], path, *args[3:])
        return True


class CompactFormatter(logging.Formatter):
    """One line per record, request id included; an attached exception becomes ``| Type: message``
    (the whole traceback, cut to a bound, only when debug logging is on)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        copy = logging.makeLogRecord(record.__dict__)
        exc_info, copy.exc_info, copy.exc_text = copy.exc_info, None, None
        copy.msg, copy.args = _one_line(copy.getMessage(), MAX_LINE_CHARS), None
        if not hasattr(copy, "request_id"):
            copy.request_id = current_request_id()
        line = super().format(copy)
        if exc_info and exc_info[1] is not None:
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                return f"{line}\n{_traceback(exc_info[1])}"
            line += " | " + _one_line(f"{type(exc_info[1]).__name__}: {exc_info[1]}", MAX_MESSAGE_CHARS)
        return line


_configured = False


def configure_logging() -> None:
    """The service's log handler on the root logger (unless the embedding program set its own):
    warnings and errors of the service and its libraries, one line each, with the request id;
    debug level (and tracebacks) when the server runs with ``--log-level debug``."""
    global _configured
    if _configured:
        return
    _configured = True
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(CompactFormatter())
        handler.addFilter(_RequestIdFilter())
        root.addHandler(handler)
        debug = logging.getLogger("uvicorn.error").isEnabledFor(logging.DEBUG)
        root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("uvicorn.access").addFilter(_AccessLogRequestId())


def install(app: Any) -> None:
    """Add the middleware as the outermost one (call after every other ``add_middleware``)."""
    app.add_middleware(RequestContext)
