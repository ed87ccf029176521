"""``auth/login`` and ``auth/revoke``: a user's own password login for a CSC access token
(``scope=service``), offered only where the operator enables it (``REMOTESIGN_CSC_BASIC_LOGIN``):
OAuth2 (``oauth2/authorize``) keeps the password away from the application, this does not.

The token goes to the relying party the user belongs to; a user name two relying parties use,
and service-wide users, cannot log in this way."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from remotesign.api.csc import wire
from remotesign.api.csc.answers import CscLogin
from remotesign.api.csc.calls import AUTH_SERVER, Caller, handle, no_store
from remotesign.api.errors import OAuthError
from remotesign.api.openapi_doc import json_body_schema
from remotesign.api.same_origin import client_address
from remotesign.core.scopes import IDENTITY_PROFILE
from remotesign.core.throttle import Throttled
from remotesign.core.users import LoginFailed, UserError
from remotesign.service import Services

router = APIRouter(tags=["csc"])

_CHALLENGE = {"WWW-Authenticate": 'Basic realm="csc"'}


def _basic(request: Request) -> tuple[str, str]:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError(401, "invalid_request", "HTTP Basic authentication with the user's name and password "
                         "is required", _CHALLENGE)
    try:
        username, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        username, sep, password = "", "", ""
    if not sep or not username or len(username) > 200 or len(password) > 500:
        raise OAuthError(401, "invalid_request", "malformed Basic credentials", _CHALLENGE)
    return username, password


def _login(svc: Services, request: Request) -> Response:
    if not svc.settings.csc_basic_login:
        raise OAuthError(404, "invalid_request", "auth/login is not offered by this service; use oauth2/authorize")
    username, password = _basic(request)
    address = client_address(request)
    sources = [f"address:{address}"] if address else []
    svc.throttle.check(sources)
    failed = OAuthError(400, "authentication_error", "An error occurred during the authentication", _CHALLENGE)
    try:
        user = svc.users.find(username)
        if user.tenant_id is None:
            raise LoginFailed("service_wide_user")
        user = svc.users.authenticate(username, password, user.tenant_id)
    except (LoginFailed, UserError):
        svc.throttle.failed(sources)
        raise failed from None
    client = svc.tenants.by_client_id_or_id(user.tenant_id or "")
    if not client.enabled or not client.allows_address(address):
        raise failed
    issued = svc.tenants.issue_user_token(client.id, AUTH_SERVER, IDENTITY_PROFILE, user_id=user.id,
                                          ttl=svc.settings.token_ttl_seconds, grant="csc:auth/login")
    return no_store({"access_token": issued.access_token, "expires_in": issued.expires_in})


@router.post("/csc/{version}/auth/login", summary="CSC auth/login: the user's HTTP Basic login (where enabled)",
             openapi_extra=json_body_schema({"rememberMe": "boolean", "clientData": "string"}),
             responses={200: {"model": CscLogin, "description": "A service-scope access token"}})
async def login(version: str, request: Request) -> Response:
    svc: Services = request.app.state.services
    wire.check_version(version)
    await wire.body(request)
    try:
        return await run_in_threadpool(_login, svc, request)
    except Throttled as exc:
        raise OAuthError(429, "too_many_attempts", exc.message, {"Retry-After": str(exc.retry_after)}) from exc


@router.post("/csc/{version}/auth/revoke", status_code=204, summary="CSC auth/revoke: revoke an access token",
             openapi_extra=json_body_schema({"token": "string", "token_type_hint": "string", "clientData": "string"}))
async def revoke(version: str, request: Request) -> Response:
    from remotesign.api.deps import bearer_token

    own = bearer_token(request) or ""

    def work(svc: Services, who: Caller, data: dict[str, Any]) -> Response:
        token = wire.text(data, "token", required=False, max_length=512) or own
        svc.tenants.revoke(token, who.token.tenant_id, user_id=who.token.user_id, actor=who.token.user_id or "")
        return Response(status_code=204, headers={"Cache-Control": "no-store"})

    return await handle(request, version, work)
