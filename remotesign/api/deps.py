"""Request dependencies: the services object and the authenticated relying party.

Tenant-scoped routes take a ``Caller``; every core lookup they make passes ``caller.tenant_id``,
so another tenant's objects are simply not found (404), never forbidden-but-visible.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request

from remotesign.api.errors import ApiError
from remotesign.core.tenants import TokenInfo
from remotesign.service import Services


async def services(request: Request) -> Services:
    """The process's services; ``async`` because FastAPI runs a plain ``def`` dependency in the
    thread pool, a thread hop on every request for an attribute read."""
    return request.app.state.services  # type: ignore[no-any-return]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticated(request: Request, svc: Services = Depends(services)) -> TokenInfo:
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "unauthorized", "a Bearer access token is required",
                       {"WWW-Authenticate": 'Bearer realm="remotesign"'})
    info = svc.tenants.resolve(token)
    if info is None:
        raise ApiError(401, "invalid_token", "the access token is unknown, expired or revoked",
                       {"WWW-Authenticate": 'Bearer realm="remotesign", error="invalid_token"'})
    return info


class ScopeCheck:
    """The dependency ``require_scope`` gives: a callable object rather than a closure, so that the
    description (openapi_security.py) can read which scope a route needs from its dependencies."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(self, caller: TokenInfo = Depends(authenticated)) -> TokenInfo:
        # async: a set look-up needs no worker thread (FastAPI runs a plain def dependency in one,
        # a hop per authenticated request)
        if self.scope not in caller.scopes:
            raise ApiError(403, "insufficient_scope", f"this operation needs scope {self.scope}",
                           {"WWW-Authenticate": f'Bearer realm="remotesign", error="insufficient_scope", '
                                                f'scope="{self.scope}"'})
        return caller


def require_scope(scope: str) -> Callable[..., TokenInfo]:
    return ScopeCheck(scope)
