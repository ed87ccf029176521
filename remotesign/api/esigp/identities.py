"""Sign identities (eSigP ``sign_identities``) and the OpenID ``users/me`` profile.

A user's token (authorization-code grant) sees only that user's identities; a relying party's
client-credentials token with the manage scope sees its own users' identities, one user (or
device) at a time. Identities of other relying parties are simply not found."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.deps import services
from remotesign.api.errors import ApiError
from remotesign.api.esigp.answers import UsersMe
from remotesign.api.esigp.auth import (ID_PATTERN, b64, bad_request, caller, core_errors, insufficient_scope, need_any,
                                       plausible_id)
from remotesign.api.identity_answers import SignIdentitiesAnswer, SignIdentityAnswer
from remotesign.api.openapi_doc import json_answer
from remotesign.core.identities import IdentityInfo, Viewer
from remotesign.core import personal_codes
from remotesign.core.scopes import (IDENTIFY_AGE, IDENTITY_MANAGE, IDENTITY_PROFILE, USE_DEVICE, USE_SERVER,
                                    age_threshold, is_identification)
from remotesign.core.users import UserInfo
from remotesign.core.tenants import TokenInfo
from remotesign.service import Services

router = APIRouter(tags=["esigp identities"])

DEFAULT_ACR = "urn:eparaksts:authentication:flow:mobileid"
READ_SCOPES = (IDENTITY_PROFILE, USE_SERVER, USE_DEVICE, IDENTITY_MANAGE)
MAX_PKCS12_B64 = 512 * 1024


class Pkcs12Import(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pkcs12: str = Field(min_length=1, max_length=MAX_PKCS12_B64, description="base64 PKCS#12 (PFX)")
    password: str = Field(default="", max_length=1024)
    labels: list[str] | None = Field(default=None, max_length=32)
    pin: str | None = Field(default=None, max_length=64,
                            description="refused: the identity takes the PIN the user chose at activation")
    description: str | None = Field(default=None, max_length=200)
    domain: str | None = Field(default=None, max_length=60)
    user_id: str | None = Field(default=None, pattern=ID_PATTERN,
                                description="the owner; required with a client-credentials token")


def _labels(raw: str | None) -> list[str]:
    return [x.strip() for x in (raw or "").split(",") if x.strip()]


def _view(svc: Services, identity: IdentityInfo, details: bool = False) -> dict[str, Any]:
    return identity.esigp_json(svc.base_url, details=details)


@router.get("/esigp/v1/sign_identities", summary="List sign identities (filters: labels, user_id, device_id, domain)",
            response_model=None, responses=json_answer(SignIdentitiesAnswer, "The identities"))
def list_identities(labels: str | None = Query(default=None, max_length=2000),
                    user_id: str | None = Query(default=None, pattern=ID_PATTERN),
                    device_id: str | None = Query(default=None, pattern=ID_PATTERN),
                    domain: str | None = Query(default=None, max_length=60),
                    token: TokenInfo = Depends(caller), svc: Services = Depends(services)) -> dict[str, Any]:
    owner: str | None
    if token.is_user_token:
        need_any(token, *READ_SCOPES)
        if user_id is not None:
            raise bad_request("user_id is not allowed with a user's token: it lists the user's own identities")
        owner = token.user_id
    else:
        need_any(token, IDENTITY_MANAGE)
        if not user_id and not device_id:
            raise bad_request("a client-credentials token must name user_id or device_id")
        owner = user_id
    if device_id:
        device_owner = svc.devices.owner_of(device_id)
        if device_owner is None or (owner is not None and device_owner != owner):
            return {"sign_identities": []}
        owner = device_owner
    found = svc.identities.list(Viewer.of(token), user_id=owner, labels=_labels(labels), domain=domain or None)
    return {"sign_identities": [_view(svc, i) for i in found]}


@router.get("/esigp/v1/sign_identities/{identity_id}", summary="One sign identity with its certificate",
            response_model=None, responses=json_answer(SignIdentityAnswer, "The identity"))
def get_identity(identity_id: str, token: TokenInfo = Depends(caller),
                 svc: Services = Depends(services)) -> dict[str, Any]:
    need_any(token, *READ_SCOPES)
    if not plausible_id(identity_id):
        raise ApiError(404, "not_found", "no such sign identity")
    with core_errors():
        identity = svc.identities.get(identity_id, Viewer.of(token))
    return {"identity": _view(svc, identity, details=True)}


@router.post("/esigp/v1/sign_identities/server/pki_x509/pkcs12", status_code=201,
             summary="Import a server identity from a PKCS#12 (the key moves into the key store)",
             response_model=None,
             responses=json_answer(SignIdentityAnswer, "The imported identity (also in Location)", 201))
def import_pkcs12(body: Pkcs12Import, response: Response, token: TokenInfo = Depends(caller),
                  svc: Services = Depends(services)) -> dict[str, Any]:
    need_any(token, IDENTITY_MANAGE)
    if body.pin is not None:  # the caller (a relying party's backend, even with a user's token) holds no PIN
        raise bad_request("the signing PIN is the user's: the identity starts with the PIN the user chose on the "
                          "service's activation page", "secret_not_allowed")
    if token.is_user_token:
        if body.user_id not in (None, token.user_id):
            raise bad_request("a user's token imports identities for that user only")
        owner_id = token.user_id
    else:
        if not body.user_id:
            raise bad_request("user_id is required with a client-credentials token")
        owner_id = body.user_id
    data = b64(body.pkcs12, "pkcs12")
    with core_errors():
        owner = svc.users.get(owner_id or "", None if token.is_user_token else token.tenant_id)
        identity = svc.identities.import_pkcs12(
            owner, data, body.password.encode() if body.password else None, labels=body.labels,
            description=body.description, domain=body.domain or "citizen", actor=token.user_id or token.client_id)
    view = _view(svc, identity, details=True)
    response.headers["Location"] = view["self"]
    return {"identity": view}


@router.delete("/esigp/v1/sign_identities/{identity_id}", status_code=204, summary="Delete a sign identity")
def delete_identity(identity_id: str, token: TokenInfo = Depends(caller),
                    svc: Services = Depends(services)) -> Response:
    need_any(token, IDENTITY_MANAGE)
    if not plausible_id(identity_id):
        raise ApiError(404, "not_found", "no such sign identity")
    with core_errors():
        svc.identities.delete(identity_id, Viewer.of(token), actor=token.user_id or token.client_id)
    return Response(status_code=204)


def _identification(token: TokenInfo, user: UserInfo) -> dict[str, Any]:
    """The OpenID claims of the identification scopes (eParaksts ``urn:lvrtc:fpeil:aa[:age[_NN]]``):
    names and personal code; the age only when the personal code tells it."""
    given, _, family = user.display_name.rpartition(" ")
    claims: dict[str, Any] = {"sub": user.id, "domain": "citizen" if user.kind == "natural" else "organization",
                              "acr": DEFAULT_ACR, "amr": ["pwd"], "given_name": given or user.display_name,
                              "family_name": family if given else "", "name": user.display_name,
                              "serial_number": user.serial_number or "", "eips": "remotesign"}
    born = personal_codes.birth_date(user.serial_number)
    for scope in token.scopes:
        years = age_threshold(scope)
        if scope == IDENTIFY_AGE and born is not None:
            claims["age"] = personal_codes.age_on(born, date.today())
        elif years is not None:
            claims[f"age_over_{years}"] = None if born is None else personal_codes.age_on(born, date.today()) >= years
    return claims


@router.api_route("/openid/v1/users/me", methods=["GET", "POST"],
                  summary="The signed-in user: identification claims and/or sign identities (user token)",
                  response_model=None, responses=json_answer(UsersMe, "The user"))
def users_me(token: TokenInfo = Depends(caller), svc: Services = Depends(services)) -> dict[str, Any]:
    """GET as documented; POST too, as the PHP client sends it."""
    identifies = any(is_identification(s) for s in token.scopes)
    if not identifies:
        need_any(token, IDENTITY_PROFILE)
    if not token.is_user_token:
        raise insufficient_scope(IDENTITY_PROFILE)
    with core_errors():
        user = svc.users.get(token.user_id or "", None)
    out: dict[str, Any] = {"id": user.id, "name": user.display_name}
    if identifies:
        out.update(_identification(token, user))
    if IDENTITY_PROFILE in token.scopes:
        out["sign_identities"] = [_view(svc, i, details=True) for i in svc.identities.list(Viewer.of(token))]
    return out
