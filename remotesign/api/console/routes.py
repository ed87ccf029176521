"""The operator console's pages and forms (``/console``). Server-rendered, no JavaScript: every
change is a POST form carrying the session's form token, answered by a redirect back to its page
(or, for a new client secret, by the one page that shows it). The facade only translates: every
read and every change goes through a core service, which writes the audit event with the
operator's name as the actor."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import urlencode

from cryptography import x509
from cryptography.x509.oid import NameOID
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from remotesign import __version__
from remotesign.api.console import render
from remotesign.api.console.auth import (Action, ConsoleRoute, NeedLogin, Refused, action, clear_login_cookie,
                                         clear_session_cookie, current_session, login_form_ok, login_token,
                                         operators, read_form, safe_next, set_login_cookie, set_session_cookie,
                                         signed_in)
from remotesign.api.deps import services
from remotesign.api.health import readiness
from remotesign.api.same_origin import client_address, same_origin
from remotesign.core.identities import IdentityInfo, Viewer
from remotesign.core.operators import ConsoleSession, OperatorLoginFailed, OperatorService
from remotesign.core.scopes import KNOWN_SCOPES
from remotesign.core.throttle import Throttled
from remotesign.core.users import SERVICE_WIDE
from remotesign.service import Services
from remotesign.trust.ca import REVOCATION_REASONS, CertificateError

router = APIRouter(prefix=render.PREFIX, include_in_schema=False, route_class=ConsoleRoute)
Session = Depends(signed_in)
Post = Depends(action)
ROWS = 100  # rows a list page shows; Previous / Next reach the others
PAGE_DIGITS = 9  # a longer page number is past any last page
AUDIT_ROWS = 100
T = TypeVar("T")

NOTICES = {
    "client_disabled": "The relying party is disabled; its tokens are revoked.",
    "client_enabled": "The relying party is enabled again.",
    "user_unlocked": "The user's login lock is lifted.",
    "user_disabled": "The user is disabled.",
    "user_enabled": "The user is enabled again.",
    "identity_unlocked": "The identity's PIN lock is lifted; the user's own PIN works again.",
    "identity_disabled": "The identity is disabled.",
    "identity_enabled": "The identity is enabled again.",
    "device_removed": "The device is removed; it can no longer approve.",
    "certificate_revoked": "The certificate is revoked: OCSP answers 'revoked' now, the next CRL lists it.",
    "signed_out": "You are signed out.",
}


def _notice(done: str | None) -> str | None:
    return NOTICES.get(done or "")


def _back(path: str, done: str, **query: str) -> Response:
    return render.redirect(f"{render.PREFIX}{path}?{urlencode({**query, 'done': done})}")


def _kept(form: dict[str, str], *names: str) -> dict[str, str]:
    """The list's search and page a form was sent from (hidden fields), to go back to them."""
    return {name: form[name][:200] for name in names if form.get(name)}


async def _do(work: Callable[[], Any]) -> Any:
    return await run_in_threadpool(work)


# -- sign-in -------------------------------------------------------------------------------------

@router.get("")
def root() -> Response:
    return render.redirect(render.PREFIX + "/")


@router.get("/console.css")
def stylesheet() -> Response:
    return render.stylesheet()


def _login_page(request: Request, svc: Services, *, next_path: str, error: str | None = None, status: int = 200,
                username: str = "", notice: str | None = None, headers: dict[str, str] | None = None) -> Response:
    token = login_token(request)
    response = render.page("login.html", status, headers, title="Operator sign-in", csrf=token, next=next_path,
                           username=username, error=error, notice=notice)
    set_login_cookie(response, request, svc, token)
    return response


@router.get("/login")
def login_form(request: Request, next: str = Query(default="", max_length=500), done: str = Query(default=""),
               svc: Services = Depends(services), ops: OperatorService = Depends(operators)) -> Response:
    if current_session(request, ops) is not None:
        return render.redirect(safe_next(next))
    return _login_page(request, svc, next_path=safe_next(next), notice=_notice(done))


@router.post("/login")
async def login(request: Request, svc: Services = Depends(services),
                ops: OperatorService = Depends(operators)) -> Response:
    if not same_origin(request, svc.base_url):
        raise Refused(403, "This form was sent from another site.")
    form = await read_form(request)
    next_path = safe_next(form.get("next"))
    if not login_form_ok(request, form):
        return _login_page(request, svc, next_path=next_path, status=403,
                           error="The sign-in form expired or was not sent from this page; sign in again.")
    username, password = form.get("username", "")[:200], form.get("password", "")[:1024]

    def check() -> Response:
        try:
            _session, token = ops.login(username, password, address=client_address(request))
        except Throttled as exc:
            return _login_page(request, svc, next_path=next_path, status=429, username=username,
                               error="Too many failed sign-ins from your network; try again later.",
                               headers={"Retry-After": str(exc.retry_after)})
        except OperatorLoginFailed:
            return _login_page(request, svc, next_path=next_path, status=401, username=username,
                               error="Wrong operator name or password, or the account is locked.")
        response = render.redirect(next_path)
        set_session_cookie(response, request, svc, token)
        clear_login_cookie(response, request, svc)
        return response

    return await _do(check)


@router.post("/logout")
async def logout(request: Request, act: Action = Post, svc: Services = Depends(services),
                 ops: OperatorService = Depends(operators)) -> Response:
    await _do(lambda: ops.logout(act.session))
    response = render.redirect(render.PREFIX + "/login?done=signed_out")
    clear_session_cookie(response, request, svc)
    return response


# -- overview and health -------------------------------------------------------------------------

def _health(svc: Services) -> dict[str, Any]:
    status, body = readiness(svc)
    seq, digest = svc.audit.head()
    return {"http_status": status, "body": body, "json": json.dumps(body, indent=2, sort_keys=True),
            "public_url": svc.base_url, "audit_events": seq, "audit_head": digest, "version": __version__}


@router.get("/")
def overview(session: ConsoleSession = Session, svc: Services = Depends(services)) -> Response:
    counts = {
        "clients": len(svc.tenants.list()),
        "users": svc.users.search(None, all_users=True, limit=0)[1],
        "users_locked": svc.users.search(None, all_users=True, state="locked", limit=0)[1],
        "identities": svc.identities.search(Viewer(None), limit=0)[1],
        "identities_locked": svc.identities.search(Viewer(None), state="pin_locked", limit=0)[1],
        "devices": svc.devices.search(limit=0)[1],
        "revoked": svc.ca.search_page(status="revoked", limit=0)[1],
    }
    mine = svc.audit.search(actor=session.operator.actor, limit=10)
    return render.page("overview.html", title="Overview", active="overview", session=session, counts=counts,
                       health=_health(svc), mine=mine)


@router.get("/health")
def health(session: ConsoleSession = Session, svc: Services = Depends(services)) -> Response:
    return render.page("health.html", title="Service health", active="health", session=session,
                       health=_health(svc), processes=svc.heartbeats.processes(),
                       silent_after=svc.settings.node_silent_seconds)


# -- relying parties -----------------------------------------------------------------------------

def _clients_page(session: ConsoleSession, svc: Services, *, notice: str | None = None, error: str | None = None,
                  status: int = 200, form: dict[str, str] | None = None) -> Response:
    return render.page("clients.html", status, title="Relying parties", active="clients", session=session,
                       clients=svc.tenants.list(), scopes=KNOWN_SCOPES, notice=notice, error=error, form=form or {})


@router.get("/clients")
def clients(done: str = Query(default=""), session: ConsoleSession = Session,
            svc: Services = Depends(services)) -> Response:
    return _clients_page(session, svc, notice=_notice(done))


@router.post("/clients")
async def create_client(act: Action = Post, svc: Services = Depends(services)) -> Response:
    from remotesign.core.tenants import TenantError

    name = act.form.get("name", "").strip()
    scopes = [s for s in KNOWN_SCOPES if act.form.get(f"scope:{s}") == "on"]
    client_id = act.form.get("client_id", "").strip() or None

    def create() -> Response:
        if not name or len(name) > 200:
            return _clients_page(act.session, svc, error="A relying party needs a name (at most 200 characters).",
                                 status=400, form=act.form)
        if not scopes:
            return _clients_page(act.session, svc, error="Choose at least one scope.", status=400, form=act.form)
        if client_id is not None and (len(client_id) > 100 or not client_id.isprintable() or " " in client_id):
            return _clients_page(act.session, svc, error="A client id has at most 100 characters, no spaces.",
                                 status=400, form=act.form)
        try:
            tenant, secret = svc.tenants.create(name, scopes, client_id=client_id,
                                                pkce_required=act.form.get("pkce_required") == "on",
                                                actor=act.actor)
        except TenantError as exc:
            return _clients_page(act.session, svc, error=str(exc), status=409, form=act.form)
        return render.page("client_secret.html", 201, title="Relying party created", active="clients",
                           session=act.session, client=tenant, secret=secret, created=True, tokens_revoked=False)

    return await _do(create)


@router.post("/clients/{client_id}/rotate")
async def rotate_secret(client_id: str, act: Action = Post, svc: Services = Depends(services)) -> Response:
    revoke = act.form.get("revoke_tokens") == "on"

    def rotate() -> Response:
        secret = svc.tenants.rotate_secret(client_id, actor=act.actor, revoke_tokens=revoke)
        tenant = svc.tenants.by_client_id(client_id)
        return render.page("client_secret.html", title="New client secret", active="clients", session=act.session,
                           client=tenant, secret=secret, created=False, tokens_revoked=revoke)

    return await _do(rotate)


@router.post("/clients/{client_id}/disable")
async def disable_client(client_id: str, act: Action = Post, svc: Services = Depends(services)) -> Response:
    await _do(lambda: svc.tenants.set_enabled(client_id, False, actor=act.actor))
    return _back("/clients", "client_disabled")


@router.post("/clients/{client_id}/enable")
async def enable_client(client_id: str, act: Action = Post, svc: Services = Depends(services)) -> Response:
    await _do(lambda: svc.tenants.set_enabled(client_id, True, actor=act.actor))
    return _back("/clients", "client_enabled")


# -- lists, a page at a time ---------------------------------------------------------------------

@dataclass(frozen=True)
class Pages:
    """Where a list page stands: its number, how many pages and rows there are, the rows it shows
    (1-based, 0 when none) and the links to the pages beside it (same search)."""

    number: int
    count: int
    total: int
    first: int
    last: int
    previous: str | None
    next: str | None


def _page_number(raw: str, session: ConsoleSession) -> int:
    text = raw.strip()
    if not text:
        return 1
    digits = text.lstrip("0")
    if not (text.isascii() and text.isdigit()) or not digits:
        raise Refused(400, f"page: pages are numbered 1, 2, 3 and on (not {text[:20]!r}).", session)
    return int(digits) if len(digits) <= PAGE_DIGITS else 10 ** PAGE_DIGITS


def _paged(path: str, page: str, session: ConsoleSession, search: Callable[[int, int], tuple[list[T], int]],
           **keep: str) -> tuple[list[T], Pages]:
    """Page ``page`` of a list: ``search(offset, limit)`` answers its rows and how many match in
    all; a page past the last shows the last. ``keep`` (the search) goes into the links."""
    number = _page_number(page, session)
    rows, total = search((number - 1) * ROWS, ROWS)
    if number > 1 and not rows:  # past the last page (a number typed, or rows went away)
        number = max(1, -(-total // ROWS))
        rows, total = search((number - 1) * ROWS, ROWS)
    query = {name: value for name, value in keep.items() if value}

    def link(n: int) -> str:
        return f"{render.PREFIX}{path}?{urlencode({**query, 'page': str(n)})}"

    first = (number - 1) * ROWS + 1 if rows else 0
    count = max(1, -(-total // ROWS))
    return rows, Pages(number=number, count=count, total=total, first=first,
                       last=first + len(rows) - 1 if rows else 0, previous=link(number - 1) if number > 1 else None,
                       next=link(number + 1) if number < count else None)


# -- users ---------------------------------------------------------------------------------------

def _owners(svc: Services) -> dict[str | None, str]:
    names: dict[str | None, str] = {t.id: t.name for t in svc.tenants.list()}
    names[None] = SERVICE_WIDE
    return names


@router.get("/users")
def users(q: str = Query(default="", max_length=200), page: str = Query(default=""), done: str = Query(default=""),
          session: ConsoleSession = Session, svc: Services = Depends(services)) -> Response:
    found, pages = _paged("/users", page, session,
                          lambda offset, limit: svc.users.search(None, all_users=True, text=q, offset=offset,
                                                                 limit=limit), q=q)
    return render.page("users.html", title="Users", active="users", session=session, users=found, pages=pages,
                       owners=_owners(svc), q=q, notice=_notice(done), now=datetime.now(timezone.utc))


@router.post("/users/{user_id}/unlock")
async def unlock_user(user_id: str, act: Action = Post, svc: Services = Depends(services)) -> Response:
    await _do(lambda: svc.users.unlock(user_id, actor=act.actor))
    return _back("/users", "user_unlocked", **_kept(act.form, "q", "page"))


@router.post("/users/{user_id}/disable")
async def disable_user(user_id: str, act: Action = Post, svc: Services = Depends(services)) -> Response:
    await _do(lambda: svc.users.update(user_id, None, enabled=False, actor=act.actor))
    return _back("/users", "user_disabled", **_kept(act.form, "q", "page"))


@router.post("/users/{user_id}/enable")
async def enable_user(user_id: str, act: Action = Post, svc: Services = Depends(services)) -> Response:
    await _do(lambda: svc.users.update(user_id, None, enabled=True, actor=act.actor))
    return _back("/users", "user_enabled", **_kept(act.form, "q", "page"))


# -- identities ----------------------------------------------------------------------------------

def _revoked_serials(svc: Services, serials: list[int]) -> dict[int, tuple[datetime | None, str | None]]:
    """Which of ``serials`` the built-in issuing CA revoked, and when and why."""
    try:
        issuing = svc.ca.issuing
    except CertificateError:
        return {}
    return {c.serial: (c.revoked_at, c.revocation_reason) for c in svc.ca.revoked_by(issuing.id, serials)}


_NAMES = {NameOID.SERIAL_NUMBER: "serialNumber", NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier"}


def _identity_row(i: IdentityInfo, cert: x509.Certificate, users: dict[str, Any], owners: dict[str | None, str],
                  revoked: dict[int, tuple[datetime | None, str | None]], schedule: tuple[int, ...],
                  now: datetime) -> dict[str, Any]:
    revocation = revoked.get(cert.serial_number)
    if revocation is not None:
        cert_state = f"revoked ({revocation[1] or 'unspecified'})"
    elif cert.not_valid_after_utc < now:
        cert_state = "expired"
    elif cert.not_valid_before_utc > now:
        cert_state = "not yet valid"
    else:
        cert_state = "valid"
    user = users.get(i.user_id)
    if i.pin_blocked(schedule):
        lock = "blocked (for good)"
    elif i.pin_locked_until is not None and i.pin_locked_until > now:
        lock = "locked until " + render.when(i.pin_locked_until)
    elif i.pin_failures:
        lock = f"{i.pin_failures} wrong PIN(s)"
    else:
        lock = ""
    return {"identity": i, "username": user.username if user else i.user_id, "owner": owners.get(i.user_tenant_id, "?"),
            "subject": cert.subject.rfc4514_string(_NAMES), "serial": format(cert.serial_number, "x"),
            "not_after": cert.not_valid_after_utc, "cert_state": cert_state, "lock": lock,
            "unlockable": bool(lock)}


IDENTITY_STATES = ("locked", "disabled")  # the identities page's "Show" choices (anything else: all)


@router.get("/identities")
def identities(q: str = Query(default="", max_length=200), state: str = Query(default="", max_length=20),
               page: str = Query(default=""), done: str = Query(default=""), session: ConsoleSession = Session,
               svc: Services = Depends(services)) -> Response:
    chosen = state if state in IDENTITY_STATES else None
    found, pages = _paged("/identities", page, session,
                          lambda offset, limit: svc.identities.search(Viewer(None), text=q, state=chosen,
                                                                      offset=offset, limit=limit),
                          q=q, state=state)
    owners = _owners(svc)
    users_by_id = svc.users.get_many(i.user_id for i in found)
    certificates = [i.certificate() for i in found]
    revoked = _revoked_serials(svc, [c.serial_number for c in certificates])
    schedule = svc.identities.pin_lock_schedule
    now = datetime.now(timezone.utc)
    rows = [_identity_row(i, c, users_by_id, owners, revoked, schedule, now) for i, c in zip(found, certificates)]
    return render.page("identities.html", title="Sign identities", active="identities", session=session,
                       rows=rows, pages=pages, q=q, state=state, notice=_notice(done))


@router.post("/identities/{identity_id}/unlock")
async def unlock_identity(identity_id: str, act: Action = Post, svc: Services = Depends(services)) -> Response:
    await _do(lambda: svc.identities.unlock_pin(identity_id, actor=act.actor))
    return _back("/identities", "identity_unlocked", **_kept(act.form, "q", "state", "page"))


@router.post("/identities/{identity_id}/disable")
async def disable_identity(identity_id: str, act: Action = Post, svc: Services = Depends(services)) -> Response:
    reason = act.form.get("reason", "").strip()[:200] or "disabled by the operator"
    await _do(lambda: svc.identities.update(identity_id, Viewer(None), status="disabled", reason=reason,
                                            actor=act.actor))
    return _back("/identities", "identity_disabled", **_kept(act.form, "q", "state", "page"))


@router.post("/identities/{identity_id}/enable")
async def enable_identity(identity_id: str, act: Action = Post, svc: Services = Depends(services)) -> Response:
    await _do(lambda: svc.identities.update(identity_id, Viewer(None), status="enabled", actor=act.actor))
    return _back("/identities", "identity_enabled", **_kept(act.form, "q", "state", "page"))


# -- devices -------------------------------------------------------------------------------------

@router.get("/devices")
def devices(q: str = Query(default="", max_length=200), page: str = Query(default=""), done: str = Query(default=""),
            session: ConsoleSession = Session, svc: Services = Depends(services)) -> Response:
    found, pages = _paged("/devices", page, session,
                          lambda offset, limit: svc.devices.search(text=q, offset=offset, limit=limit), q=q)
    users_by_id = svc.users.get_many(d.user_id for d in found)
    owners = _owners(svc)
    rows = []
    for d in found:
        user = users_by_id.get(d.user_id)
        rows.append({"device": d, "username": user.username if user else d.user_id,
                     "owner": owners.get(user.tenant_id if user else None, "?"),
                     "key": hashlib.sha256(d.public_key_der).hexdigest()[:16]})
    return render.page("devices.html", title="Approval devices", active="devices", session=session,
                       rows=rows, pages=pages, q=q, notice=_notice(done))


@router.post("/devices/{device_id}/remove")
async def remove_device(device_id: str, act: Action = Post, svc: Services = Depends(services)) -> Response:
    from remotesign.core.devices import DeviceError

    def remove() -> None:
        owner = svc.devices.owner_of(device_id)
        if owner is None:
            raise DeviceError("not_found", f"no device {device_id}", 404)
        svc.devices.remove(device_id, owner, act.actor)

    await _do(remove)
    return _back("/devices", "device_removed", **_kept(act.form, "q", "page"))


# -- certificates --------------------------------------------------------------------------------

def _system_certificates(svc: Services) -> set[str]:
    """The service's own certificates (root, issuing CA, TSA, OCSP): not revoked from here."""
    try:
        return {svc.ca.root.id, svc.ca.issuing.id, svc.ca.tsa_signer()[0].id, svc.ca.ocsp_signer()[0].id}
    except CertificateError:
        return set()


@router.get("/certificates")
def certificates(q: str = Query(default="", max_length=200), status: str = Query(default="", max_length=10),
                 page: str = Query(default=""), done: str = Query(default=""), session: ConsoleSession = Session,
                 svc: Services = Depends(services)) -> Response:
    found, pages = _paged("/certificates", page, session,
                          lambda offset, limit: svc.ca.search_page(text=q or None, status=status or None,
                                                                   offset=offset, limit=limit),
                          q=q, status=status)
    owners = {t.id: t.name for t in svc.tenants.list()}
    return render.page("certificates.html", title="Certificates", active="certificates", session=session,
                       certificates=found, pages=pages, owners=owners, system=_system_certificates(svc),
                       reasons=REVOCATION_REASONS, q=q, state=status, notice=_notice(done))


@router.post("/certificates/{certificate_id}/revoke")
async def revoke_certificate(certificate_id: str, act: Action = Post, svc: Services = Depends(services)) -> Response:
    reason = act.form.get("reason", "")

    def revoke() -> None:
        cert = svc.ca.get_any(certificate_id)
        if cert is None:
            raise CertificateError(f"no certificate {certificate_id}")
        if cert.id in _system_certificates(svc):
            raise Refused(403, "The service's own CA, TSA and OCSP certificates are not revoked from the console "
                               "(remotesign pki revoke does it).", act.session)
        svc.ca.revoke(cert, reason, actor=act.actor)

    await _do(revoke)
    return _back("/certificates", "certificate_revoked", **_kept(act.form, "q", "status", "page"))


# -- audit log -----------------------------------------------------------------------------------

def _moment(text: str, field: str) -> datetime | None:
    """A time typed in the search form: ``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM[:SS]`` (UTC unless it
    says otherwise)."""
    text = text.strip()
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text.replace(" ", "T").removesuffix("Z").removesuffix("UTC").strip())
    except ValueError as exc:
        raise Refused(400, f"{field}: write a time as YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)") from exc
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at


def _audit_page(session: ConsoleSession, svc: Services, params: dict[str, str], *,
                verification: dict[str, Any] | None = None, status: int = 200) -> Response:
    until = _moment(params.get("until", ""), "until")
    if until is not None and len(params.get("until", "").strip()) == 10:  # a day: up to its end
        until += timedelta(days=1)
    before = params.get("before", "").strip()
    events = svc.audit.search(event=params.get("action", "").strip() or None,
                              actor=params.get("actor", "").strip() or None, text=params.get("q", "").strip() or None,
                              since=_moment(params.get("since", ""), "since"), until=until,
                              before_seq=int(before) if before.isdigit() else None, limit=AUDIT_ROWS)
    older = None
    if len(events) == AUDIT_ROWS:
        older = urlencode({**{k: v for k, v in params.items() if k in ("actor", "action", "q", "since", "until")},
                           "before": str(events[-1].seq)})
    rows = [{"event": ev, "details": _details(ev.details)} for ev in events]
    return render.page("audit.html", status, title="Audit log", active="audit", session=session, rows=rows,
                       params=params, older=older, verification=verification, head=svc.audit.head()[0])


def _details(raw: str) -> str:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if not value:
        return ""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


@router.get("/audit")
def audit(request: Request, session: ConsoleSession = Session, svc: Services = Depends(services)) -> Response:
    params = {k: v[:200] for k, v in request.query_params.items()
              if k in ("actor", "action", "q", "since", "until", "before")}
    return _audit_page(session, svc, params)


@router.post("/audit/verify")
async def verify_audit(act: Action = Post, svc: Services = Depends(services),
                       ops: OperatorService = Depends(operators)) -> Response:
    def verify() -> Response:
        report = svc.verify_audit()
        ops.audit_verified(act.session, events=report.events, problems=len(report.problems),
                           checkpoints=report.checkpoints)
        verification = {"ok": not report.problems, "events": report.events, "checkpoints": report.checkpoints,
                        "timestamped": report.timestamped, "last_sealed": report.last_sealed,
                        "unsealed": report.unsealed, "last_timestamp": report.last_timestamp,
                        "database_only": report.database_only, "problems": report.problems[:50],
                        "more_problems": max(0, len(report.problems) - 50)}
        return _audit_page(act.session, svc, {}, verification=verification, status=200)

    return await _do(verify)


__all__ = ["router", "NeedLogin"]
