"""One JSON error format for the service's own endpoints, and the hooks that keep every failure a
clear 4xx in that format (OAuth and TrustedX eSigP endpoints answer in RFC 6749 style, OCSP and TSA in their own
protocol). Documented in the README:

    {"error": {"code": "not_found", "message": "no key 1234"}}
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("remotesign.api")
ModelT = TypeVar("ModelT", bound=BaseModel)

_STATUS_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
                 415: "unsupported_media_type", 422: "invalid_request", 429: "too_many_requests"}


class ApiError(Exception):
    """Raised by route code; rendered as ``{"error": {"code", "message"}}`` with ``status``.
    ``extra`` members (e.g. ``remaining`` tries of a PIN) go next to the code and message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra


class OAuthError(Exception):
    """RFC 6749 §5.2 error: ``{"error": code, "error_description": message}``."""

    def __init__(self, status: int, code: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description
        self.headers = headers


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


OAUTH_STYLE_PREFIXES = ("/trustedx-authserver/", "/trustedx-resources/", "/fortress/", "/csc/",
                        "/.well-known/oauth-authorization-server/")


def _is_oauth_path(path: str) -> bool:
    """TrustedX paths (authorization server and eSigP resources) and the Fortress-style API answer
    ``{"error", "error_description"}``."""
    return path.startswith(OAUTH_STYLE_PREFIXES)


def _is_signapi_path(path: str) -> bool:
    from remotesign.api.eparaksts import PATH_PREFIXES

    return path.startswith(PATH_PREFIXES)


def parse_body(model: type[ModelT], raw: bytes) -> ModelT:
    """``raw`` JSON validated as ``model``, for routes that parse their body off the event loop;
    a bad body raises RequestValidationError, answered like FastAPI's own body errors."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]) from None


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def error_content(path: str, code: str, message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The error body in the shape of the API that owns ``path``; ASGI middlewares that answer
    before routing (size and nesting limits, unexpected errors) use it too, so every layer agrees."""
    if _is_oauth_path(path):
        return {"error": code, "error_description": message, **(extra or {})}
    body = error_body(code, message)
    body["error"].update(extra or {})
    if _is_signapi_path(path):
        return {"data": None, **body}
    return body


ProtocolErrorRenderer = Callable[[int, str], Response]
_PROTOCOL_ERRORS: dict[str, ProtocolErrorRenderer] = {}


def register_protocol_errors(path: str, renderer: ProtocolErrorRenderer) -> None:
    """``path`` (and everything under ``path/``) speaks a binary protocol (OCSP, TSA): every error
    there, from any layer, is answered by ``renderer(status, message)`` in that protocol, not JSON."""
    _PROTOCOL_ERRORS[path] = renderer


_PAGE_STEPS = ("login", "consent", "wait")


def is_html_page(path: str) -> bool:
    """The pages people see in a browser: the authorization endpoints (TrustedX-style and
    Fortress-style), the login, consent and waiting pages, the identity provider's logout page,
    and the account pages."""
    parts = path.split("/")
    if path.startswith("/trustedx-authserver/oauth/"):
        return len(parts) == 4 or (len(parts) == 5 and parts[4] in _PAGE_STEPS)
    if path.startswith("/trustedx-authserver/") and len(parts) == 4 and parts[3] == "logout":
        return True
    if path == "/console" or path.startswith("/console/"):  # the operator console
        return True
    return path.startswith("/account/") or path in ("/fortress/oauth2/v1/auth", "/csc/v1/oauth2/authorize",
                                                    "/csc/v2/oauth2/authorize", "/validate")


def _html_error(status: int, message: str, headers: dict[str, str] | None) -> Response:
    from remotesign.api.consent_pages import security_headers
    from remotesign.api.html_pages import error_page

    return HTMLResponse(error_page(message), status_code=status, headers={**security_headers(), **(headers or {})})


def error_response(path: str, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   extra: dict[str, Any] | None = None) -> Response:
    """The error answer for ``path``: its protocol's, an HTML page for a browser page, or JSON in
    its API's shape."""
    for prefix, renderer in _PROTOCOL_ERRORS.items():
        if path == prefix or path.startswith(prefix + "/"):
            response = renderer(status, message)
            response.headers.update(headers or {})
            return response
    if is_html_page(path):
        return _html_error(status, message, headers)
    return JSONResponse(error_content(path, code, message, extra), status_code=status, headers=headers)


def render(request: Request, status: int, code: str, message: str,
           headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> Response:
    return error_response(request.url.path, status, code, message, headers, extra)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return render(request, exc.status, exc.code, exc.message, exc.headers, exc.extra)

    from remotesign.api.eparaksts.envelope import EnvelopeError

    @app.exception_handler(EnvelopeError)
    async def _envelope_error(request: Request, exc: EnvelopeError) -> Response:
        return render(request, exc.status, exc.code, exc.message)

    @app.exception_handler(OAuthError)
    async def _oauth_error(_request: Request, exc: OAuthError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "error_description": exc.description}, status_code=exc.status,
                            headers={"Cache-Control": "no-store", **(exc.headers or {})})

    from starlette.responses import Response as _Response

    from remotesign.storage.faults import StorageUnavailable

    @app.exception_handler(StorageUnavailable)
    async def _storage_unavailable(request: Request, exc: StorageUnavailable) -> _Response:
        # A condition of the installation (disk full, read-only volume, database down), not of the
        # request: a stable code the client can retry on, one log line without a traceback.
        log.error("storage unavailable on %s %s: %s", request.method, request.url.path, exc)
        return render(request, 503, "storage_unavailable", exc.message, {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return render(request, 400, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        return render(request, exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Only reached for errors outside RequestContext (which answers the rest itself): one line.
        from remotesign.api.request_context import unexpected_error_response

        return unexpected_error_response(request.scope, exc)
