"""Values exchanged with the signing core: what to sign, what came out, and what a reader finds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from remotesign.formats.base import ValidationData


@dataclass(frozen=True)
class DataObjectRef:
    """One file of the container: its name inside the container (the ds:Reference URI is its
    RFC 3986 percent-encoding), the raw digest of its bytes, that digest's algorithm
    ('sha256' | 'sha384' | 'sha512') and its MIME type (for xades:DataObjectFormat)."""

    name: str
    digest: bytes
    digest_algorithm: str
    mime_type: str


@dataclass(frozen=True)
class PreparedXades:
    """A complete ``XAdESSignatures`` document whose ``ds:SignatureValue`` is still empty.

    ``data_to_be_signed`` is the canonical ds:SignedInfo; ``digest`` is its hash with the signer's
    digest algorithm, which is all a smart card or HSM needs to see."""

    xml: bytes
    data_to_be_signed: bytes
    digest: bytes
    signature_id: str


@dataclass(frozen=True)
class ReferenceInfo:
    """A ds:Reference as written: ``name`` is the decoded file name for references to data
    objects and None for same-document references (``#id``)."""

    id: str | None
    uri: str
    name: str | None
    type: str | None
    digest_algorithm: str
    digest: bytes
    transforms: tuple[str, ...]


@dataclass(frozen=True)
class SignatureValues:
    """What a verifier needs from one signature, already decoded.

    ``signature_value`` is PKCS#1 v1.5 for RSA and raw r||s for ECDSA (as stored).
    ``certificates`` are the KeyInfo certificates, signer first when it can be identified."""

    signature_id: str | None
    signature_method: str
    mechanism: str
    digest_algorithm: str
    signed_info: bytes
    signature_value: bytes
    signer_certificate: bytes | None
    certificates: tuple[bytes, ...]
    references: tuple[ReferenceInfo, ...]
    signing_time: datetime | None
    level: str
    validation_data: ValidationData


@dataclass(frozen=True)
class TimestampImprint:
    """A time-stamp of the signature with the imprint it carries and the one recomputed from the
    document: ``matches`` is the integrity verdict on the time-stamped data."""

    kind: str
    element_id: str | None
    token: bytes
    hash_name: str
    token_imprint: bytes
    computed_imprint: bytes

    @property
    def matches(self) -> bool:
        return self.token_imprint == self.computed_imprint
