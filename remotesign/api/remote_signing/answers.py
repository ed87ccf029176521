"""The Remote Signing API's answers: the ``responseCode`` table, the body every business answer
carries, the LoopBack-style ``{"error": {"statusCode", "name", "message"}}`` of transport errors,
and the mapping of the core's refusals onto the table.

HTTP status: business outcomes are 200 with their ``responseCode`` (as the vendor's clients read
them); input the service cannot read (1002) is 400; a missing, forged or expired token is 401
(1001 / 1029) and a call from a network the client is not allowed to use 403 (1000), both also in
the LoopBack error shape the login documents; an unexpected failure is 500 (1003).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.openapi_doc import absent
from remotesign.core.errors import CoreError

MESSAGES: dict[int, str] = {
    0: "SUCCESSFULLY",
    1000: "INVALID IP ADDRESS",
    1001: "INVALID CREDENTIAL DATA",
    1002: "INVALID PARAMS",
    1003: "UNEXPECTED EXCEPTION",
    1004: "INVALID AUTHORIZATION CODE",
    1005: "AUTHORIZATION BLOCKED",
    1006: "AUTHORIZATION CODE TIMEOUT",
    1007: "REQUEST ACCEPTED",
    1008: "AGREEEMENT NOT FOUND",
    1009: "CERTIFICATE IS NOT ENROLLED",
    1010: "AGREEMENT EXISTED",
    1011: "UNSUPPORTED OPERATION",
    1012: "ACCESS DENIED",
    1013: "AGREEMENT NOT READY",
    1014: "CERTIFICATE IS EXPIRED",
    1015: "BILLCODE TIMEOUT DUE TO UNEXPECTED EXCEPTION WHILE SIGNING",
    1016: "FILE IS BEING PROCESSED",
    1017: "AGREEMENT REVOKED",
    1018: "SUCCESSFULLY. YOUR PASSCODE NEED TO BE CHANGED",
    1019: "FUNCTION ACCESS DENIED",
    1020: "FAILED TO CHECK REVOCATION",
    1021: "CERTIFICATE REVOKED",
    1022: "CERTIFICATE UNKNOWN",
    1023: "SHARED AGREEMENT NOT FOUND",
    1024: "SHARED AGREEMENT INVALID SHARED MODE",
    1025: "FILE NOT FOUND",
    1026: "MULTIPLE CLIENT MACHINE YSING THE SAME AGREEMENT UUID",
    1027: "TRANSACTION NOT FINISHED",
    1028: "EMAIL HAS BEEN REGISTERED",
    1029: "CREDENTIALS HAVE BEEN EXPIRED",
}

# the core's refusal codes (core/agreements.py, core/signing_transactions.py) on the table
CORE_CODES: dict[str, int] = {
    "not_found": 1008, "exists": 1010, "email_registered": 1028, "shared_not_found": 1023,
    "shared_mode_invalid": 1024, "access_denied": 1012, "app_not_accepted": 1012, "disabled": 1013,
    "revoked": 1017, "certificate_expired": 1014, "certificate_revoked": 1021,
    "passcode_wrong": 1004, "code_wrong": 1004, "code_used": 1004, "passcode_blocked": 1005, "code_blocked": 1005,
    "code_expired": 1006, "in_progress": 1016, "failed": 1015, "signing_failed": 1015,
    "file_not_found": 1025, "no_seal": 1011, "document_locked": 1011, "anchor_not_found": 1002, "not_enrolled": 1009, "not_pending": 1009, "transaction_pending": 1027, "other_client": 1026, "unsupported": 1011, "channel_unavailable": 1011,
    "invalid_request": 1002, "invalid_details": 1002, "invalid_contact": 1002, "immutable_detail": 1002,
    "invalid_passcode": 1002, "unknown_product": 1002, "no_channel": 1002, "unknown_transaction": 1002,
}
_LOOPBACK_NAMES = {400: "BadRequestError", 401: "UnauthorizedError", 403: "ForbiddenError", 404: "NotFoundError",
                   405: "MethodNotAllowedError", 413: "PayloadTooLargeError", 429: "TooManyRequestsError",
                   500: "InternalServerError", 503: "ServiceUnavailableError"}


def timestamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Refusal(Exception):
    """An answer with a failure ``code`` of the table, raised anywhere in a route."""

    def __init__(self, code: int, detail: str, **fields: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.fields = fields


def answer(code: int, **fields: Any) -> JSONResponse:
    """A business answer: HTTP 200 (400 for 1002) with the code, its message and ``fields``."""
    body = {"responseCode": code, "responseMessage": MESSAGES[code], "timestamp": timestamp(),
            "status": code in (0, 1007, 1018), **{k: v for k, v in fields.items() if v is not None}}
    return JSONResponse(body, status_code=400 if code == 1002 else 500 if code == 1003 else 200)


def refused(exc: Refusal) -> JSONResponse:
    if exc.code in (1000, 1001, 1029):
        status = 403 if exc.code == 1000 else 401
        return transport_error(status, exc.detail, exc.code)
    return answer(exc.code, detail=exc.detail, **exc.fields)


def from_core(exc: CoreError) -> Refusal:
    code = CORE_CODES.get(exc.code, 1003 if exc.status >= 500 else 1002 if exc.status == 400 else 1012)
    extra = getattr(exc, "extra", {}) or {}
    fields: dict[str, Any] = {}
    if "remaining" in extra:
        fields["remainingCounter"] = extra["remaining"]
    if extra.get("locked_until") is not None:
        fields["blockedUntil"] = extra["locked_until"].isoformat(timespec="seconds")
    return Refusal(code, exc.message, **fields)


def transport_error(status: int, message: str, code: int | None = None) -> JSONResponse:
    """The LoopBack-style error of the login (401), also carrying the table's code."""
    code = code if code is not None else {401: 1001, 403: 1000, 400: 1002, 413: 1002, 422: 1002}.get(
        status, 1003 if status >= 500 else 1002)
    body = {"error": {"statusCode": str(status), "name": _LOOPBACK_NAMES.get(status, "Error"), "message": message},
            "responseCode": code, "responseMessage": MESSAGES[code], "status": False}
    headers = {"WWW-Authenticate": 'Bearer realm="remotesign"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


# -- The answers' shapes, for the description only: ``answer`` above and the routes build the JSON;
# these models say what it holds (a generated client reads them; tests/test_openapi_answers.py
# checks real answers against them).

#: the codes answered with HTTP 200: the others are 400 (1002), 500 (1003), 401 / 403 (transport_error)
CODES_AT_200 = tuple(code for code in MESSAGES if code not in (1000, 1001, 1002, 1003, 1029))


class RsAnswer(BaseModel):
    """A business answer (HTTP 200): ``responseCode`` 0, 1007 or 1018 succeeds (``status`` true) and
    carries the operation's fields; any other code is a refusal carrying ``detail`` and none of them."""

    model_config = ConfigDict(extra="forbid")
    responseCode: int = Field(json_schema_extra={"enum": list(CODES_AT_200)})
    responseMessage: str = Field(json_schema_extra={"enum": [MESSAGES[code] for code in CODES_AT_200]})
    timestamp: str = Field(json_schema_extra={"format": "date-time"})
    status: bool = Field(description="true for 0, 1007 and 1018")
    detail: str = absent("a refusal: what is wrong")
    remainingCounter: int = absent("attempts left after a wrong passcode or code (and after change-pin)")
    blockedUntil: str = absent("a refusal 1005: until when the passcode is blocked (ISO 8601)")


class RsBillAnswer(RsAnswer):
    """change-pin, forget-pin, renew, revoke, enable, disable: 1007 with a ``billCode``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"responseCode": 1007, "responseMessage": "REQUEST ACCEPTED", "timestamp": "2025-01-01T08:00:00+00:00",
         "status": True, "billCode": "3c6f8e2a9b1d4f70"}]})
    billCode: str = absent("the call's transaction id")


class RsAgreementAnswer(RsBillAnswer):
    """register and change: 1007 naming the agreement."""

    ownerUUID: str = absent()
    agreementUUID: str = absent()


class RsDetailAnswer(RsAgreementAnswer):
    """get-detail: 1007 with the agreement's certificate."""

    certificateDN: str = absent("RFC 4514")
    certificateSerialNumber: str = absent("hexadecimal")
    certificateThumbprint: str = absent("SHA-1, hexadecimal")
    validFrom: str = absent("ISO 8601")
    validTo: str = absent("ISO 8601")
    issuerDN: str = absent("RFC 4514")
    certificate: str = absent("base64 DER")
    certificateChain: list[str] = absent("base64 DER, the issuers")
    sharedMode: int = absent("1 private, 2 shared with relying parties, 3 shared with an agreement",
                             enum=[1, 2, 3])
    authModeSupported: list[str] = absent("EXPLICIT/PIN, and the one-time-code modes the owner can receive")
    certificateProfile: str = absent()
    agreementStatus: str = absent("present unless the agreement is active: DISABLED, REVOKED, PENDING, …")


class RsHashAuthorizedAnswer(RsBillAnswer):
    """hash/authorize: 0 with the signature values (base64)."""

    signatureValue: str = absent("of ``hash`` (hash/authorize: of the first digest)")
    signatureValues: list[str] = absent("of ``hashs``, in order (hash/authorize: of every digest)")


class RsHashAnswer(RsHashAuthorizedAnswer):
    """hash: 0 or 1018 with the signature values, or 1007 with a code sent to the owner."""

    authorizeCredential: str = absent("1007: where the code went (masked)")
    notificationTemplate: str = absent("1007: echoed")
    notificationSubject: str = absent("1007: echoed")


class RsSignedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signedFileData: str = Field(description="base64")
    mimeType: str
    signedFileName: str
    signedFileUUID: str


class RsFileAuthorizedAnswer(RsBillAnswer):
    """file/authorize: 0 with the signed files (the first also at the top level)."""

    signedFileData: str = absent("base64 of the first signed file")
    mimeType: str = absent()
    signedFileName: str = absent()
    signedFileUUID: str = absent()
    multipleSignedFileData: list[RsSignedFile] = absent()


class RsFileAnswer(RsFileAuthorizedAnswer):
    """file: 0 or 1018 with the signed files, or 1007 with a code sent to the owner."""

    authorizeCredential: str = absent("1007: where the code went (masked)")
    ignoredMetaData: list[str] = absent("signCloudMetaData keys not acted on")


class RsDownloadedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fileName: str
    base64: str
    mimeType: str


class RsDownloadAnswer(RsAnswer):
    """0 with the billCode's signed files."""

    billCode: str = absent()
    signedFiles: list[RsDownloadedFile] = absent()


def documented(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of an operation whose 200 answer ``model`` describes."""
    return {200: {"model": model, "description": "The outcome: its responseCode, and the operation's fields"}}


class RsLoginAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"token": "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9…", "expiresIn": 3600}]})
    token: str = Field(description="the JWT to send as a Bearer token")
    expiresIn: int = Field(description="seconds")


# -- The error answers, as sent (``answer`` with 1002 / 1003, ``transport_error``): documented for
# every error status of the API by api/openapi_doc.py (``register_error_bodies`` in __init__.py).

#: the codes answered with an error status: 1002 (400) and 1003 (500) by ``answer``; 1000 (403),
#: 1001 and 1029 (401), 1002 (400, 404, 413, …) and 1003 (500, 503) by ``transport_error``
ERROR_CODES = (1000, 1001, 1002, 1003, 1029)


class RsRefusedAnswer(BaseModel):
    """A business answer at an error status: 1002 INVALID PARAMS (HTTP 400: the input cannot be
    read, ``detail`` names the field) or 1003 UNEXPECTED EXCEPTION (HTTP 500)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"responseCode": 1002, "responseMessage": "INVALID PARAMS", "timestamp": "2025-01-01T08:00:00+00:00",
         "status": False, "detail": "agreementUUID: Field required"}]})
    responseCode: int = Field(json_schema_extra={"enum": [1002, 1003]})
    responseMessage: str = Field(json_schema_extra={"enum": [MESSAGES[1002], MESSAGES[1003]]})
    timestamp: str = Field(json_schema_extra={"format": "date-time"})
    status: bool = Field(json_schema_extra={"const": False})
    detail: str = Field(description="what is wrong")
    remainingCounter: int = absent()
    blockedUntil: str = absent()


class RsLoopBackError(BaseModel):
    model_config = ConfigDict(extra="forbid")
    statusCode: str = Field(description="the HTTP status, as text", examples=["401"])
    name: str = Field(description="UnauthorizedError, ForbiddenError, BadRequestError, PayloadTooLargeError, …",
                      json_schema_extra={"enum": sorted({*_LOOPBACK_NAMES.values(), "Error"})})
    message: str


class RsTransportError(BaseModel):
    """An error of the transport, in LoopBack's shape with the table's code: a missing, forged or
    expired token (401: 1001, 1029), a network the client may not call from (403: 1000), a body
    too large or nested too deeply (413, 400: 1002), no such path (404: 1002), the service's
    storage unavailable (503: 1003, with Retry-After) or an unexpected failure (500: 1003)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"error": {"statusCode": "401", "name": "UnauthorizedError", "message": "Invalid username or password"},
         "responseCode": 1001, "responseMessage": "INVALID CREDENTIAL DATA", "status": False}]})
    error: RsLoopBackError
    responseCode: int = Field(json_schema_extra={"enum": list(ERROR_CODES)})
    responseMessage: str = Field(json_schema_extra={"enum": [MESSAGES[code] for code in ERROR_CODES]})
    status: bool = Field(json_schema_extra={"const": False})


#: the body of each error status of the API (``transport_error`` for any other)
ERROR_BODIES: dict[int, tuple[type[BaseModel], ...]] = {400: (RsRefusedAnswer, RsTransportError),
                                                        500: (RsRefusedAnswer, RsTransportError)}
