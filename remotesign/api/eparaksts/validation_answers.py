"""The shapes of the eParaksts Validation API's JSON answers (validation.py), for the description
only: ``report_v1`` and ``report_v2`` (validation/reports.py) build the ``data`` object; v1's is the
simple report of ``POST /v1/validations`` (api/validation_answers.py), v2 adds the signer's
certificate, the time-stamps and the files each signature covers, with ISO 8601 times."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.openapi_doc import absent
from remotesign.api.validation_answers import (ISO_TIME, ReportDocument, ReportMessage,
                                               ReportSignatureInfo, SimpleReport)
from remotesign.validation.model import CertificateQualification, Indication, SubIndication, TimestampKind

_FIXED = ConfigDict(extra="forbid")


class ValidationV1Answer(BaseModel):
    model_config = _FIXED
    data: SimpleReport


class ReportSigner(BaseModel):
    """The signer's certificate (its own fields only when the signature names a certificate)."""

    model_config = _FIXED
    subject: str = absent()
    issuer: str = absent()
    notBefore: str | None = absent(ISO_TIME)
    notAfter: str | None = absent(ISO_TIME)
    sha256: str = absent("hexadecimal fingerprint")
    certificateSerialNumber: str = absent("the certificate's serial number, hexadecimal")
    commonName: str | None
    serialNumber: str | None = Field(description="the subject's serialNumber attribute (personal code), not the "
                                                 "certificate's serial")
    registrationNumber: str | None = Field(description="the subject's organizationIdentifier")
    certificate: str | None = Field(description="base64 DER")
    qualification: CertificateQualification


class ReportTimestampV2(BaseModel):
    model_config = _FIXED
    type: TimestampKind
    creationTime: str | None = Field(description=ISO_TIME)
    tsa: str | None
    indication: Indication
    subIndication: SubIndication | None


class ReportSignatureV2(BaseModel):
    model_config = _FIXED
    id: str
    info: ReportSignatureInfo
    errors: list[ReportMessage]
    warnings: list[ReportMessage]
    indication: Indication
    subIndication: SubIndication | None
    signatureLevel: str = Field(description="eIDAS level: QESig, QESeal, AdESig, …, NA")
    signatureFormat: str = Field(description="e.g. PAdES_BASELINE_LT, XAdES_BASELINE_B, CMS_NOT_ETSI")
    signerExt: ReportSigner
    claimedSigningTime: str | None = Field(description=ISO_TIME)
    revocationTimes: list[str] = Field(description=f"the OCSP responses' times, earliest first; {ISO_TIME}")
    timestamps: list[ReportTimestampV2]
    signedFiles: list[str]
    counterSignatureOf: str = absent("a counter-signature: the signature it signs")


class ReportV2(ReportDocument):
    """The eParaksts Validation API v2 report."""

    signaturesExt: list[ReportSignatureV2]
    validationTime: str | None = Field(description=ISO_TIME)
    errors: list[ReportMessage] = Field(description="problems of the document as a whole")


class ValidationV2Answer(BaseModel):
    model_config = _FIXED
    data: ReportV2
