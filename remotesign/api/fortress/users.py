"""Fortress-style user API: ``GET {fortress}/api/v1/user/{userCode}``, ``…/certificate``,
``…/status`` and ``GET {fortress}/api/v1/ping``.

A ``userCode`` is the user name of one of the calling client's own users (``remotesign users
add``, ``POST /v1/users``); another client's user is ``user_not_found``, exactly as an unknown one.
A user's certificates are the certificates of their sign identities; "active" means the identity
is enabled and the certificate valid now. Field names follow the vendor notes (§3.2); where the
notes do not know a path or a value's form, remotesign chose, and documents here:

* ``…/status`` (the SDK's ``getUserStatus``, path unknown) answers ``{"auth", "sign"}``: whether the
  user can authenticate (enabled, activated, not locked) and can sign (an active certificate, and
  ``auth`` — or, for a legal person whose e-seal signs unattended, only enabled).
* ``/api/v1/ping`` (in the vendor's table of contents, path unknown) answers ``{"status": "ok"}``
  without a token, for load balancers and client health checks.
* ``serialNumber`` is the certificate serial in upper-case hexadecimal; ``issuer`` and ``subject``
  are RFC 4514 strings; dates are milliseconds since the epoch; ``lastAccess`` is null (not
  recorded).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from remotesign.api.deps import require_scope, services
from remotesign.api.errors import OAuthError
from remotesign.api.fortress.answers import FortressCertificates, FortressPing, FortressUser, FortressUserStatus
from remotesign.api.openapi_doc import json_answer
from remotesign.core import scopes
from remotesign.core.identities import IdentityInfo, Viewer
from remotesign.core.tenants import TokenInfo
from remotesign.core.users import UserError, UserInfo
from remotesign.service import Services

router = APIRouter(tags=["fortress"])
Client = Depends(require_scope(scopes.SIGNATURES))


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _user(svc: Services, caller: TokenInfo, user_code: str) -> UserInfo:
    try:
        return svc.users.by_username(user_code, caller.tenant_id)
    except UserError as exc:
        raise OAuthError(404, "user_not_found", f"no user {user_code[:100]!r}") from exc


def _active_certificates(svc: Services, caller: TokenInfo, user: UserInfo) -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)
    return [_certificate_json(i) for i in svc.identities.list(Viewer(caller.tenant_id), user_id=user.id)
            if i.active(now)]


def _certificate_json(identity: IdentityInfo) -> dict[str, Any]:
    cert = identity.certificate()
    return {"code": identity.id, "name": identity.labels[0] if identity.labels else cert.subject.rfc4514_string(),
            "description": identity.description, "dateIssued": _millis(cert.not_valid_before_utc),
            "dateExpired": _millis(cert.not_valid_after_utc), "serialNumber": format(cert.serial_number, "X"),
            "issuer": cert.issuer.rfc4514_string(), "subject": cert.subject.rfc4514_string(),
            "pem": cert.public_bytes(Encoding.PEM).decode("ascii")}


def _can_authenticate(user: UserInfo) -> bool:
    locked = user.locked_permanently or (user.locked_until is not None and user.locked_until > datetime.now(timezone.utc))
    return user.enabled and user.activated and not locked


@router.get("/api/v1/ping", summary="Ping (no token needed)", response_model=None,
            responses=json_answer(FortressPing, "The service answers"))
async def ping() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/api/v1/user/{user_code}", summary="One of the client's users, with their active certificates",
            response_model=None, responses=json_answer(FortressUser, "The user"))
async def user(user_code: str, caller: TokenInfo = Client, svc: Services = Depends(services)) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        found = _user(svc, caller, user_code)
        return {"code": found.username, "name": found.display_name, "email": found.email, "mobile": found.phone,
                "lastAccess": None, "role": "ROLE_USER", "certificates": _active_certificates(svc, caller, found)}

    return await run_in_threadpool(read)


@router.get("/api/v1/user/{user_code}/certificate", summary="The user's active certificates", response_model=None,
            responses=json_answer(FortressCertificates, "The certificates"))
async def certificates(user_code: str, caller: TokenInfo = Client,
                       svc: Services = Depends(services)) -> list[dict[str, Any]]:
    return await run_in_threadpool(lambda: _active_certificates(svc, caller, _user(svc, caller, user_code)))


@router.get("/api/v1/user/{user_code}/status", summary="Whether the user can authenticate and sign",
            response_model=None, responses=json_answer(FortressUserStatus, "The user's state"))
async def status(user_code: str, caller: TokenInfo = Client, svc: Services = Depends(services)) -> dict[str, bool]:
    def read() -> dict[str, bool]:
        found = _user(svc, caller, user_code)
        auth = _can_authenticate(found)
        # a legal person's e-seal signs unattended (the client's credentials authorize it): no sign-in
        may_sign = auth or (found.kind == "legal" and found.enabled)
        return {"auth": auth, "sign": may_sign and bool(_active_certificates(svc, caller, found))}

    return await run_in_threadpool(read)
