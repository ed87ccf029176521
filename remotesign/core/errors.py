"""The one error shape of the domain services: a stable code for clients, a human message, and the
HTTP status the facades answer with (each facade renders it in its own API's error format)."""

from __future__ import annotations


class CoreError(ValueError):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
