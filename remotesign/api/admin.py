"""Admin API of a relying party (scope ``remotesign:users``): enrol its own end users, create
their sign identities (key in the key store + certificate from the built-in CA), manage status,
labels and devices, and register its OAuth redirect URIs. Users and identities of other
relying parties, and service-wide users, are not visible here (404).

The relying party never sets or learns a user's password or PIN (sole control, EN 419 241-1):
it can only have the service send the user a one-time code through the user's own channel, with
which the user chooses them on the service's page (``/account/activate``)."""

from __future__ import annotations

import base64

from typing import Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.admin_answers import (ActivationSent, AdminDevices, AdminUser, AdminUsers, CallbackSecret,
                                          ClientRegistration, CreatedUser, RedirectUrisAnswer)
from remotesign.api.deps import require_scope, services
from remotesign.api.errors import ApiError
from remotesign.api.identity_answers import SignIdentitiesAnswer, SignIdentityAnswer
from remotesign.api.openapi_doc import json_answer
from remotesign.core import scopes
from remotesign.core.activation import ActivationError
from remotesign.core.devices import DeviceError
from remotesign.core.identities import IdentityError, Viewer
from remotesign.core.tenants import TenantError, TokenInfo
from remotesign.core.users import UserError
from remotesign.keystore import KeyAlgorithm, KeyStoreError
from remotesign.service import Services
from remotesign.trust.ca import CertificateError
from remotesign.trust.profiles import ProfileError

router = APIRouter(prefix="/v1", tags=["admin"])
Admin = Depends(require_scope(scopes.USERS))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(Strict):
    username: str = Field(min_length=1, max_length=200)
    display_name: str = Field(min_length=1, max_length=200)
    kind: Literal["natural", "legal"] = "natural"
    password: str | None = Field(default=None, max_length=1024)
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    serial_number: str | None = Field(default=None, max_length=64)


class UserPatch(Strict):
    enabled: bool | None = None
    password: str | None = Field(default=None, max_length=1024)
    display_name: str | None = Field(default=None, max_length=200)


class IdentityCreate(Strict):
    algorithm: KeyAlgorithm = KeyAlgorithm.RSA_2048
    labels: list[str] | None = Field(default=None, max_length=32)
    pin: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=200)


class ActivationRequest(Strict):
    purpose: Literal["activate", "reset", "device"] = Field(
        default="activate", description="activate: first password and PIN; reset: new ones, every lock lifted; "
                                        "device: pair an approval app")


class IdentityPatch(Strict):
    status: Literal["enabled", "disabled"] | None = None
    reason: str | None = Field(default=None, max_length=200)
    labels: list[str] | None = Field(default=None, max_length=32)
    pin: str | None = Field(default=None, max_length=64)


class RedirectUris(Strict):
    redirect_uris: list[str] = Field(max_length=20)


def _fail(exc: Exception) -> ApiError:
    code = getattr(exc, "code", "invalid_request")
    status = getattr(exc, "status", 404 if code == "not_found" else 409 if code == "username_taken" else 400)
    return ApiError(status, code, getattr(exc, "message", str(exc)))


_SECRETS = ("the relying party never sets a user's {what}: the user chooses it on the service's activation page "
            "with a one-time code sent through their own channel (POST /v1/users/{{id}}/activation)")


def _no_secret(value: object, what: str) -> None:
    if value is not None:
        raise ApiError(400, "secret_not_allowed", _SECRETS.format(what=what))


def _user(svc: Services, caller: TokenInfo, user_id: str) -> Any:
    try:
        return svc.users.get(user_id, caller.tenant_id)
    except UserError as exc:
        raise _fail(exc) from exc


@router.post("/users", status_code=201, summary="Enrol an end user of this relying party", response_model=None,
             responses=json_answer(CreatedUser, "The new user; activation says whether the code was sent", 201))
def create_user(body: UserCreate, caller: TokenInfo = Admin, svc: Services = Depends(services)) -> dict[str, Any]:
    _no_secret(body.password, "password")
    try:
        user = svc.users.create(tenant_id=caller.tenant_id, username=body.username, display_name=body.display_name,
                                kind=body.kind, email=body.email, phone=body.phone,
                                serial_number=body.serial_number, actor=caller.client_id)
    except UserError as exc:
        raise _fail(exc) from exc
    return {**user.as_json(), "activation": _send_code(svc, caller, user, "activate", quiet=True)}


def _send_code(svc: Services, caller: TokenInfo, user: Any, purpose: str, *, quiet: bool = False) -> dict[str, Any]:
    """Have the service send ``purpose``'s code to the user's own channel; the caller never sees it."""
    try:
        channel = svc.activation.send(user, purpose, actor=caller.client_id)
    except ActivationError as exc:
        if not quiet:
            raise _fail(exc) from exc
        return {"status": "pending", "channel": "operator", "message": exc.message}
    return {"status": "sent", "channel": channel}


@router.get("/users", summary="This relying party's end users", response_model=None,
            responses=json_answer(AdminUsers, "The users"))
def list_users(caller: TokenInfo = Admin, svc: Services = Depends(services)) -> dict[str, Any]:
    return {"users": [u.as_json() for u in svc.users.list(caller.tenant_id)]}


@router.get("/users/{user_id}", response_model=None, responses=json_answer(AdminUser, "The user"))
def get_user(user_id: str, caller: TokenInfo = Admin, svc: Services = Depends(services)) -> dict[str, Any]:
    return _user(svc, caller, user_id).as_json()  # type: ignore[no-any-return]


@router.patch("/users/{user_id}", summary="Enable / disable, rename", response_model=None,
              responses=json_answer(AdminUser, "The user as changed"))
def patch_user(user_id: str, body: UserPatch, caller: TokenInfo = Admin,
               svc: Services = Depends(services)) -> dict[str, Any]:
    _no_secret(body.password, "password")
    try:
        user = svc.users.update(user_id, caller.tenant_id, enabled=body.enabled,
                                display_name=body.display_name, actor=caller.client_id)
    except UserError as exc:
        raise _fail(exc) from exc
    return user.as_json()  # type: ignore[no-any-return]


@router.post("/users/{user_id}/activation", status_code=202,
             summary="Send the user a one-time code (activation, reset or device pairing) by their own e-mail",
             response_model=None, responses=json_answer(ActivationSent, "The code went out", 202))
def send_activation(user_id: str, body: ActivationRequest, caller: TokenInfo = Admin,
                    svc: Services = Depends(services)) -> dict[str, Any]:
    user = _user(svc, caller, user_id)
    return _send_code(svc, caller, user, body.purpose)


@router.delete("/users/{user_id}", status_code=204)
def delete_user(user_id: str, caller: TokenInfo = Admin, svc: Services = Depends(services)) -> Response:
    _user(svc, caller, user_id)
    for identity in svc.identities.list(Viewer(caller.tenant_id), user_id=user_id):
        svc.identities.delete(identity.id, Viewer(caller.tenant_id), actor=caller.client_id)
    try:
        svc.users.delete(user_id, caller.tenant_id, actor=caller.client_id)
    except UserError as exc:
        raise _fail(exc) from exc
    return Response(status_code=204)


@router.post("/users/{user_id}/identities", status_code=201,
             summary="Create a sign identity: a new key and a certificate from the built-in CA",
             response_model=None,
             responses=json_answer(SignIdentityAnswer, "The new identity, with its certificate", 201))
def create_identity(user_id: str, body: IdentityCreate, caller: TokenInfo = Admin,
                    svc: Services = Depends(services)) -> dict[str, Any]:
    _no_secret(body.pin, "PIN")
    user = _user(svc, caller, user_id)
    try:
        identity = svc.identities.create(user, algorithm=body.algorithm, labels=body.labels,
                                         description=body.description, actor=caller.client_id)
    except (IdentityError, KeyStoreError, CertificateError, ProfileError) as exc:
        raise _fail(exc) from exc
    return {"identity": identity.esigp_json(svc.base_url, details=True)}


@router.get("/users/{user_id}/identities", response_model=None,
            responses=json_answer(SignIdentitiesAnswer, "The user's identities"))
def list_identities(user_id: str, caller: TokenInfo = Admin, svc: Services = Depends(services)) -> dict[str, Any]:
    _user(svc, caller, user_id)
    found = svc.identities.list(Viewer(caller.tenant_id), user_id=user_id)
    return {"sign_identities": [i.esigp_json(svc.base_url) for i in found]}


@router.patch("/identities/{identity_id}", summary="Enable / disable, relabel", response_model=None,
              responses=json_answer(SignIdentityAnswer, "The identity as changed"))
def patch_identity(identity_id: str, body: IdentityPatch, caller: TokenInfo = Admin,
                   svc: Services = Depends(services)) -> dict[str, Any]:
    _no_secret(body.pin, "PIN")
    try:
        identity = svc.identities.update(identity_id, Viewer(caller.tenant_id), status=body.status,
                                         reason=body.reason, labels=body.labels, actor=caller.client_id)
    except IdentityError as exc:
        raise _fail(exc) from exc
    return {"identity": identity.esigp_json(svc.base_url, details=True)}


@router.delete("/identities/{identity_id}", status_code=204)
def delete_identity(identity_id: str, caller: TokenInfo = Admin, svc: Services = Depends(services)) -> Response:
    try:
        svc.identities.delete(identity_id, Viewer(caller.tenant_id), actor=caller.client_id)
    except IdentityError as exc:
        raise _fail(exc) from exc
    return Response(status_code=204)


@router.get("/users/{user_id}/devices", response_model=None,
            responses=json_answer(AdminDevices, "The user's approval devices"))
def list_devices(user_id: str, caller: TokenInfo = Admin, svc: Services = Depends(services)) -> dict[str, Any]:
    _user(svc, caller, user_id)
    return {"devices": [d.as_json() for d in svc.devices.list(user_id)]}


@router.delete("/users/{user_id}/devices/{device_id}", status_code=204)
def remove_device(user_id: str, device_id: str, caller: TokenInfo = Admin,
                  svc: Services = Depends(services)) -> Response:
    _user(svc, caller, user_id)
    try:
        svc.devices.remove(device_id, user_id, actor=caller.client_id)
    except DeviceError as exc:
        raise _fail(exc) from exc
    return Response(status_code=204)


@router.get("/client", summary="This relying party's OAuth client registration", response_model=None,
            responses=json_answer(ClientRegistration, "The registration"))
def get_client(caller: TokenInfo = Admin, svc: Services = Depends(services)) -> dict[str, Any]:
    client = svc.tenants.by_client_id_or_id(caller.tenant_id)
    return {"client_id": client.client_id, "name": client.name, "scopes": list(client.allowed_scopes),
            "redirect_uris": list(client.redirect_uris)}


@router.get("/client/callback-secret", summary="The key that signs this client's callbacks (HMAC-SHA256)",
            response_model=None, responses=json_answer(CallbackSecret, "The key"))
def get_callback_secret(caller: TokenInfo = Admin, svc: Services = Depends(services)) -> dict[str, Any]:
    return _callback_secret(svc.tenants.callback_secret(caller.tenant_id, actor=caller.client_id))


@router.post("/client/callback-secret", summary="Replace the key that signs this client's callbacks",
             response_model=None, responses=json_answer(CallbackSecret, "The new key"))
def rotate_callback_secret(caller: TokenInfo = Admin, svc: Services = Depends(services)) -> dict[str, Any]:
    return _callback_secret(svc.tenants.callback_secret(caller.tenant_id, rotate=True, actor=caller.client_id))


def _callback_secret(secret: bytes) -> dict[str, Any]:
    return {"callback_secret": base64.b64encode(secret).decode("ascii"), "algorithm": "HMAC-SHA256",
            "signed": "<X-Remotesign-Timestamp>.<body>", "header": "X-Remotesign-Signature: sha256=<hex>"}


@router.put("/client/redirect-uris", summary="Register the exact redirect URIs of the authorization-code flow",
            response_model=None, responses=json_answer(RedirectUrisAnswer, "The registered redirect URIs"))
def put_redirect_uris(body: RedirectUris, caller: TokenInfo = Admin,
                      svc: Services = Depends(services)) -> dict[str, Any]:
    try:
        client = svc.tenants.set_redirect_uris(caller.client_id, body.redirect_uris, actor=caller.client_id)
    except TenantError as exc:
        raise ApiError(400, "invalid_redirect_uri", str(exc)) from exc
    return {"client_id": client.client_id, "redirect_uris": list(client.redirect_uris)}
