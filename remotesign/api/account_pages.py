"""The signer's own pages: activate the account or reset its secrets with a one-time code, i.e.
choose password and PIN on the service's page, never through the relying party. Plain forms,
no JavaScript; POSTs from another origin are refused; failures count against the address."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from remotesign.api import account_html
from remotesign.api.consent_pages import BadInput, _form, security_headers
from remotesign.api.deps import services
from remotesign.api.same_origin import client_address, same_origin
from remotesign.api.openapi_doc import form_body, text
from remotesign.core.activation import ActivationError
from remotesign.core.identities import PIN_MIN, IdentityError
from remotesign.core.throttle import Throttled
from remotesign.core.users import MIN_PASSWORD, UserError
from remotesign.service import Services

router = APIRouter(prefix="/account", tags=["account pages"])


def _page(body: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers={**security_headers(), **(headers or {})})


def _form_page(code: str, error: str | None, status: int, purpose: str | None = None,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    return _page(account_html.activate_page(code, purpose=purpose, error=error, pin_min=PIN_MIN,
                                            password_min=MIN_PASSWORD), status, headers)


@router.get("/activate", response_class=HTMLResponse, summary="Activation / reset page: choose password and PIN")
async def activate_form(code: str = Query(default="", max_length=64),
                        svc: Services = Depends(services)) -> Response:
    purpose = await run_in_threadpool(svc.activation.peek, code) if code else None
    return _form_page(code, None, 200, purpose)


@router.post("/activate", response_class=HTMLResponse, summary="Activate / reset with a one-time code",
             openapi_extra=form_body({"code": text("the one-time code"), "password": text("new password"),
                                      "password2": text("again"), "pin": text("new signing PIN"),
                                      "pin2": text("again")}, ("code", "password", "password2", "pin", "pin2")))
async def activate(request: Request, svc: Services = Depends(services)) -> Response:
    if not same_origin(request, svc.base_url):
        return _page(account_html.layout("Refused", "<p class=\"error\">This form was sent from another site.</p>"),
                     403)
    try:
        form = await _form(request)
    except BadInput as exc:
        return _form_page("", str(exc), 400)
    code = form.get("code", "")[:64]
    password, pin = form.get("password", ""), form.get("pin", "")
    if password != form.get("password2", ""):
        return _form_page(code, "The two passwords differ.", 400)
    if pin != form.get("pin2", ""):
        return _form_page(code, "The two PINs differ.", 400)

    def handle() -> Response:
        try:
            done = svc.activation.complete(code, password, pin, source_keys=[f"address:{client_address(request)}"])
        except Throttled as exc:
            return _form_page(code, "Too many wrong codes from your network; try again later.", 429,
                              headers={"Retry-After": str(exc.retry_after)})
        except ActivationError as exc:
            return _form_page(code, "The code is unknown, used or expired." if exc.code == "invalid_code"
                              else exc.message, exc.status if 400 <= exc.status < 600 else 400)
        except (UserError, IdentityError) as exc:
            return _form_page(code, getattr(exc, "message", str(exc)), 400)
        minutes = svc.settings.device_code_ttl_seconds // 60
        return _page(account_html.activated_page(done.user.username, done.purpose, done.device_code, minutes))

    return await run_in_threadpool(handle)
