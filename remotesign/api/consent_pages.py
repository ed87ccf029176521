"""The end user's side of the OAuth2 authorization-code flow: the authorization endpoint with its
login and consent pages (plain HTML forms, no JavaScript), the page that waits for an approval on
the user's device, and the demo client's redirect URI.

Form contract (tests/consent.py drives it exactly like a browser without scripts):
- ``GET  /trustedx-authserver/oauth/{as}?...`` -> login page, cookie ``rs_authz_<hash of request id>`` binding the
  request to this browser, hidden ``request_id``, fields ``username`` / ``password``,
  ``action=login|cancel`` posted to ``{as}/login``.
- ``POST {as}/login`` -> consent page: hidden ``request_id``, optional radio ``sign_identity_id``,
  ``pin`` when a server signature is authorized, ``action=approve|device|cancel`` to ``{as}/consent``.
- ``POST {as}/consent`` -> 303 to the redirect URI with ``code`` and ``state`` (or an error), or
  the waiting page that refreshes ``{as}/wait?request_id=...`` until the device answers.

Errors about the client or the redirect URI, a missing or foreign cookie and expired pages are
shown here (status 400), never redirected; everything else goes back to the client's redirect URI
as RFC 6749 §4.1.2.1 says.
"""

from __future__ import annotations

import hashlib

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from remotesign.api import html_pages
from remotesign.api.branding import branding
from remotesign.api.deps import services
from remotesign.api.html_pages import PageContext
from remotesign.api.page_text import LOCALE_COOKIE, PageText, choose_locale
from remotesign.core.consent import ConsentError, PendingConsent
from remotesign.core.errors import CoreError
from remotesign.core.identities import IdentityError, PinRefused
from remotesign.core.one_time_passwords import OtpError
from remotesign.api.same_origin import client_address, same_origin
from remotesign.api.openapi_doc import form_body, text
from remotesign.core.processes import ProcessError
from remotesign.core.tenants import TenantError
from remotesign.core.throttle import Throttled
from remotesign.core.users import LoginFailed, UserError
from remotesign.service import Services

log = logging.getLogger("remotesign.api")

COOKIE = "rs_authz"
COOKIE_PATH = "/trustedx-authserver/"
AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
                    "code_challenge_method", "sign_identity_id", "digests_summary", "digests_summary_algorithm",
                    "digests_algorithms")
IGNORED_PARAMS = ("prompt", "acr_values", "ui_locales")
MAX_FORM_BYTES = 64 * 1024
MAX_FIELD_CHARS = 4096
_HOST = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])$")

pages = APIRouter(prefix="/trustedx-authserver/oauth", tags=["oauth2 pages"])
demo = APIRouter(tags=["demo"])


class BadInput(Exception):
    """A malformed request to a page: answered with the error page, status 400."""


# -- responses ------------------------------------------------------------------------------------

def _origin(uri: str | None) -> str | None:
    """``scheme://host[:port]`` of a redirect URI as a CSP source, or None when it cannot be one."""
    if not uri:
        return None
    try:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    if not _HOST.match(host):
        return None
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def security_headers(redirect_uri: str | None = None) -> dict[str, str]:
    origin = _origin(redirect_uri)
    form_action = "'self'" + (f" {origin}" if origin else "")
    return {
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                   f"form-action {form_action}; frame-ancestors 'none'",
    }


def page_context(svc: Services, request: Request, ui_locales: str | None = None) -> PageContext:
    """This request's language (``ui_locales``, the one remembered for this browser, or
    ``Accept-Language``) and the operator's branding."""
    locale = choose_locale(ui_locales, request.headers.get("accept-language"), request.cookies.get(LOCALE_COOKIE))
    return PageContext(PageText(locale), branding(svc.settings.operator_name, svc.settings.operator_logo))


def _html(body: str, status: int = 200, redirect_uri: str | None = None) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=security_headers(redirect_uri))


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers=security_headers())


def _error(message: str, status: int = 400, title: str | None = None,
           ctx: PageContext = html_pages.DEFAULT) -> HTMLResponse:
    return _html(html_pages.error_page(message, title=title, ctx=ctx), status)


def _no_server(auth_server: str, ctx: PageContext) -> HTMLResponse:
    return _error(ctx.text("no_auth_server", name=repr(auth_server[:100])), 404, ctx.text("not_found"), ctx=ctx)


def _consent_error(exc: ConsentError, ctx: PageContext = html_pages.DEFAULT) -> Response:
    url = exc.redirect_url()
    return _redirect(url) if url else _error(ctx.text.error(exc), ctx=ctx)


# -- input ----------------------------------------------------------------------------------------

def _clean(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """One value per name; NULs and oversized values are refused (they never reach the database)."""
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise BadInput(f"the parameter {name[:50]} is repeated")
        if "\x00" in name or "\x00" in value or len(value) > MAX_FIELD_CHARS or len(name) > 100:
            raise BadInput("malformed parameter")
        out[name] = value
    return out


async def _form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise BadInput("the form must be sent as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadInput("the form is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadInput("the form cannot be read") from exc
    return _clean(pairs)


def _cookie_name(request_id: str) -> str:
    """One cookie per authorization request, so two sign-in tabs in one browser do not collide."""
    return f"{COOKIE}_{hashlib.sha256(request_id.encode()).hexdigest()[:16]}"


def _secret(request: Request, request_id: str) -> str:
    return request.cookies.get(_cookie_name(request_id), "")


#: authorization servers with an authorization endpoint of their own elsewhere (api/fortress)
#: whose users go through these login and consent pages
PAGE_ONLY_SERVERS = frozenset({"fortress", "csc"})


def _known_server(svc: Services, auth_server: str, *, pages: bool = True) -> bool:
    return auth_server in svc.settings.auth_servers or (pages and auth_server in PAGE_ONLY_SERVERS)


async def _run(handler: Callable[[], Response], ctx: PageContext = html_pages.DEFAULT) -> Response:
    """Run the page's blocking core calls in the thread pool; every failure becomes a page."""
    try:
        return await run_in_threadpool(handler)
    except BadInput as exc:
        return _error(str(exc), ctx=ctx)
    except ConsentError as exc:
        return _consent_error(exc, ctx)
    except (CoreError, UserError, ProcessError, TenantError) as exc:
        return _error(ctx.text.error(exc), ctx=ctx)
    except Exception:  # noqa: BLE001 - an HTML page, not the JSON error, for the browser
        log.exception("login / consent page failed")
        return _error(ctx.text("internal_error"), 500, ctx.text("something_wrong"), ctx=ctx)


def _pin_message(exc: PinRefused, t: PageText) -> str:
    if exc.locked_until is not None:
        return t("pin_locked_until", until=html_pages.date_text(exc.locked_until))
    if exc.code == "pin_locked":
        return t("pin_locked")
    if exc.code == "pin_blocked":
        return t("pin_blocked")
    return t("wrong_pin_one") if exc.remaining == 1 else t("wrong_pin", remaining=exc.remaining)


def _consent_again(svc: Services, auth_server: str, request_id: str, secret: str, error: str,
                   status: int, ctx: PageContext) -> Response:
    """The consent page once more, with ``error``; the error page if the request cannot go on."""
    view = svc.consent.view(request_id, secret)
    if view.status != "consent":
        return _error(error, status, ctx=ctx)
    return _html(html_pages.consent_page(auth_server, view, error=error, ctx=ctx), status, view.redirect_uri)


async def _posted(svc: Services, auth_server: str, request: Request) -> Response | tuple[dict[str, str], str, str]:
    """A page's form, its request id and this browser's secret for it; or the error page."""
    ctx = page_context(svc, request)
    if not _known_server(svc, auth_server):
        return _no_server(auth_server, ctx)
    if not same_origin(request, svc.base_url):
        return _error(ctx.text("other_site"), 403, ctx=ctx)
    try:
        form = await _form(request)
    except BadInput as exc:
        return _error(str(exc), ctx=ctx)
    request_id = form.get("request_id", "")
    return form, request_id, _secret(request, request_id)


# -- routes ---------------------------------------------------------------------------------------

@pages.get("/{auth_server}", summary="Authorization endpoint (RFC 6749 §4.1.1): the login page",
           response_class=HTMLResponse)
async def authorize(auth_server: str, request: Request, svc: Services = Depends(services)) -> Response:
    ctx = page_context(svc, request, request.query_params.get("ui_locales"))
    if not _known_server(svc, auth_server, pages=False):
        return _no_server(auth_server, ctx)

    def handle() -> Response:
        query = _clean(request.query_params.multi_items())
        return login_page(svc, request, auth_server, {k: v for k, v in query.items() if k in AUTHORIZE_PARAMS},
                          ui_locales=query.get("ui_locales"))

    return await _run(handle, ctx)


def query_params(request: Request) -> dict[str, str]:
    """The authorization request's parameters (one value each; malformed ones refused)."""
    return _clean(request.query_params.multi_items())


def login_page(svc: Services, request: Request, auth_server: str, params: dict[str, str],
               ui_locales: str | None = None, **start: Any) -> Response:
    """Start an authorization request (``ConsentService.start`` with ``start``'s options) and
    answer its login page with the cookie that binds it to this browser, and one that keeps its
    language for the later pages. Blocking: run it in ``run_page``."""
    https = request.url.scheme == "https" or svc.base_url.startswith("https://")
    request_id, secret = svc.consent.start(auth_server, params, **start)
    view = svc.consent.view(request_id, secret)
    ctx = page_context(svc, request, ui_locales)
    response = _html(html_pages.login_page(auth_server, view, username=view.login_hint or "", ctx=ctx), 200,
                     view.redirect_uri)
    response.set_cookie(_cookie_name(request_id), secret, httponly=True, samesite="lax", path=COOKIE_PATH,
                        secure=https, max_age=svc.settings.authorization_request_ttl_seconds)
    response.set_cookie(LOCALE_COOKIE, ctx.text.locale, httponly=True, samesite="lax", path=COOKIE_PATH,
                        secure=https, max_age=svc.settings.authorization_request_ttl_seconds)
    return response


async def run_page(handler: Callable[[], Response]) -> Response:
    """``handler`` in the thread pool; every failure becomes an error page (or a redirect with
    the error, when RFC 6749 says so)."""
    return await _run(handler)


@pages.post("/{auth_server}/login", summary="Login form of the authorization endpoint", response_class=HTMLResponse,
            openapi_extra=form_body({"request_id": text("from the page"), "username": text("user name"),
                                     "password": text("password"), "action": text("button", enum=["login", "cancel"])},
                                    ("request_id", "action")))
async def login(auth_server: str, request: Request, svc: Services = Depends(services)) -> Response:
    posted = await _posted(svc, auth_server, request)
    if isinstance(posted, Response):
        return posted
    form, request_id, secret = posted
    action = form.get("action", "login")
    ctx = page_context(svc, request)
    t = ctx.text

    def handle() -> Response:
        if action == "cancel":
            return _redirect(svc.consent.cancel(request_id, secret))
        if action != "login":
            raise BadInput("unknown action")
        username, password = form.get("username", ""), form.get("password", "")
        try:
            view = svc.consent.login(request_id, secret, username, password, address=client_address(request))
        except Throttled as exc:
            again = svc.consent.view(request_id, secret)
            response = _html(html_pages.login_page(auth_server, again, error=t("too_many_logins"),
                                                   username=username[:200], ctx=ctx), 429, again.redirect_uri)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except LoginFailed:
            # One answer for an unknown, a locked, a disabled user and a wrong password.
            again = svc.consent.view(request_id, secret)
            return _html(html_pages.login_page(auth_server, again, error=t("wrong_login"), username=username[:200],
                                               ctx=ctx), 401, again.redirect_uri)
        return _html(html_pages.consent_page(auth_server, view, ctx=ctx), 200, view.redirect_uri)

    return await _run(handle, ctx)


@pages.post("/{auth_server}/consent", summary="Consent form: approve with the PIN, on the device, or cancel",
            response_class=HTMLResponse,
            openapi_extra=form_body({"request_id": text("from the page"), "pin": text("signing PIN"),
                                     "otp": text("one-time code (requests that take one)"),
                                     "sign_identity_id": text("the chosen identity"),
                                     "action": text("button", enum=["approve", "device", "otp", "cancel"])},
                                    ("request_id", "action")))
async def consent(auth_server: str, request: Request, svc: Services = Depends(services)) -> Response:
    posted = await _posted(svc, auth_server, request)
    if isinstance(posted, Response):
        return posted
    form, request_id, secret = posted
    action = form.get("action", "")
    chosen = form.get("sign_identity_id") or None
    ctx = page_context(svc, request)

    def again(message: str, status: int) -> Response:
        return _consent_again(svc, auth_server, request_id, secret, message, status, ctx)

    def handle() -> Response:
        if action == "cancel":
            return _redirect(svc.consent.cancel(request_id, secret))
        if action not in ("approve", "device", "otp"):
            raise BadInput("unknown action")
        try:
            if action == "otp":
                view = svc.consent.send_otp(request_id, secret)
                return _html(html_pages.consent_page(auth_server, view, ctx=ctx), 200, view.redirect_uri)
            if action == "approve":
                return _redirect(svc.consent.approve_with_pin(request_id, secret, form.get("pin"), chosen,
                                                              address=client_address(request), otp=form.get("otp")))
            view = svc.consent.request_device_approval(request_id, secret, chosen)
            return _waiting(auth_server, view, ctx)
        except PinRefused as exc:
            return again(_pin_message(exc, ctx.text), 403)
        except Throttled:
            return again(ctx.text("too_many_pins"), 429)
        except IdentityError as exc:
            return again(ctx.text.error(exc), 403)
        except (OtpError, ProcessError) as exc:
            return again(ctx.text.error(exc), exc.status if 400 <= exc.status < 500 else 400)
        except ConsentError as exc:
            if exc.redirect_url():
                raise
            return again(ctx.text.error(exc), 400)

    return await _run(handle, ctx)


def _waiting(auth_server: str, view: PendingConsent, ctx: PageContext) -> Response:
    return _html(html_pages.waiting_page(auth_server, view, ctx), 200, view.redirect_uri)


@pages.get("/{auth_server}/wait", summary="Waiting page: redirects once the device answered",
           response_class=HTMLResponse)
async def wait(auth_server: str, request: Request, svc: Services = Depends(services)) -> Response:
    ctx = page_context(svc, request)
    if not _known_server(svc, auth_server):
        return _no_server(auth_server, ctx)

    def handle() -> Response:
        request_id = _clean(request.query_params.multi_items()).get("request_id", "")
        secret = _secret(request, request_id)
        url = svc.consent.device_outcome(request_id, secret)
        if url:
            return _redirect(url)
        return _waiting(auth_server, svc.consent.view(request_id, secret), ctx)

    return await _run(handle, ctx)


@demo.get("/demo/callback", summary="Redirect URI of the demo client: shows the authorization response",
          response_class=HTMLResponse)
async def demo_callback(request: Request, svc: Services = Depends(services)) -> Response:
    params = [(k[:100], v[:4096]) for k, v in request.query_params.multi_items()
              if k in ("code", "state", "error", "error_description", "error_uri")]
    token_url = f"{svc.base_url}/trustedx-authserver/oauth/{svc.settings.default_auth_server}/token"
    page = html_pages.callback_page(params, token_url, f"{svc.base_url}/demo/callback")
    return _html(page, 200)


router = APIRouter()
router.include_router(pages)
router.include_router(demo)
