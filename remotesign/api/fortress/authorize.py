"""``GET {fortress}/oauth2/v1/auth``: the user's authorization, on the service's own login and
consent pages (api/consent_pages.py), then back to the client's ``redirect_uri`` with ``code`` and
``state``, or ``error=access_denied`` when the user cancels.

Two uses, as the vendor's SDK has them:

* A signature request's authorization URI (``getSignatureAuthorizationUri(authCode, callbackUrl)``):
  ``?response_type=code&client_id=…&auth_code={authCode}&redirect_uri={callbackUrl}&state=…``
  (``authCode`` is accepted too). The user signs in (only the request's user may), sees the
  documents and approves with the signing PIN; the request is then authorized for exactly those
  documents and the client executes it. The ``code`` of the redirect identifies the user only.
* A plain authorization (``scope=profile|certificate|certificates&user_code=…``): the password,
  then the PIN or a one-time code (two factors, as the vendor's), then a code the client
  exchanges at ``POST {fortress}/oauth2/v1/token`` (``grant_type=authorization_code``, ``code``,
  client credentials) for a token of the user's profile.

``redirect_uri`` is one the client registered, or a URL of the same origin as one of them (the
SDK sends a per-request callback path). The vendor's clients send no PKCE; the code is redeemed
only with the client's secret.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from remotesign.api.consent_pages import login_page, query_params, run_page
from remotesign.api.deps import services
from remotesign.api.fortress.token import AUTH_SERVER
from remotesign.core.consent import ConsentError
from remotesign.core.scopes import IDENTITY_PROFILE
from remotesign.core.tenants import TenantInfo
from remotesign.service import Services

router = APIRouter(tags=["fortress"])

WIRE_SCOPES = {"profile": IDENTITY_PROFILE, "certificate": IDENTITY_PROFILE, "certificates": IDENTITY_PROFILE}
PASSED = ("response_type", "client_id", "redirect_uri", "state")


def _origin(uri: str) -> tuple[str, str | None, int | None] | None:
    try:
        parts = urlsplit(uri)
        return parts.scheme, parts.hostname, parts.port
    except ValueError:
        return None


def extra_redirect(client: TenantInfo, redirect_uri: str | None) -> str | None:
    """``redirect_uri`` when it has the origin of one of the client's registered redirect URIs."""
    if not redirect_uri or len(redirect_uri) > 2000 or "#" in redirect_uri:
        return None
    origin = _origin(redirect_uri)
    if origin is None or origin[0] not in ("http", "https") or not origin[1]:
        return None
    return redirect_uri if any(_origin(u) == origin for u in client.redirect_uris) else None


@router.get("/oauth2/v1/auth", summary="User authorization: login and consent pages, then redirect_uri",
            response_class=HTMLResponse)
async def auth(request: Request, svc: Services = Depends(services)) -> Response:
    def handle() -> Response:
        query = query_params(request)
        params = {k: v for k, v in query.items() if k in PASSED}
        client_id = params.get("client_id") or ""
        client = svc.tenants.by_client_id(client_id) if 0 < len(client_id) <= 200 else None
        if client is None or not client.enabled:
            raise ConsentError("invalid_client", "unknown or disabled client_id")
        extra = extra_redirect(client, params.get("redirect_uri"))
        auth_code = query.get("auth_code") or query.get("authCode")
        if auth_code:
            info = svc.signature_requests.by_auth_code(client.id, auth_code)
            user = svc.users.get(info.user_id, client.id)
            user_code = query.get("user_code")
            if user_code and user_code != user.username:
                raise ConsentError("invalid_request", "user_code is not the user of this signature request")
            params |= svc.signature_requests.consent_parameters(info)
            return login_page(svc, request, AUTH_SERVER, params, login_hint=user.username,
                              signature_request_id=info.id, extra_redirect_uri=extra, pkce_optional=True,
                              factors="pin+otp" if info.multifactor else "pin-or-otp")
        wire = (query.get("scope") or "profile").split()
        unknown = [s for s in wire if s not in WIRE_SCOPES]
        if unknown:
            raise ConsentError("invalid_scope", f"unknown scope {unknown[0][:40]!r} (use profile, certificate or "
                               "certificates)", redirect_to=extra or (params.get("redirect_uri")
                                                                      if params.get("redirect_uri") in
                                                                      client.redirect_uris else None),
                               state=params.get("state"))
        params["scope"] = " ".join(dict.fromkeys(WIRE_SCOPES[s] for s in wire))
        return login_page(svc, request, AUTH_SERVER, params, login_hint=query.get("user_code") or None,
                          extra_redirect_uri=extra, pkce_optional=True, factors="pin-or-otp")

    return await run_page(handle)
