"""Who is at the console: the session cookie, the form token every POST carries, and the route
class that turns "not signed in", "refused" and the core services' errors into pages.

- The session cookie (``rs_console``) is HttpOnly, SameSite=Strict, Path=/console, Secure when the
  service is reached over https; it holds a random token the database knows only hashed.
- Every POST of a signed-in page carries ``csrf``, derived from that token (core/operators.py), and
  must come from this origin by the browser's own account (``same_origin``).
- The login form is protected the same way before there is a session: a random value in a
  short-lived cookie (``rs_console_login``) and the same value in the form (double submit).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from remotesign.api.console import render
from remotesign.api.deps import services
from remotesign.api.same_origin import same_origin
from remotesign.core.errors import CoreError
from remotesign.core.operators import ConsoleSession, OperatorError, OperatorService
from remotesign.core.tenants import TenantError
from remotesign.core.users import UserError
from remotesign.service import Services
from remotesign.trust.ca import CertificateError

SESSION_COOKIE = "rs_console"
LOGIN_COOKIE = "rs_console_login"
LOGIN_PATH = render.PREFIX + "/login"
LOGIN_COOKIE_SECONDS = 1800
MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 64


class NeedLogin(Exception):
    """No (valid) session: GET goes to the login page, anything else is refused with 401."""


class Refused(Exception):
    def __init__(self, status: int, message: str, session: ConsoleSession | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.session = session


def operators(request: Request) -> OperatorService:
    """The process's operator service, made on first use from the app's services."""
    state = request.app.state
    ops = getattr(state, "console_operators", None)
    if ops is None:
        ops = state.console_operators = OperatorService.for_services(state.services)
    return ops  # type: ignore[no-any-return]


def https(request: Request, svc: Services) -> bool:
    return secure_cookies(request.url.scheme, svc.base_url)


def secure_cookies(scheme: str, base_url: str) -> bool:
    """Cookies are Secure when the browser reaches the service over https (directly, or through
    a proxy whose public URL is https)."""
    return scheme == "https" or base_url.startswith("https://")


def set_session_cookie(response: Response, request: Request, svc: Services, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path=render.PREFIX,
                        secure=https(request, svc))


def clear_session_cookie(response: Response, request: Request, svc: Services) -> None:
    response.delete_cookie(SESSION_COOKIE, path=render.PREFIX, httponly=True, samesite="strict",
                           secure=https(request, svc))


def login_token(request: Request) -> str:
    """The login form's token: the browser's login cookie, or a new one (set by ``set_login_cookie``)."""
    current = request.cookies.get(LOGIN_COOKIE, "")
    return current if 20 <= len(current) <= 100 else secrets.token_urlsafe(24)


def set_login_cookie(response: Response, request: Request, svc: Services, value: str) -> None:
    response.set_cookie(LOGIN_COOKIE, value, httponly=True, samesite="strict", path=LOGIN_PATH,
                        secure=https(request, svc), max_age=LOGIN_COOKIE_SECONDS)


def clear_login_cookie(response: Response, request: Request, svc: Services) -> None:
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH, httponly=True, samesite="strict",
                           secure=https(request, svc))


def login_form_ok(request: Request, form: dict[str, str]) -> bool:
    cookie, sent = request.cookies.get(LOGIN_COOKIE, ""), form.get("csrf", "")
    return bool(cookie) and bool(sent) and hmac.compare_digest(cookie.encode(), sent.encode())


def current_session(request: Request, ops: OperatorService) -> ConsoleSession | None:
    return ops.session(request.cookies.get(SESSION_COOKIE))


def signed_in(request: Request, ops: OperatorService = Depends(operators)) -> ConsoleSession:
    """Dependency of every page: the session, or NeedLogin."""
    session = current_session(request, ops)
    if session is None:
        raise NeedLogin()
    return session


async def read_form(request: Request) -> dict[str, str]:
    """An URL-encoded form, one value per name; anything else is refused."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if not body and not ctype:
        return {}  # a form without fields (a button alone)
    if ctype != "application/x-www-form-urlencoded":
        raise Refused(400, "The form must be sent as application/x-www-form-urlencoded.")
    if len(body) > MAX_FORM_BYTES:
        raise Refused(413, "The form is too large.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refused(400, "The form cannot be read.") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        if "\x00" in value or "\x00" in name:
            raise Refused(400, "The form holds a NUL character.")
        form.setdefault(name, value)
    return form


@dataclass(frozen=True)
class Action:
    """A checked console POST: who sent it and its fields."""

    session: ConsoleSession
    form: dict[str, str]

    @property
    def actor(self) -> str:
        return self.session.operator.actor


async def action(request: Request, svc: Services = Depends(services),
                 ops: OperatorService = Depends(operators)) -> Action:
    """Dependency of every POST after sign-in: a session, this origin, and the right form token."""
    session = await run_in_threadpool(current_session, request, ops)
    if session is None:
        raise NeedLogin()
    if not same_origin(request, svc.base_url):
        raise Refused(403, "This form was sent from another site.", session)
    form = await read_form(request)
    if not session.csrf_ok(form.get("csrf")):
        raise Refused(403, "The form token is missing or wrong: reload the page and send the form again.", session)
    return Action(session, form)


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path, never another site."""
    if value and value.startswith(render.PREFIX + "/") and "//" not in value and "\\" not in value \
            and not value.startswith(LOGIN_PATH) and len(value) < 500:
        return value
    return render.PREFIX + "/"


_FAILURES = (CoreError, OperatorError, TenantError, UserError, CertificateError)


def _status_of(exc: Exception) -> int:
    code = getattr(exc, "code", "")
    status = getattr(exc, "status", None)
    if isinstance(status, int) and 400 <= status < 600:
        return status
    return 404 if code == "not_found" or "no client" in str(exc) or "no certificate" in str(exc) else 400


class ConsoleRoute(APIRoute):
    """Every console route: the answers above as pages, whatever raised them (a dependency or the
    handler)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except NeedLogin:
                if request.method in ("GET", "HEAD"):
                    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return render.redirect(f"{LOGIN_PATH}?next={quote(path, safe='/')}")
                return render.page("error.html", 401, title="Sign in first",
                                   message="Your console session has ended or never began: sign in again.",
                                   login=True)
            except Refused as exc:
                return render.error(exc.message, exc.status, session=exc.session, title="Refused")
            except _FAILURES as exc:
                return render.error(getattr(exc, "message", None) or str(exc), _status_of(exc))

        return run
