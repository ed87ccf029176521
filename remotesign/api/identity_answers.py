"""The shape of a sign identity as the eSigP resources and the admin API answer it, for the
description only: ``IdentityInfo.esigp_json`` (core/identities.py) builds the JSON, and these models
say what it holds (a listing carries no ``details``; a single read, a creation and an import do)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.openapi_doc import absent

_FIXED = ConfigDict(extra="forbid")


class SignIdentityAccess(BaseModel):
    model_config = _FIXED
    user_id: str = Field(description="the identity's owner")
    permissions: list[Literal["sign"]]


class SignIdentityOAuth2(BaseModel):
    model_config = _FIXED
    scopes: list[str]


class SignIdentityAuth(BaseModel):
    model_config = _FIXED
    oauth2: SignIdentityOAuth2


class SignIdentityLink(BaseModel):
    model_config = _FIXED
    auth: SignIdentityAuth


class SignIdentityLinks(BaseModel):
    """What each signature operation with the identity takes: the scope of the user's token."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    server_raw: SignIdentityLink = Field(alias="Signatures.create.server.raw")
    device_raw: SignIdentityLink = Field(alias="Signatures.create.device.raw")


class SignIdentityStatus(BaseModel):
    model_config = _FIXED
    value: Literal["enabled", "disabled"]
    reason: str = absent("why it was disabled, when a reason was given")


class SignIdentityDetails(BaseModel):
    model_config = _FIXED
    certificate: str = Field(description="base64 DER")
    certificate_chain: list[str] = Field(description="base64 DER, the issuers")
    public_key: str = Field(description="base64 DER SubjectPublicKeyInfo")
    activation_mode: Literal["pin", "none"] = Field(description="pin: signing takes the user's PIN")
    subject: str = Field(description="RFC 4514")
    issuer: str = Field(description="RFC 4514")
    serial_number: str = Field(description="hexadecimal, lower case")
    not_before: datetime
    not_after: datetime


class SignIdentity(BaseModel):
    """A sign identity as listed (no ``details``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    id: str
    self_: str = Field(alias="self", description="the identity's URL")
    description: str
    labels: list[str]
    type: Literal["pki:x509"]
    domain: str = Field(description="citizen, organization, …")
    access: list[SignIdentityAccess]
    links: SignIdentityLinks
    status: SignIdentityStatus


class DetailedSignIdentity(SignIdentity):
    """A sign identity read alone, created or imported: with its certificate."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    details: SignIdentityDetails


class SignIdentityAnswer(BaseModel):
    model_config = _FIXED
    identity: DetailedSignIdentity


class SignIdentitiesAnswer(BaseModel):
    model_config = _FIXED
    sign_identities: list[SignIdentity]
