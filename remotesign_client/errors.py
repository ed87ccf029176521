"""Errors of the remotesign client: one base class, :class:`RemotesignError`, with a subclass per
kind of failure. Every error carries the HTTP status (``None`` when no answer came) and the API's
own error code, whichever of remotesign's three error shapes the answer used:

* the service's own endpoints (``/v1/...``): ``{"error": {"code": ..., "message": ...}}``
* the eParaksts-style SignAPI: ``{"data": null, "error": {"code", "message"}}``, or an error in
  one session's entry (``data.sessionDigests[i].error`` / ``data.results[i].error``)
* OAuth and TrustedX eSigP paths: ``{"error": "invalid_token", "error_description": ...}``
  (a SCAL2 refusal adds ``"reason"``)
"""

from __future__ import annotations

from typing import Any

import httpx


class RemotesignError(Exception):
    """Any failure of a call to remotesign.

    ``status``: the HTTP status (None: no answer, e.g. the connection failed); ``code``: the API's
    error code (``session_not_found``, ``invalid_token``, ...); ``message``: its text; ``reason``:
    the SCAL2 refusal reason of eSigP signing (``digests_mismatch``, ``replayed``, ...), else None;
    ``session_errors``: SignAPI per-session codes ``{session_id: code}``; ``body``: the decoded
    JSON answer, when there was one."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 reason: str | None = None, session_errors: dict[str, str] | None = None,
                 body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.reason = reason
        self.session_errors = session_errors or {}
        self.body = body

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no answer"
        what = f" {self.code}" if self.code else ""
        return f"{where}{what}: {self.message}"


class TransportError(RemotesignError):
    """No answer: the connection failed or timed out (``status`` is None)."""


class InvalidRequest(RemotesignError):
    """400 or 422: the service refused the request as malformed or not processable."""


class AuthenticationError(RemotesignError):
    """401: no token, a wrong, expired or revoked token, or wrong client credentials."""


class PermissionDenied(RemotesignError):
    """403: the token lacks a scope, or a signature was refused (SCAL2: see ``reason``)."""


class NotFound(RemotesignError):
    """404: no such object (also for another client's objects)."""


class Conflict(RemotesignError):
    """409: the object's state does not allow the call (already finalized, in progress, ...)."""


class Gone(RemotesignError):
    """410: the session was closed or has expired."""


class PayloadTooLarge(RemotesignError):
    """413: the file or the request body is over the service's limit."""


class RateLimited(RemotesignError):
    """429: too many attempts; ``retry_after`` seconds, when the service said."""

    retry_after: float | None = None


class ServerError(RemotesignError):
    """5xx: the service failed (503 ``storage_unavailable``: retry later; 502: its TSA failed)."""


_BY_STATUS: dict[int, type[RemotesignError]] = {
    400: InvalidRequest, 401: AuthenticationError, 403: PermissionDenied, 404: NotFound, 409: Conflict,
    410: Gone, 413: PayloadTooLarge, 422: InvalidRequest, 429: RateLimited,
}


def error_class(status: int) -> type[RemotesignError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    if status == 401:
        return AuthenticationError
    return InvalidRequest if 400 <= status < 500 else RemotesignError


def _session_errors(data: Any) -> dict[str, tuple[str, str]]:
    """SignAPI batch answers: {session id: (code, message)} of the entries that failed."""
    out: dict[str, tuple[str, str]] = {}
    if not isinstance(data, dict):
        return out
    for key in ("sessionDigests", "results"):
        for entry in data.get(key) or ():
            if isinstance(entry, dict) and isinstance(entry.get("error"), dict):
                err = entry["error"]
                out[str(entry.get("sessionId"))] = (str(err.get("code") or "error"), str(err.get("message") or ""))
    return out


def from_response(response: httpx.Response) -> RemotesignError:
    """The error an answer of status >= 400 stands for, whichever shape its body has."""
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    code: str | None = None
    message = ""
    reason: str | None = None
    sessions: dict[str, tuple[str, str]] = {}
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):  # the service's own shape, and the SignAPI envelope
            code, message = err.get("code"), str(err.get("message") or "")
        elif isinstance(err, str):  # OAuth / TrustedX
            code, message = err, str(body.get("error_description") or "")
            reason = body.get("reason") if isinstance(body.get("reason"), str) else None
        sessions = _session_errors(body.get("data"))
        if code is None and sessions:
            first = next(iter(sessions.values()))
            code, message = first
    if not message:
        message = (response.text[:300].strip() if body is None else "") or response.reason_phrase or "error"
    if sessions and len(sessions) > 1:
        message = "; ".join(f"{sid}: {c} {m}".strip() for sid, (c, m) in sessions.items())
    cls = error_class(status)
    exc = cls(message, status=status, code=code, reason=reason,
              session_errors={sid: c for sid, (c, _) in sessions.items()}, body=body)
    if isinstance(exc, RateLimited):
        try:
            exc.retry_after = float(response.headers.get("retry-after", ""))
        except ValueError:
            exc.retry_after = None
    return exc


__all__ = ["AuthenticationError", "Conflict", "Gone", "InvalidRequest", "NotFound", "PayloadTooLarge",
           "PermissionDenied", "RateLimited", "RemotesignError", "ServerError", "TransportError", "error_class",
           "from_response"]
