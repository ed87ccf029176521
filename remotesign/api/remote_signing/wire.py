"""Request bodies of the Remote Signing API and their reading: any body that is not the JSON the
spec describes (malformed JSON, wrong types, bad base64 or hex, unknown enumeration values) is a
1002 INVALID PARAMS naming the field, never a 500. Unknown members are ignored, as the vendor's
SignCloud clients send more than the spec lists."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, ClassVar, TypeVar

from fastapi import Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from remotesign.api.remote_signing.answers import Refusal

ModelT = TypeVar("ModelT", bound=BaseModel)
ID_MAX = 32


def _text(value: Any) -> Any:
    """Numbers where the spec says string (``"mobileNo": 123456789``) are read as their text."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


Text = Annotated[str, BeforeValidator(_text)]


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class RsAgreementDetails(Wire):
    personalName: Text | None = Field(None, max_length=200)
    organization: Text | None = Field(None, max_length=200)
    organizationUnit: Text | None = Field(None, max_length=200)
    title: Text | None = Field(None, max_length=200)
    email: Text | None = Field(None, max_length=128)
    telephoneNumber: Text | None = Field(None, max_length=40)
    location: Text | None = Field(None, max_length=200)
    stateOrProvince: Text | None = Field(None, max_length=200)
    country: Text | None = Field(None, max_length=2)
    personalID: Text | None = Field(None, max_length=ID_MAX)
    passportID: Text | None = Field(None, max_length=ID_MAX)
    citizenID: Text | None = Field(None, max_length=ID_MAX)
    taxID: Text | None = Field(None, max_length=ID_MAX)
    budgetID: Text | None = Field(None, max_length=ID_MAX)
    # scanned registration documents (base64), kept as the registration's evidence
    applicationForm: str | None = None
    authorizeLetter: str | None = None
    businessLicense: str | None = None
    photoActivityDeclaration: str | None = None
    photoAuthorizeDelegate: str | None = None
    photoIDCard: str | None = None
    photoFrontSideIDCard: str | None = None
    photoBackSideIDCard: str | None = None
    requestForm: str | None = None

    DOCUMENTS: ClassVar[tuple[str, ...]] = ("applicationForm", "authorizeLetter", "businessLicense", "photoActivityDeclaration",
                 "photoAuthorizeDelegate", "photoIDCard", "photoFrontSideIDCard", "photoBackSideIDCard", "requestForm")


class RsRegister(Wire):
    agreementDetails: RsAgreementDetails
    agreementUUID: Text | None = Field(None, max_length=64)
    email: Text | None = Field(None, max_length=128)
    mobileNo: Text | None = Field(None, max_length=16)
    sharedMode: int = Field(1, ge=1, le=3)
    certificateProfile: Text | None = Field(None, max_length=40)
    ownerEmail: Text | None = Field(None, max_length=128)
    ownerMobileNo: Text | None = Field(None, max_length=16)
    ownerUUID: Text = Field(..., min_length=1, max_length=200)
    acceptedApps: list[Text] = Field(default_factory=list, max_length=50)
    passCodeNotificationMethod: Text = "EMAIL"
    sharedAgreementUUID: Text | None = Field(None, max_length=64)
    sharedRelyingParty: Text | None = Field(None, max_length=200)
    notificationTemplate: Text | None = Field(None, max_length=1000)
    notificationMessage: Text | None = Field(None, max_length=1000)
    notificationSubject: Text | None = Field(None, max_length=200)


class RsChange(Wire):
    agreementUUID: Text = Field(..., min_length=1, max_length=64)
    agreementDetails: RsAgreementDetails


class RsAgreementCall(Wire):
    agreementUUID: Text = Field(..., min_length=1, max_length=64)


class RsChangePin(RsAgreementCall):
    currentPasscode: Text = Field(..., max_length=64)
    newPasscode: Text = Field(..., max_length=64)


class RsForgetPin(RsAgreementCall):
    notificationMessage: Text | None = Field(None, max_length=1000)
    notificationTemplate: Text | None = Field(None, max_length=1000)
    notificationSubject: Text | None = Field(None, max_length=200)


class RsRenew(RsAgreementCall):
    certificateProfile: Text | None = Field(None, max_length=40)


class RsSignHash(RsAgreementCall):
    authMode: Text = "EXPLICIT/PIN"
    authorizeCode: Text | None = Field(None, max_length=64)
    encryption: Text = "RSA"
    hash: str | None = Field(None, max_length=200)
    hashs: list[str] | None = Field(None, max_length=100)
    hashAlgorithm: Text = Field(..., max_length=20)
    mimeType: Text = Field(..., max_length=60)
    signingApp: Text | None = Field(None, max_length=60)
    notificationTemplate: Text | None = Field(None, max_length=1000)
    notificationSubject: Text | None = Field(None, max_length=200)


class RsFileData(Wire):
    """One file of ``multipleSigningFileData``, with its own metadata."""

    signingFileData: str
    signingFileName: Text | None = Field(None, max_length=255)
    mimeType: Text = Field(..., max_length=100)
    signCloudMetaData: dict[str, Any] | None = None


class RsSignFile(RsAgreementCall):
    authMode: Text = "EXPLICIT/PIN"
    authorizeCode: Text | None = Field(None, max_length=64)
    mimeType: Text | None = Field(None, max_length=100)
    signingFileData: str | None = None
    signingFileName: Text | None = Field(None, max_length=255)
    signCloudMetaData: dict[str, Any] | None = None
    multipleSigningFileData: list[RsFileData] | None = Field(None, max_length=20)
    signingApp: Text | None = Field(None, max_length=60)
    notificationTemplate: Text | None = Field(None, max_length=1000)
    notificationSubject: Text | None = Field(None, max_length=200)


class RsAuthorize(RsAgreementCall):
    billCode: Text = Field(..., min_length=1, max_length=64)
    authorizeCode: Text = Field(..., max_length=64)
    signCloudMetaData: dict[str, Any] | None = None  # read at the request; the signer authorized that


class RsLogin(Wire):
    username: Text = Field(..., max_length=200)
    password: Text = Field(..., max_length=1024)
    rpCode: Text = Field(..., max_length=200)


async def read(request: Request, model: type[ModelT]) -> ModelT:
    """The request's JSON body as ``model``, or a 1002 naming what is wrong."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(x) for x in err.get("loc", ()))
            kind = err.get("type", "")
            parts.append("the body is not JSON" if kind == "json_invalid" else f"{loc}: {err.get('msg')}" if loc
                         else str(err.get("msg")))
        raise Refusal(1002, "; ".join(parts) or "invalid request") from None


def decode_base64(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(re.sub(r"\s+", "", value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Refusal(1002, f"{field} is not base64") from exc


def decode_hash(value: str, size: int, field: str) -> bytes:
    """A hash given in hexadecimal (as the spec's example) or base64, of ``size`` bytes."""
    text = value.strip()
    if len(text) == 2 * size and re.fullmatch(r"[0-9A-Fa-f]+", text):
        return bytes.fromhex(text)
    digest = decode_base64(text, field)
    if len(digest) != size:
        raise Refusal(1002, f"{field} is not a hash of {size} bytes (hexadecimal or base64)")
    return digest
