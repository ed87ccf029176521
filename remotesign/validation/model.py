"""The validation result model: indications, sub-indications, building-block conclusions and
one result per signature, independent of the signature format and of any wire API."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import x509


class Indication(str, enum.Enum):
    """EN 319 102-1 Table 5 main status indications (values as the eParaksts API spells them)."""

    TOTAL_PASSED = "TOTAL-PASSED"
    TOTAL_FAILED = "TOTAL-FAILED"
    INDETERMINATE = "INDETERMINATE"


class SubIndication(str, enum.Enum):
    """EN 319 102-1 Table 6 sub-indications; names equal pyHanko's AdESFailure/AdESIndeterminate."""

    FORMAT_FAILURE = "FORMAT_FAILURE"
    HASH_FAILURE = "HASH_FAILURE"
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
    REVOKED = "REVOKED"
    SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
    CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"
    CERTIFICATE_CHAIN_GENERAL_FAILURE = "CERTIFICATE_CHAIN_GENERAL_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE = "CRYPTO_CONSTRAINTS_FAILURE"
    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"
    POLICY_PROCESSING_ERROR = "POLICY_PROCESSING_ERROR"
    SIGNATURE_POLICY_NOT_AVAILABLE = "SIGNATURE_POLICY_NOT_AVAILABLE"
    TIMESTAMP_ORDER_FAILURE = "TIMESTAMP_ORDER_FAILURE"
    NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
    NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
    REVOKED_NO_POE = "REVOKED_NO_POE"
    REVOKED_CA_NO_POE = "REVOKED_CA_NO_POE"
    OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
    OUT_OF_BOUNDS_NOT_REVOKED = "OUT_OF_BOUNDS_NOT_REVOKED"
    CRYPTO_CONSTRAINTS_FAILURE_NO_POE = "CRYPTO_CONSTRAINTS_FAILURE_NO_POE"
    NO_POE = "NO_POE"
    TRY_LATER = "TRY_LATER"
    SIGNED_DATA_NOT_FOUND = "SIGNED_DATA_NOT_FOUND"
    GENERIC = "GENERIC"


#: Sub-indications that belong to TOTAL-FAILED; every other one is INDETERMINATE.
FAILED_SUBINDICATIONS = frozenset({
    SubIndication.FORMAT_FAILURE, SubIndication.HASH_FAILURE, SubIndication.SIG_CRYPTO_FAILURE,
    SubIndication.REVOKED, SubIndication.NOT_YET_VALID, SubIndication.EXPIRED,
})


def indication_for(sub: SubIndication | None) -> Indication:
    """The main indication a sub-indication implies (None means passed)."""
    if sub is None:
        return Indication.TOTAL_PASSED
    return Indication.TOTAL_FAILED if sub in FAILED_SUBINDICATIONS else Indication.INDETERMINATE


class Block(str, enum.Enum):
    """EN 319 102-1 §5.2 building blocks reported in the detailed report."""

    FORMAT_CHECKING = "FORMAT_CHECKING"
    IDENTIFICATION_OF_SIGNING_CERTIFICATE = "IDENTIFICATION_OF_SIGNING_CERTIFICATE"
    X509_CERTIFICATE_VALIDATION = "X509_CERTIFICATE_VALIDATION"
    CRYPTOGRAPHIC_VERIFICATION = "CRYPTOGRAPHIC_VERIFICATION"
    SIGNATURE_ACCEPTANCE_VALIDATION = "SIGNATURE_ACCEPTANCE_VALIDATION"
    TIME_STAMP_VALIDATION = "TIME_STAMP_VALIDATION"
    PROOF_OF_EXISTENCE = "PROOF_OF_EXISTENCE"


@dataclass
class Conclusion:
    """One building block's outcome; ``sub_indication`` None with PASSED."""

    indication: Indication
    sub_indication: SubIndication | None = None
    messages: list[str] = field(default_factory=list)

    @classmethod
    def passed(cls, *messages: str) -> Conclusion:
        return cls(Indication.TOTAL_PASSED, None, list(messages))

    @classmethod
    def of(cls, sub: SubIndication | None, *messages: str) -> Conclusion:
        return cls(indication_for(sub), sub, list(messages))


class TimestampKind(str, enum.Enum):
    CONTENT = "CONTENT_TIMESTAMP"
    SIGNATURE = "SIGNATURE_TIMESTAMP"
    VALIDATION_DATA = "VALIDATION_DATA_TIMESTAMP"
    ARCHIVE = "ARCHIVE_TIMESTAMP"
    DOCUMENT = "DOCUMENT_TIMESTAMP"
    CONTAINER = "CONTAINER_TIMESTAMP"   # an ASiC time assertion over files or an ASiCArchiveManifest


@dataclass
class TimestampResult:
    """One time-stamp token met while validating a signature."""

    kind: TimestampKind
    gen_time: datetime | None
    message_imprint: bytes | None = None       # the token's hashedMessage
    imprint_algorithm: str | None = None
    tsa_name: str | None = None
    conclusion: Conclusion = field(default_factory=Conclusion.passed)

    @property
    def valid(self) -> bool:
        return self.conclusion.indication is Indication.TOTAL_PASSED


@dataclass(frozen=True)
class DocumentChange:
    """One change made to a signed document after a signature (a PDF incremental update):
    which revision made it, what kind of change it is, where, and whether the signature permits
    it. ``check`` names the validation-policy check it falls under."""

    revision: int                       # 1-based number of the revision that made the change
    kind: str                           # e.g. "page content", "annotation", "catalog action"
    allowed: bool
    description: str
    check: str
    page: int | None = None             # 1-based page number
    obj: str | None = None              # the object, e.g. "12 0 R"


class CertificateQualification(str, enum.Enum):
    """What the trusted lists and the certificate say about the signer's certificate."""

    QC_FOR_ESIG_QSCD = "QC_FOR_ESIG_QSCD"
    QC_FOR_ESEAL_QSCD = "QC_FOR_ESEAL_QSCD"
    QC_QSCD = "QC_QSCD"                       # qualified, type unknown, on a QSCD
    QC_FOR_ESIG = "QC_FOR_ESIG"
    QC_FOR_ESEAL = "QC_FOR_ESEAL"
    QC = "QC"
    NOT_QC_FOR_ESIG = "NOT_QC_FOR_ESIG"
    NOT_QC_FOR_ESEAL = "NOT_QC_FOR_ESEAL"
    NOT_QC = "NOT_QC"
    UNKNOWN = "UNKNOWN"


@dataclass
class SignatureResult:
    """The outcome of validating one signature (or counter-signature)."""

    id: str
    signature_format: str                    # e.g. XAdES_BASELINE_LT, PAdES_BASELINE_B, CMS_NOT_ETSI
    indication: Indication
    sub_indication: SubIndication | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)            # notes of checks at level INFORM
    signing_certificate: x509.Certificate | None = None
    chain: list[x509.Certificate] = field(default_factory=list)   # signer first, anchor last
    claimed_signing_time: datetime | None = None
    best_signature_time: datetime | None = None                  # earliest POE of the signature
    timestamps: list[TimestampResult] = field(default_factory=list)
    ocsp_produced_at: list[datetime] = field(default_factory=list)
    signature_algorithm: str | None = None   # e.g. sha256_rsa, sha256_ecdsa, rsassa_pss
    signed_objects: list[str] = field(default_factory=list)      # names / URIs covered
    #: the media type the signature itself declares for a signed file (XAdES DataObjectFormat)
    declared_media_types: dict[str, str] = field(default_factory=dict)
    signed_byte_ranges: list[tuple[int, int]] = field(default_factory=list)  # PDF: (first byte, length) pairs
    signing_reason: str | None = None
    signer_roles: list[str] = field(default_factory=list)
    production_place: dict[str, str] = field(default_factory=dict)
    commitment_types: list[str] = field(default_factory=list)
    policy_id: str | None = None
    blocks: dict[Block, Conclusion] = field(default_factory=dict)
    qualification: CertificateQualification = CertificateQualification.UNKNOWN
    parent_id: str | None = None             # set for counter-signatures
    signature_level: str = "NA"              # eIDAS level, filled by qualification.py
    changes: list[DocumentChange] = field(default_factory=list)  # made to the document after signing

    @property
    def passed(self) -> bool:
        return self.indication is Indication.TOTAL_PASSED

    def conclude(self, sub: SubIndication | None, message: str | None = None) -> None:
        """Set the overall outcome; messages of failures go to ``errors``."""
        self.indication = indication_for(sub)
        self.sub_indication = sub
        if message and message not in self.errors:
            self.errors.append(message)


@dataclass
class DocumentResult:
    """The outcome of validating one file: its container facts and every signature in it."""

    filename: str
    signature_form: str                      # PAdES, XAdES, CAdES, ASiC-E, ASiC-S
    validation_time: datetime
    signatures: list[SignatureResult] = field(default_factory=list)
    included_files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)   # container-level problems
    validation_level: str = "ARCHIVAL_DATA"
    #: time-stamp tokens of the container itself (ASiC time assertions), in the order they renew each other
    timestamps: list[TimestampResult] = field(default_factory=list)

    @property
    def valid_count(self) -> int:
        return sum(1 for s in self.signatures if s.passed)

    @property
    def all_passed(self) -> bool:
        return bool(self.signatures) and all(s.passed for s in self.signatures)


class ValidationInputError(Exception):
    """The file cannot be validated at all (unsigned, unknown type, unreadable): a clear error,
    not a report. ``code`` is stable and shown to API callers."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
