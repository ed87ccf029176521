"""The identity provider's logout (eParaksts ``GET /trustedx-authserver/{idp}/logout?redirect_uri=``).

Integrators call it to end a sign-in before starting another one (TrustedX ignores
``prompt=login``; going through logout is the documented workaround). The service keeps no
single-sign-on session: what a browser holds are the cookies of its open sign-in pages, and logout
expires them all. It then redirects to ``redirect_uri`` only when that is exactly a redirect URI a
client registered or an address of this service (an open redirect would let anyone bounce users
through the service's domain); any other target gets the signed-out page.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from remotesign.api import html_pages
from remotesign.api.consent_pages import COOKIE, COOKIE_PATH, page_context, security_headers
from remotesign.api.deps import services
from remotesign.service import Services

router = APIRouter(prefix="/trustedx-authserver", tags=["oauth2 pages"])


def _idp_names(svc: Services) -> set[str]:
    """``lvrtc-eipsign-as`` has the identity provider ``lvrtc-eipsign-idp``; the AS names work too."""
    names = set(svc.settings.auth_servers)
    return names | {n[:-3] + "-idp" for n in names if n.endswith("-as")}


def _same_service(uri: str, base_url: str) -> bool:
    try:
        target, own = urlsplit(uri), urlsplit(base_url)
    except ValueError:
        return False
    return (target.scheme, target.netloc) == (own.scheme, own.netloc) and target.path.startswith("/")


@router.get("/{idp}/logout", summary="End the sign-in pages of this browser, then go to redirect_uri",
            response_class=HTMLResponse)
async def logout(idp: str, request: Request, redirect_uri: str | None = Query(default=None, max_length=2000),
                 svc: Services = Depends(services)) -> Response:
    ctx = page_context(svc, request)
    if idp not in _idp_names(svc):
        return HTMLResponse(html_pages.error_page(ctx.text("no_idp", name=repr(idp[:100])), title=ctx.text("not_found"),
                                                  ctx=ctx), 404, headers=security_headers())
    allowed = bool(redirect_uri) and (
        _same_service(redirect_uri or "", svc.base_url)
        or await run_in_threadpool(svc.tenants.is_registered_redirect, redirect_uri or ""))
    response: Response
    if allowed:
        response = RedirectResponse(redirect_uri or "", status_code=303, headers=security_headers())
    else:
        response = HTMLResponse(html_pages.signed_out_page(None, ctx), 200, headers=security_headers())
    for name in request.cookies:
        if name.startswith(COOKIE + "_"):
            response.delete_cookie(name, path=COOKIE_PATH)
    return response
