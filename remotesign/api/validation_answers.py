"""The shapes of ``POST /v1/validations``' JSON answer, for the description only: the reports are
built by ``remotesign.validation.reports`` (``report_v1``, ``detailed_report``), and these models
say what they hold. Keys the builders leave out when they have no value are optional here; keys
they always send, possibly null, are required and nullable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.openapi_doc import absent
from remotesign.validation.model import Block, CertificateQualification, Indication, SubIndication, TimestampKind

_FIXED = ConfigDict(extra="forbid")
V1_TIME = "dd.mm.yyyy. HH:MM:SS, UTC (the eParaksts v1 format)"
ISO_TIME = "ISO 8601, UTC"


class ReportMessage(BaseModel):
    model_config = _FIXED
    content: str


class ReportClaimedRole(BaseModel):
    model_config = _FIXED
    claimedRole: str


INFO_TIME = f"v1 reports: {V1_TIME}; SignAPI validation v2: {ISO_TIME}"


class ReportSignatureInfo(BaseModel):
    """A signature's times and claims (the same fields in v1 and v2 reports; the times' format differs)."""

    model_config = _FIXED
    bestSignatureTime: str = absent(f"the earliest proof of the signature's existence; {INFO_TIME}")
    timestampCreationTime: str = absent(f"the signature time-stamp's time; {INFO_TIME}")
    ocspResponseCreationTime: str = absent(f"the earliest OCSP response's time; {INFO_TIME}")
    timeAssertionMessageImprint: str = absent("base64 of the signature time-stamp's message imprint")
    signingReason: str = absent()
    signerRole: list[ReportClaimedRole] = absent()
    signatureProductionPlace: dict[str, str] = absent()


class ReportSimpleSignature(BaseModel):
    model_config = _FIXED
    id: str
    info: ReportSignatureInfo
    errors: list[ReportMessage]
    warnings: list[ReportMessage]
    signedBy: str | None = Field(description="the signer certificate's common name")
    indication: Indication
    subIndication: SubIndication | None
    signatureLevel: str = Field(description="eIDAS level: QESig, QESeal, AdESig, …, NA")
    signatureFormat: str = Field(description="e.g. PAdES_BASELINE_LT, XAdES_BASELINE_B, CMS_NOT_ETSI")
    signerSerialNumber: str | None = Field(description="the signer certificate's serialNumber attribute")
    registrationNumber: str | None = Field(description="the signer certificate's organizationIdentifier")


class ReportFile(BaseModel):
    model_config = _FIXED
    filename: str


class ReportDocument(BaseModel):
    """What the v1 and v2 reports say alike of the document as a whole."""

    model_config = _FIXED
    signatureForm: str = Field(description="PAdES, XAdES, CAdES, ASiC-E, ASiC-S")
    includedFiles: list[ReportFile]
    signaturesCount: int
    validSignaturesCount: int = Field(description="signatures with indication TOTAL-PASSED")
    validationLevel: str
    validatedDocument: ReportFile


class SimpleReport(ReportDocument):
    """The eParaksts Validation API v1 report."""

    signaturesExt: list[ReportSimpleSignature]
    validationTime: str | None = Field(description=V1_TIME)


class ReportCertificate(BaseModel):
    model_config = _FIXED
    subject: str
    issuer: str
    serialNumber: str = Field(description="hexadecimal")
    notBefore: str | None = Field(description=ISO_TIME)
    notAfter: str | None = Field(description=ISO_TIME)
    sha256: str = Field(description="hexadecimal fingerprint")


class ReportBlockConclusion(BaseModel):
    model_config = _FIXED
    indication: Indication
    subIndication: SubIndication | None
    messages: list[str]


class ReportContainerTimestamp(BaseModel):
    model_config = _FIXED
    type: TimestampKind
    creationTime: str | None = Field(description=ISO_TIME)
    tsa: str | None
    indication: Indication
    subIndication: SubIndication | None
    messages: list[str]


class ReportSignatureTimestamp(ReportContainerTimestamp):
    model_config = _FIXED
    messageImprint: str | None = Field(description="hexadecimal")
    imprintAlgorithm: str | None


class ReportDocumentChange(BaseModel):
    model_config = _FIXED
    revision: int = Field(description="the revision that made the change, from 1")
    kind: str
    allowed: bool
    page: int | None
    object: str | None = Field(description='e.g. "12 0 R"')
    check: str
    description: str


class ReportDetailedSignature(BaseModel):
    model_config = _FIXED
    id: str
    signatureFormat: str
    indication: Indication
    subIndication: SubIndication | None
    signatureLevel: str
    qualification: CertificateQualification
    signatureAlgorithm: str | None
    claimedSigningTime: str | None = Field(description=ISO_TIME)
    bestSignatureTime: str | None = Field(description=ISO_TIME)
    buildingBlocks: dict[Block, ReportBlockConclusion] = Field(description="EN 319 102-1 building blocks' conclusions")
    certificateChain: list[ReportCertificate] = Field(description="signer first")
    timestamps: list[ReportSignatureTimestamp]
    signedFiles: list[str]
    signedByteRanges: list[list[int]] = Field(description="PDF: [first byte, length] pairs")
    counterSignatureOf: str | None
    changesAfterSigning: list[ReportDocumentChange]
    errors: list[str]
    warnings: list[str]
    infos: list[str]


class DetailedReport(BaseModel):
    model_config = _FIXED
    document: str
    signatureForm: str
    validationTime: str | None = Field(description=ISO_TIME)
    includedFiles: list[str]
    errors: list[str]
    signatures: list[ReportDetailedSignature]
    containerTimestamps: list[ReportContainerTimestamp]


class ValidationAnswer(BaseModel):
    """``report=simple`` (the default): ``simpleReport``; ``report=detailed``: both."""

    model_config = _FIXED
    simpleReport: SimpleReport
    detailedReport: DetailedReport = absent("with report=detailed")
