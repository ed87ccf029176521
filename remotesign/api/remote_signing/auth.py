"""``POST /clients/login`` and the bearer JWT every other call carries.

A relying party logs in with its client id as ``username``, its client secret as ``password`` and
its name as ``rpCode`` (the relying-party code; ``remotesign client create NAME``). The answer is a
JWT signed by the service's JWT key in the key store (ES256; claims: the client, its code, issue and
expiry). Each call checks the token's signature and expiry, that the client is still enabled,
that it calls from a network it may use (``remotesign client networks``), and that its scopes
allow the function.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from remotesign.api.openapi_doc import json_body
from remotesign.api.remote_signing.answers import Refusal, RsLoginAnswer, refused, transport_error
from remotesign.api.remote_signing.wire import RsLogin, read
from remotesign.api.same_origin import client_address
from remotesign.core.tenants import InvalidClient, TenantInfo
from remotesign.service import Services
from remotesign.trust.jwt_issuer import JwtError

router = APIRouter(tags=["remote-signing"])


@dataclass(frozen=True)
class Caller:
    tenant: TenantInfo
    address: str

    @property
    def actor(self) -> str:
        return self.tenant.client_id


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


@router.post("/clients/login", summary="Log in with the API user name and password; answers a JWT",
             openapi_extra=json_body(RsLogin),
             responses={200: {"model": RsLoginAnswer, "description": "The JWT"}})
async def login(request: Request) -> JSONResponse:
    svc = _services(request)
    try:
        body = await read(request, RsLogin)
    except Refusal as exc:
        return refused(exc)
    try:
        tenant = await run_in_threadpool(svc.tenants.authenticate, body.username, body.password)
    except InvalidClient:
        return transport_error(401, "Invalid username or password")
    if tenant.name != body.rpCode:
        return transport_error(401, "Invalid username or password")
    address = client_address(request)
    if not tenant.allows_address(address):
        return transport_error(403, f"calls from {address} are not allowed for this relying party", 1000)
    token = await run_in_threadpool(svc.client_jwt.issue, tenant.id,
                                    {"client_id": tenant.client_id, "rpCode": tenant.name},
                                    svc.settings.client_jwt_ttl_seconds)
    return JSONResponse({"token": token, "expiresIn": svc.settings.client_jwt_ttl_seconds},
                        headers={"Cache-Control": "no-store"})


def caller(request: Request, scope: str) -> Caller:
    """The relying party the bearer JWT names, allowed to call from here and to use ``scope``."""
    svc = _services(request)
    header = request.headers.get("authorization", "")
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise Refusal(1001, "Authorization header with a Bearer token is required")
    try:
        claims = svc.client_jwt.verify(token.strip())
    except JwtError as exc:
        raise Refusal(1029 if exc.reason == "expired" else 1001, str(exc)) from None
    tenant = svc.tenants.by_client_id(str(claims.get("client_id", "")))
    if tenant is None or not tenant.enabled or tenant.id != claims.get("sub"):
        raise Refusal(1001, "the token's relying party is unknown or disabled")
    address = client_address(request)
    if not tenant.allows_address(address):
        raise Refusal(1000, f"calls from {address} are not allowed for this relying party")
    if scope not in tenant.allowed_scopes:
        raise Refusal(1019, f"this relying party may not use this function (scope {scope})")
    return Caller(tenant, address)
