"""OAuth2 authorization server facade (TrustedX-style paths): the token endpoint (client credentials,
and the authorization codes of the login and consent pages in consent_pages.py) and RFC 7662
introspection. Parameters are read from the form body and, as some eParaksts samples send them,
from the query string. Clients authenticate with HTTP Basic (RFC 6749 §2.3.1, form-urlencoded
id and secret) or, as a fallback, with client_id/client_secret parameters."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from remotesign.api.errors import OAuthError
from remotesign.api.oauth_answers import Introspection, ScopedAccessToken
from remotesign.api.openapi_doc import form_body, text
from remotesign.api.deps import services
from remotesign.core.consent import GrantError
from remotesign.core.tenants import InvalidClient, InvalidScope, IssuedToken, TenantInfo
from remotesign.service import Services

router = APIRouter(prefix="/trustedx-authserver/oauth", tags=["oauth2"])

_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="remotesign"'}


async def token_params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        try:
            form = await request.form()
        except Exception as exc:  # noqa: BLE001 - malformed bodies are the client's error
            raise OAuthError(400, "invalid_request", f"unreadable form body: {type(exc).__name__}") from exc
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    elif ctype and (await request.body()):
        raise OAuthError(400, "invalid_request", "parameters must be sent as application/x-www-form-urlencoded")
    return params


def _client_credentials(request: Request, params: dict[str, str]) -> list[tuple[str, str]]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise OAuthError(401, "invalid_client", "malformed Basic credentials", _BASIC_CHALLENGE) from exc
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise OAuthError(401, "invalid_client", "malformed Basic credentials", _BASIC_CHALLENGE)
        # RFC 6749 §2.3.1 form-encodes both parts (the PHP client does); the Go client sends them raw.
        decoded_pair = (unquote_plus(client_id), unquote_plus(secret))
        return [decoded_pair] + ([(client_id, secret)] if (client_id, secret) != decoded_pair else [])
    if params.get("client_id") and params.get("client_secret"):
        return [(params["client_id"], params["client_secret"])]
    raise OAuthError(401, "invalid_client", "client authentication is required (HTTP Basic)", _BASIC_CHALLENGE)


def authenticate_client(svc: Services, request: Request, params: dict[str, str]) -> TenantInfo:
    failure: InvalidClient | None = None
    for client_id, secret in _client_credentials(request, params):
        if len(client_id) > 200 or len(secret) > 500:
            raise OAuthError(401, "invalid_client", "client authentication failed", _BASIC_CHALLENGE)
        try:
            return svc.tenants.authenticate(client_id, secret)
        except InvalidClient as exc:
            failure = exc
    raise OAuthError(401, "invalid_client", str(failure), _BASIC_CHALLENGE) from failure


def _check_server(svc: Services, auth_server: str) -> None:
    if auth_server not in svc.settings.auth_servers:
        raise OAuthError(404, "invalid_request", f"no authorization server named {auth_server!r}")


@router.post("/{auth_server}/token", summary="Token endpoint (client_credentials, authorization_code)",
             openapi_extra=form_body({"grant_type": text("grant", enum=["client_credentials", "authorization_code"]),
                                      "scope": text("space-separated scopes"), "code": text("authorization code"),
                                      "redirect_uri": text("as in the authorization request"),
                                      "code_verifier": text("PKCE verifier"),
                                      "client_id": text("unless HTTP Basic"), "client_secret": text("unless HTTP Basic")},
                                     ("grant_type",)),
             responses={200: {"model": ScopedAccessToken, "description": "The access token"}})
async def token(auth_server: str, request: Request, svc: Services = Depends(services)) -> JSONResponse:
    _check_server(svc, auth_server)
    params = await token_params(request)
    # The client secret check (scrypt) and the database work run in the thread pool, not on the loop.
    return await run_in_threadpool(_token, svc, auth_server, request, params)


def exchange_code(svc: Services, tenant: TenantInfo, auth_server: str, params: dict[str, str]) -> IssuedToken:
    """The authorization-code grant (RFC 6749 §4.1.3) for an authenticated client."""
    try:
        return svc.consent.exchange(tenant, auth_server, params.get("code") or "", params.get("redirect_uri"),
                                    params.get("code_verifier"))
    except GrantError as exc:
        raise OAuthError(400, exc.code, exc.message) from exc


def _token(svc: Services, auth_server: str, request: Request, params: dict[str, str]) -> JSONResponse:
    grant = params.get("grant_type")
    if not grant:
        raise OAuthError(400, "invalid_request", "grant_type is required")
    tenant = authenticate_client(svc, request, params)
    if grant == "authorization_code":
        issued = exchange_code(svc, tenant, auth_server, params)
    elif grant == "client_credentials":
        scope = params.get("scope")
        if scope is not None and len(scope) > 2000:
            raise OAuthError(400, "invalid_scope", "scope too long")
        try:
            issued = svc.tenants.issue_token(tenant, auth_server, scope)
        except InvalidScope as exc:
            raise OAuthError(400, "invalid_scope", str(exc)) from exc
    else:
        raise OAuthError(400, "unsupported_grant_type", f"grant_type {grant[:100]!r} is not supported for this client")
    return JSONResponse(
        {"access_token": issued.access_token, "token_type": "Bearer", "expires_in": issued.expires_in,
         "scope": issued.scope},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.post("/{auth_server}/introspect", summary="Token introspection (RFC 7662)",
             openapi_extra=form_body({"token": text("the token"), "token_type_hint": text("access_token")}, ("token",)),
             responses={200: {"model": Introspection, "description": "Whether the token is active, and its facts"}})
async def introspect(auth_server: str, request: Request, svc: Services = Depends(services)) -> JSONResponse:
    """Only the client a token was issued to learns anything about it; for anyone else it is inactive."""
    _check_server(svc, auth_server)
    params = await token_params(request)
    return await run_in_threadpool(_introspect, svc, auth_server, request, params)


def _introspect(svc: Services, auth_server: str, request: Request, params: dict[str, str]) -> JSONResponse:
    caller = authenticate_client(svc, request, params)
    token_value = params.get("token")
    if not token_value:
        raise OAuthError(400, "invalid_request", "token is required")
    info = svc.tenants.resolve(token_value)
    if info is None or info.tenant_id != caller.id or info.auth_server != auth_server:
        return JSONResponse({"active": False}, headers={"Cache-Control": "no-store"})
    body = {
        "active": True, "scope": " ".join(sorted(info.scopes)), "client_id": info.client_id,
        "token_type": "Bearer", "exp": int(info.expires_at.timestamp()), "iat": int(info.issued_at.timestamp()),
        "sub": info.user_id or info.client_id, "iss": f"{svc.base_url}/trustedx-authserver/oauth/{auth_server}",
    }
    if info.sign_identity_id:
        body["sign_identity_id"] = info.sign_identity_id
    if info.digests_summary:
        body["digests_summary"] = info.digests_summary
        body["digests_summary_algorithm"] = info.digests_summary_algorithm
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
