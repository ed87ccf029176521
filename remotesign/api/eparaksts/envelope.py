"""The SignAPI ``{"data": ..., "error": {"code", "message"}}`` envelope, and per-session errors."""

from __future__ import annotations

from typing import Any

from fastapi import Depends

from remotesign.api.deps import require_scope
from remotesign.core import scopes
from remotesign.core.sessions import SessionError

Caller = Depends(require_scope(scopes.INTROSPECT))


def ok(data: Any) -> dict[str, Any]:
    return {"data": data}


def error_entry(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


class EnvelopeError(Exception):
    """Whole-request failure rendered as ``{"data": null, "error": {...}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def from_session(cls, exc: SessionError) -> "EnvelopeError":
        return cls(exc.status, exc.code, exc.message)
