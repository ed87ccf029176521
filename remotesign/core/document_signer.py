"""Whole documents signed with a server-held sign identity: PAdES, CAdES, XAdES at B to LTA,
or a bare PKCS#1 / ECDSA value, in two steps around the key.

``prepare`` asks each document's format for the data to be signed (DTBS) with the identity's
certificate; the caller then has the key store sign all of them at once, under one sole-control
authorization; ``finish`` embeds each value and raises the signature to its level with the
chosen time-stamping authority. Between the steps each document keeps its scratch file open, so
nothing is prepared twice and a large PDF is never held in memory.

Vendor-neutral: facades describe each signature with a :class:`SignatureSpec`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, BinaryIO

from asn1crypto import x509

from remotesign.core.errors import CoreError
from remotesign.formats.base import FormatError, SignerSpec
from remotesign.formats.interface import (DataToSign, Document, ExtensionContext, Level, Packaging,
                                          SignatureFormat, SignaturePolicy, SignParameters, XmlOptions)
from remotesign.formats.registry import FormatRegistry
from remotesign.formats.stamps.spec import StampSpec
from remotesign.keystore import KeyAlgorithm

#: signature types and the registry's format names (PKCS1 is a bare value, no format)
FORMATS = {"pades": "pades", "cades": "cades", "xades": "xades", "ooxml": "ooxml"}
RAW = "pkcs1"
MEDIA_TYPES = {"pades": "application/pdf", "xades": "text/xml"}
HASHES = ("sha256", "sha384", "sha512")


class DocumentSigningError(CoreError):
    """A document or a parameter the signature cannot be made with; ``code`` is stable."""


@dataclass(frozen=True)
class SignatureSpec:
    """One signature to make over one document: the format (``pades``, ``cades``, ``xades`` or
    ``pkcs1``), the level, the packaging, the hash, and the optional parts."""

    kind: str
    level: Level = Level.B
    packaging: Packaging = Packaging.ENVELOPED
    hash_name: str = "sha256"
    reason: str | None = None
    stamp: StampSpec | None = None
    xml: XmlOptions = field(default_factory=XmlOptions)
    policy: SignaturePolicy | None = None
    roles: tuple[str, ...] = ()
    location: str | None = None
    lock: bool = False  # PDF: no later change or signature keeps this one valid

    def __post_init__(self) -> None:
        if self.kind != RAW and self.kind not in FORMATS:
            raise DocumentSigningError("invalid_request", f"unknown signature format {self.kind!r}")
        if self.hash_name not in HASHES:
            raise DocumentSigningError("invalid_request", f"signatures are made with {', '.join(HASHES)}, "
                                                          f"not {self.hash_name}")
        if self.kind == RAW and self.level != Level.B:
            raise DocumentSigningError("invalid_request", "a PKCS1 signature value has no T, LT or LTA level")
        if self.kind == "pades" and self.packaging is not Packaging.ENVELOPED:
            raise DocumentSigningError("invalid_request", "a PAdES signature is ENVELOPED in its PDF")
        if self.kind == "cades" and self.packaging is Packaging.ENVELOPED:
            raise DocumentSigningError("invalid_request", "a CAdES signature is ENVELOPING or DETACHED")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "level": self.level.name, "packaging": self.packaging.value,
                "hash": self.hash_name, "reason": self.reason, "stamp": self.stamp.to_json() if self.stamp else None,
                "xml": dataclasses.asdict(self.xml),
                "policy": None if self.policy is None else {**dataclasses.asdict(self.policy),
                                                            "digest": self.policy.digest.hex()},
                "roles": list(self.roles), "location": self.location, "lock": self.lock}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignatureSpec:
        xml = data.get("xml") or {}
        policy = data.get("policy")
        return cls(kind=data["kind"], level=Level[data["level"]], packaging=Packaging(data["packaging"]),
                   hash_name=data["hash"], reason=data.get("reason"),
                   stamp=StampSpec.from_json(data["stamp"]) if data.get("stamp") else None,
                   xml=XmlOptions(**{**xml, "transforms": tuple(xml.get("transforms") or ()),
                                     "more_reference_uris": tuple(xml.get("more_reference_uris") or ())}),
                   policy=None if not policy else SignaturePolicy(**{**policy, "digest": bytes.fromhex(policy["digest"])}),
                   roles=tuple(data.get("roles") or ()), location=data.get("location"),
                   lock=bool(data.get("lock")))


@dataclass
class Prepared:
    """One document between the two steps: the digest the key signs and the format's state."""

    spec: SignatureSpec
    document: Document
    parameters: SignParameters | None
    data: DataToSign | None
    scratch: BinaryIO | None
    document_digest: bytes | None = None  # PKCS1: the document's digest, when the caller had it

    @property
    def digest(self) -> bytes:
        """What the key signs: the DTBS digest, or for PKCS1 the document's own digest."""
        if self.data is not None:
            return self.data.digest
        if self.document_digest is not None:
            return self.document_digest
        with self.document.content() as f:
            h = hashlib.new(self.spec.hash_name)
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.digest()


def mechanism_of(algorithm: KeyAlgorithm) -> str:
    return "rsa" if algorithm.is_rsa else "ecdsa"


class DocumentSigner:
    def __init__(self, registry: FormatRegistry) -> None:
        self.registry = registry

    def _format(self, spec: SignatureSpec) -> SignatureFormat:
        return self.registry.get(FORMATS[spec.kind])

    async def prepare(self, spec: SignatureSpec, document: Document, path: list[x509.Certificate],
                      algorithm: KeyAlgorithm, stack: contextlib.ExitStack,
                      signing_time: datetime | None = None, document_digest: bytes | None = None) -> Prepared:
        """The DTBS of ``document`` signed by the first certificate of ``path`` (which ends at a
        trust anchor); the scratch file lives as long as ``stack``. ``document_digest``: the
        document's digest with the spec's hash, when the caller computed it already."""
        if spec.kind == RAW:
            return Prepared(spec, document, None, None, None, document_digest)
        signer = SignerSpec(certificate=path[0].dump(), chain=tuple(c.dump() for c in path[1:]),
                            digest_algorithm=spec.hash_name, mechanism=mechanism_of(algorithm))
        params = SignParameters(signer=signer, signing_time=signing_time or _now(), packaging=spec.packaging,
                                reason=spec.reason, location=spec.location, claimed_roles=spec.roles,
                                policy=spec.policy, stamp=spec.stamp, xml=spec.xml, lock=spec.lock)
        scratch = stack.enter_context(tempfile.TemporaryFile())
        try:
            data = await self._format(spec).data_to_sign([document], params, scratch)
        except FormatError as exc:
            raise DocumentSigningError(exc.code, f"{document.name}: {exc.message}") from exc
        return Prepared(spec, document, params, data, scratch)

    async def finish(self, prepared: Prepared, value: bytes, output: BinaryIO,
                     context: ExtensionContext | None) -> None:
        """Write the signed document (or, for PKCS1, the value itself) to ``output``."""
        if prepared.data is None:
            output.write(value)
            return
        assert prepared.parameters is not None and prepared.scratch is not None
        try:
            await self._format(prepared.spec).sign_at_level(
                [prepared.document], prepared.parameters, prepared.data, value, prepared.scratch, output,
                prepared.spec.level, context if prepared.spec.level > Level.B else None)
        except FormatError as exc:
            raise DocumentSigningError(exc.code, f"{prepared.document.name}: {exc.message}", 422) from exc


def document(name: str, opener: Callable[[], BinaryIO], kind: str, sha256: bytes | None = None) -> Document:
    """A document to sign as the formats take it (opened as often as they need)."""
    return Document(name=name, mime_type=MEDIA_TYPES.get(kind, "application/octet-stream"), open=opener,
                    sha256=sha256)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


__all__ = ["DocumentSigner", "DocumentSigningError", "Prepared", "SignatureSpec", "document", "mechanism_of"]
