"""The one error shape of the domain services: a stable code for clients, a human message, and the
HTTP status the facades answer with (each facade renders it in its own API's error format).

``reason`` names the message itself (the code alone can cover several: ``otp_limit`` is "wait a
minute" or "too many codes"), and ``values`` fills its fields, so the end user's pages can say it
in the user's language; it defaults to the code."""

from __future__ import annotations

from collections.abc import Mapping


class CoreError(ValueError):
    def __init__(self, code: str, message: str, status: int = 400, *, reason: str | None = None,
                 values: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.reason = reason or code
        self.values = dict(values or {})
