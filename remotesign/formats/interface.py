"""The one interface every signature format implements (EU DSS's ``DocumentSignatureService``).

    data_to_sign(documents, parameters, scratch)        -> DataToSign (digest the key signs + state)
    sign(documents, parameters, prepared, value, ...)   -> signed document at B-B, written to output
    extend(source, output, level, context)              -> every signature of source raised to level
    timestamp(source, output, context)                  -> a document / archive time-stamp added

Formats never reach the network, the database or the key store themselves: time-stamps come from
the pyHanko ``TimeStamper`` and revocation data from the :class:`RevocationSource` in the
:class:`ExtensionContext` the core hands them. Outputs are readable+writable seekable files (a
blob writer), so a format may read back what it wrote (pyHanko does) and nothing needs the whole
document in memory. A :class:`~remotesign.formats.registry.FormatRegistry` picks the format.
"""

from __future__ import annotations

import enum
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, ClassVar, Protocol

from asn1crypto import x509
from pyhanko.sign.timestamps import TimeStamper

from remotesign.formats.base import FormatError, SignerSpec, TimestampFn, ValidationData


def timestamp_function(stamper: TimeStamper) -> TimestampFn:
    """The pyHanko time-stamper as the ``TimestampFn`` the XML formats call (DER token out)."""

    async def _timestamp(imprint: bytes, hash_name: str) -> bytes:
        token = await stamper.async_timestamp(imprint, hash_name)
        return token.dump()  # type: ignore[no-any-return]

    return _timestamp


class Level(enum.IntEnum):
    """Baseline levels (EN 319 1x2-1), ordered: ``Level.T < Level.LTA``."""

    B = 0
    T = 1
    LT = 2
    LTA = 3

    @classmethod
    def parse(cls, text: str) -> "Level":
        name = text.upper().removeprefix("BASELINE_").removeprefix("B-")
        if name not in cls.__members__:
            raise ValueError(f"unknown signature level {text!r}")
        return cls[name]


class Packaging(enum.Enum):
    """Where the signature sits relative to what it signs."""

    ENVELOPED = "enveloped"    # inside the signed document (PAdES; XAdES in the XML it signs)
    ENVELOPING = "enveloping"  # the signed content inside the signature (CAdES attached; ds:Object)
    DETACHED = "detached"      # beside it (CAdES detached; XAdES referring by URI)


class Container(enum.Enum):
    """ASiC containers (EN 319 162-1)."""

    ASIC_S = "asic-s"
    ASIC_E = "asic-e"


@dataclass(frozen=True)
class Document:
    """One input of a signature: its name, media type, and a way to open it (read, seekable) as
    many times as the format needs, so large files are streamed rather than held in memory.
    ``open`` is None for a digest-only document (only ``sha256`` is known: the signer signs a
    file the service never sees); formats that need the content refuse it."""

    name: str
    mime_type: str
    open: Callable[[], BinaryIO] | None
    sha256: bytes | None = None  # when the caller knows it already (hash once)

    def content(self) -> BinaryIO:
        if self.open is None:
            raise FormatError("content_required", f"{self.name} is known only by its digest")
        return self.open()


@dataclass(frozen=True)
class SignaturePolicy:
    """An explicit signature policy (XAdES/CAdES-EPES SignaturePolicyIdentifier)."""

    identifier: str
    digest_algorithm: str
    digest: bytes
    description: str | None = None
    uri: str | None = None


@dataclass(frozen=True)
class XmlOptions:
    """XAdES choices beyond the defaults: canonicalization of SignedInfo / SignedProperties, the
    transforms of the document reference, and the element that an enveloped signature signs."""

    signed_info_c14n: str | None = None
    signed_properties_c14n: str | None = None
    transforms: tuple[str, ...] = ()
    xpath: str | None = None
    reference_uri: str | None = None
    #: more elements (``#Id``) an enveloped signature signs besides ``reference_uri``
    more_reference_uris: tuple[str, ...] = ()
    #: sign the element with this Id through an XPath Filter 2.0 ``intersect id('...')`` over the
    #: whole document (a reference URI "" that selects the element), instead of ``reference_uri``
    xpath_filter_id: str | None = None
    #: a plain XMLDSig signature: no XAdES qualifying properties (level B only)
    plain: bool = False
    #: ds:Signature in the default namespace (``<Signature xmlns="...xmldsig#">``), as the
    #: Vietnamese e-invoice forms write it, instead of the ``ds:`` prefix
    default_namespace: bool = False
    #: the signature's Id (unique in the document); None: a fresh one
    signature_id: str | None = None
    #: a signed ds:Object Id="SigningTime" holding the signing time in this strftime format (the
    #: Vietnamese TAX-211120 forms); None: none
    signing_time_format: str | None = None
    #: the IANA time zone that signing time is written in
    signing_time_zone: str = "UTC"


@dataclass(frozen=True)
class SignParameters:
    """What the signature must look like. ``stamp`` is a visible PDF stamp description
    (formats/stamps); formats that cannot show one ignore it."""

    signer: SignerSpec
    signing_time: datetime
    packaging: Packaging = Packaging.DETACHED
    container: Container | None = None
    reason: str | None = None
    location: str | None = None
    claimed_roles: tuple[str, ...] = ()
    policy: SignaturePolicy | None = None
    content_hint: str | None = None
    stamp: Any = None
    # PDF: lock the document with this signature (a /Lock with /P 1 on its field: no later change,
    # no later signature, keeps it valid), as ISO 32000-2 12.7.5.5 describes
    lock: bool = False
    xml: XmlOptions = field(default_factory=XmlOptions)
    #: ASiC: the new signature's entry name (e.g. ``META-INF/signatures1.xml``); None: the format's choice
    signature_file: str | None = None


@dataclass(frozen=True)
class DataToSign:
    """The digest the key holder signs, and the JSON-serialisable state that ``sign`` needs with
    it later (possibly in another process). Large intermediate files go to the ``scratch`` file the
    caller passed to ``data_to_sign`` and gets back in ``sign``."""

    digest: bytes
    state: dict[str, Any]


class RevocationSource(Protocol):
    """Certificates, OCSP responses and CRLs for a certification path ``[leaf, ..., root]``; raises
    ``trust.revocation.PathError`` when a certificate is revoked or nothing can be had."""

    async def collect(self, path: list[x509.Certificate]) -> ValidationData: ...


class PathBuilder(Protocol):
    """A path from ``certificate`` to a trust anchor, using ``extra`` certificates as candidates
    for intermediates; raises ``trust.revocation.PathError`` when there is none."""

    def __call__(self, certificate: x509.Certificate, extra: list[x509.Certificate]) -> list[x509.Certificate]: ...


@dataclass(frozen=True)
class ExtensionContext:
    """Everything a format needs to raise a level: the TSA to use, the revocation source, the
    trust anchors (DER) and a path builder, the same for signing, extension and validation."""

    timestamper: TimeStamper
    revocation: RevocationSource
    trust_roots: tuple[bytes, ...]
    path_of: PathBuilder
    digest_algorithm: str = "sha256"
    #: a visible stamp (formats.stamps.StampSpec) for the field of the new time-stamp: PAdES shows
    #: it on the page; formats without a page ignore it
    stamp: Any = None

    async def validation_data(self, certificate: x509.Certificate,
                              extra: list[x509.Certificate]) -> ValidationData:
        """Certificates and revocation data of ``certificate``'s path to a trust anchor."""
        return await self.revocation.collect(self.path_of(certificate, extra))


class SignatureFormat(ABC):
    """One format (PAdES, XAdES, CAdES, ASiC-S, ASiC-E); stateless, so one instance serves all."""

    #: stable name used by the registry and in operation records: "pades", "xades", "cades", ...
    name: ClassVar[str]

    @abstractmethod
    def recognizes(self, source: BinaryIO) -> bool:
        """True when ``source`` (seekable, any position) is a signed or signable file of this
        format; must not read more than it needs and must never raise on garbage."""

    @abstractmethod
    async def data_to_sign(self, documents: Sequence[Document], parameters: SignParameters,
                           scratch: BinaryIO) -> DataToSign:
        """Prepare the signature and return the digest to be signed (step 1 of two-step signing)."""

    @abstractmethod
    async def sign(self, documents: Sequence[Document], parameters: SignParameters, prepared: DataToSign,
                   signature_value: bytes, scratch: BinaryIO, output: BinaryIO) -> None:
        """Write the B-B signed document to ``output`` (step 2). ``signature_value`` is DER for
        ECDSA; the caller has checked it against the certificate and the digest."""

    async def sign_at_level(self, documents: Sequence[Document], parameters: SignParameters, prepared: DataToSign,
                            signature_value: bytes, scratch: BinaryIO, output: BinaryIO, level: Level,
                            context: ExtensionContext | None) -> bytes | None:
        """Sign straight to ``level`` (EU DSS's signDocument with a target level): B-B, then
        extension of the result. Formats that can put the signature time-stamp in while signing
        override this. Returns the SHA-256 of ``output`` when the format hashed it while writing
        (the caller need not read it again), else None."""
        if level == Level.B:
            await self.sign(documents, parameters, prepared, signature_value, scratch, output)
            return None
        if context is None:
            raise FormatError("timestamp_required", f"level {level.name} needs a time-stamping authority")
        with tempfile.TemporaryFile() as signed:
            await self.sign(documents, parameters, prepared, signature_value, scratch, signed)
            signed.seek(0)
            await self.extend(signed, output, level, context,
                              detached=documents if parameters.packaging is Packaging.DETACHED else ())
        return None

    @abstractmethod
    async def extend(self, source: BinaryIO, output: BinaryIO, level: Level, context: ExtensionContext,
                     detached: Sequence[Document] = ()) -> None:
        """Raise every signature of ``source`` to ``level`` (T adds signature time-stamps where
        missing, LT the validation data, LTA an archive / document time-stamp; an LTA input gets a
        new archive time-stamp that renews it). Writes the result to ``output``. ``detached`` is
        the signed content of a detached signature, which an archive time-stamp covers."""

    @abstractmethod
    async def timestamp(self, source: BinaryIO, output: BinaryIO, context: ExtensionContext,
                        detached: Sequence[Document] = ()) -> None:
        """Add a time-stamp over the whole document (PDF document time-stamp, archive time-stamp)."""

    @abstractmethod
    def signature_levels(self, source: BinaryIO) -> list[Level]:
        """The level each signature of ``source`` has (structure only, no validation); [] if none."""
