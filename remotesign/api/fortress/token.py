"""``POST {fortress}/oauth2/v1/token``: the client-credentials token, and the exchange of a user
authorization's ``code`` (``grant_type=authorization_code``, or just ``code``; see authorize.py)
for a token of that user's profile. Fortress clients send the
parameters in the query string (``scope=client&client_id=…&client_secret=…&grant_type=…``),
some in a form body; both are read, as is HTTP Basic. The wire scope ``client`` is the
service's :data:`~remotesign.core.scopes.SIGNATURES`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from remotesign.api.deps import services
from remotesign.api.errors import OAuthError
from remotesign.api.oauth import authenticate_client, exchange_code, token_params
from remotesign.api.oauth_answers import AccessToken
from remotesign.api.openapi_doc import form_body, text
from remotesign.core import scopes
from remotesign.core.tenants import InvalidScope
from remotesign.service import Services

router = APIRouter(tags=["fortress"])

AUTH_SERVER = "fortress"
WIRE_SCOPES = {"client": scopes.SIGNATURES}


@router.post("/oauth2/v1/token", summary="Client token (client_credentials; parameters in the query or the form)",
             openapi_extra=form_body({"grant_type": text("grant", enum=["client_credentials", "authorization_code"]),
                                      "code": text("authorization_code: the code of the redirect"),
                                      "scope": text("client"), "client_id": text("unless HTTP Basic"),
                                      "client_secret": text("unless HTTP Basic"),
                                      "redirect_uri": text("accepted and ignored")}, ("grant_type",)),
             responses={200: {"model": AccessToken, "description": "The access token"}})
async def token(request: Request, svc: Services = Depends(services)) -> JSONResponse:
    params = await token_params(request)
    # The client secret check (scrypt) and the database work run in the thread pool, not on the loop.
    return await run_in_threadpool(_token, svc, request, params)


def _token(svc: Services, request: Request, params: dict[str, str]) -> JSONResponse:
    grant = params.get("grant_type") or ("authorization_code" if params.get("code") else "client_credentials")
    tenant = authenticate_client(svc, request, params)
    if grant == "authorization_code":
        issued = exchange_code(svc, tenant, AUTH_SERVER, params)
        return _issued(issued.access_token, issued.expires_in)
    if grant != "client_credentials":
        raise OAuthError(400, "unsupported_grant_type", f"grant_type {grant[:100]!r} is not supported here")
    wire = (params.get("scope") or "client").split()
    unknown = [s for s in wire if s not in WIRE_SCOPES]
    if unknown:
        raise OAuthError(400, "invalid_scope", f"unknown scope {' '.join(unknown)[:100]!r} (use 'client')")
    try:
        issued = svc.tenants.issue_token(tenant, AUTH_SERVER, " ".join(WIRE_SCOPES[s] for s in wire))
    except InvalidScope as exc:
        raise OAuthError(400, "invalid_scope", f"this client may not use the Fortress-style API ({exc})") from exc
    return _issued(issued.access_token, issued.expires_in)


def _issued(access_token: str, expires_in: int) -> JSONResponse:
    return JSONResponse({"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in},
                        headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
