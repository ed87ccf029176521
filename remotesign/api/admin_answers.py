"""The shapes of the admin API's answers (api/admin.py), for the description only: the handlers build
their JSON themselves (``UserInfo.as_json``, ``DeviceInfo.as_json``; identities as in
identity_answers.py), and these models say what it holds."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.openapi_doc import absent

_FIXED = ConfigDict(extra="forbid")


class AdminUser(BaseModel):
    """An end user of the relying party (``UserInfo.as_json``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"id": "0b6c1f3e-6f5e-4a57-9d0c-2a1f8f0e9b11", "username": "anna", "display_name": "Anna Paraksta",
         "kind": "natural", "email": "anna@example.test", "phone": None, "serial_number": "PNOLV-010101-12345",
         "enabled": True, "has_password": True, "service_wide": False, "locked_until": None,
         "locked_permanently": False, "activated": True, "created_at": "2025-01-01T08:00:00.000000+00:00"}]})
    id: str
    username: str
    display_name: str
    kind: Literal["natural", "legal"]
    email: str | None
    phone: str | None
    serial_number: str | None = Field(description="e.g. PNOLV-010101-12345 (a qualified certificate needs one)")
    enabled: bool
    has_password: bool = Field(description="the user has chosen a password (activation)")
    service_wide: bool = Field(description="a user no relying party owns (never in this API's own lists)")
    locked_until: datetime | None = Field(description="a login lock in force until then")
    locked_permanently: bool
    activated: bool
    created_at: datetime


class Activation(BaseModel):
    """Whether the service sent the user a one-time code (the relying party never sees it)."""

    model_config = _FIXED
    status: Literal["sent", "pending"] = Field(description="pending: no code could be sent; the operator issues it")
    channel: str = Field(description="email when sent; operator when pending")
    message: str = absent("pending: why no code was sent")


class ActivationSent(Activation):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "sent", "channel": "email"}]})
    status: Literal["sent"]


class CreatedUser(AdminUser):
    """The new user, and whether the activation code went out."""

    model_config = _FIXED
    activation: Activation


class AdminUsers(BaseModel):
    model_config = _FIXED
    users: list[AdminUser]


class AdminDevice(BaseModel):
    """A registered approval device (``DeviceInfo.as_json``)."""

    model_config = _FIXED
    id: str
    user_id: str
    name: str
    status: str = Field(description="enabled or disabled")
    created_at: datetime
    public_key: str = Field(description="base64 DER SubjectPublicKeyInfo")


class AdminDevices(BaseModel):
    model_config = _FIXED
    devices: list[AdminDevice]


class ClientRegistration(BaseModel):
    model_config = _FIXED
    client_id: str
    name: str
    scopes: list[str]
    redirect_uris: list[str]


class CallbackSecret(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"callback_secret": "3q2+7w…", "algorithm": "HMAC-SHA256", "signed": "<X-Remotesign-Timestamp>.<body>",
         "header": "X-Remotesign-Signature: sha256=<hex>"}]})
    callback_secret: str = Field(description="base64 of the HMAC key")
    algorithm: Literal["HMAC-SHA256"]
    signed: str = Field(description="what the key signs")
    header: str = Field(description="where the signature is sent")


class RedirectUrisAnswer(BaseModel):
    model_config = _FIXED
    client_id: str
    redirect_uris: list[str]
