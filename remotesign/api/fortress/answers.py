"""The shapes of the Fortress-style API's answers, for the description only: the handlers
(signature.py, extend.py, users.py) build their JSON themselves, and these models say what it holds."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

_FIXED = ConfigDict(extra="forbid")
MILLIS = "milliseconds since the epoch"


class FortressSignatureCreated(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"exeCode": "6a1f0c9e-2b7d-4e35-8c14-0f9a3d2e7b51", "authCode": "Xq3v…"},
        {"exeCode": "6a1f0c9e-2b7d-4e35-8c14-0f9a3d2e7b51", "authCode": None}]})
    exeCode: str = Field(description="names the request in execute and state")
    authCode: str | None = Field(description="interactive: what the authorization URI carries; unattended: null")


class FortressSignedDocument(BaseModel):
    model_config = _FIXED
    ref: str = Field(description="the configuration's ref (or one made up)")
    bytesB64: str = Field(description="the signed document, the signature (DETACHED, PKCS1) or the time-stamp "
                                      "token (extend of PKCS1), Base64")


class FortressSignedDocuments(RootModel[list[FortressSignedDocument]]):
    """One entry per signature configuration, in order."""


class FortressExtended(RootModel[FortressSignedDocument | Annotated[list[FortressSignedDocument],
                                                                    Field(min_length=2)]]):
    """One configuration: its result alone; several: an array of them, in order."""


class FortressStateDocument(BaseModel):
    model_config = _FIXED
    ref: str
    name: str


class FortressSignatureState(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    exeCode: str
    status: Literal["PENDING", "AUTHORIZED", "EXECUTING", "DONE", "FAILED", "DENIED"]
    mode: Literal["INTERACTIVE", "UNATTENDED"]
    certificateCode: str | None = Field(description="the identity that signs (once chosen)")
    documents: list[FortressStateDocument]
    error: str | None = Field(description="FAILED or DENIED: the error code")
    error_description: str | None
    async_: bool = Field(alias="async")
    callbackUrl: str | None
    callbackStatus: Literal["NONE", "PENDING", "DELIVERED", "FAILED"]
    callbackAttempts: int
    callbackError: str | None
    dateCreated: int = Field(description=MILLIS)
    dateExpired: int = Field(description=MILLIS)
    dateFinished: int | None = Field(description=MILLIS)


class FortressCertificate(BaseModel):
    """An active certificate of the user: its identity enabled, the certificate valid now."""

    model_config = _FIXED
    code: str = Field(description="the sign identity's id (certificateCode)")
    name: str = Field(description="the identity's first label, else the subject")
    description: str
    dateIssued: int = Field(description=MILLIS)
    dateExpired: int = Field(description=MILLIS)
    serialNumber: str = Field(description="upper-case hexadecimal")
    issuer: str = Field(description="RFC 4514")
    subject: str = Field(description="RFC 4514")
    pem: str


class FortressCertificates(RootModel[list[FortressCertificate]]):
    """The user's active certificates."""


class FortressUser(BaseModel):
    model_config = _FIXED
    code: str = Field(description="the userCode: the user name")
    name: str
    email: str | None
    mobile: str | None
    lastAccess: None = Field(description="not recorded: always null")
    role: Literal["ROLE_USER"]
    certificates: list[FortressCertificate]


class FortressUserStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"auth": True, "sign": True}]})
    auth: bool = Field(description="enabled, activated and not locked")
    sign: bool = Field(description="auth, and an active certificate")


class FortressPing(BaseModel):
    model_config = _FIXED
    status: Literal["ok"]
