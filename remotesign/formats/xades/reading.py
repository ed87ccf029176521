"""Reading one ds:Signature: its parts, the validation data it embeds, its signing certificate
and the baseline level it reaches. The one XAdES reader of the project: the extenders (which
must know what is already there), the read-only views and the validator all read through here
and through :mod:`~remotesign.formats.xades.dom`, for any XAdES version and any producer.

Lookups are by namespace-qualified structure (``dom.signature_parts``); a structure that cannot
be interpreted is a FormatError ``invalid_xades`` here (the validator catches the underlying
``StructureError`` itself and reports FORMAT_FAILURE)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import tsp, x509
from lxml import etree

from remotesign.names import same_name
from remotesign.formats.base import FormatError, ValidationData
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.algorithms import DIGESTS, SignatureMethod, verify_signature_value
from remotesign.formats.xades.algorithms import SIGNATURE_METHODS as KNOWN_SIGNATURE_METHODS
from remotesign.formats.xades.c14n import canonicalize, inclusive_namespaces
from remotesign.formats.xades.dom import (ALL_XADES, DS, SignatureParts, StructureError, children, is_element,
                                          local_name, namespace, signature_parts, text_of)
from remotesign.formats.xades.model import ReferenceInfo, SignatureValues
from remotesign.formats.xades.uris import uri_to_name
from remotesign.formats.xades.xmlio import child, unb64

STS = c.q(c.XADES, "SignatureTimeStamp")
CERT_VALUES = c.q(c.XADES, "CertificateValues")
REV_VALUES = c.q(c.XADES, "RevocationValues")
TSVD = c.q(c.XADES141, "TimeStampValidationData")
ATS = c.q(c.XADES141, "ArchiveTimeStamp")

_CERT_VALUES = ("CertificateValues", "AttrAuthoritiesCertValues")
_REV_VALUES = ("RevocationValues", "AttributeRevocationValues")
#: Unsigned properties that carry certificates / revocation data.
VALUE_PROPERTIES = (*_CERT_VALUES, *_REV_VALUES, "TimeStampValidationData")
#: Signing-certificate candidates looked at when identifying the signer.
MAX_CANDIDATES = 64


def parts_of(sig: etree._Element) -> SignatureParts:
    """The located parts of ``sig``; FormatError when its structure is broken."""
    try:
        return signature_parts(sig)
    except StructureError as exc:
        raise FormatError("invalid_xades", f"the signature is malformed: {exc}") from None


def qualifying_properties(sig: etree._Element) -> etree._Element | None:
    """The xades:QualifyingProperties of ``sig`` (a direct child of one of its ds:Objects)."""
    return parts_of(sig).qualifying_properties


def unsigned_signature_properties(sig: etree._Element) -> etree._Element | None:
    return parts_of(sig).unsigned_signature_properties


def unsigned_children(sig: etree._Element) -> list[etree._Element]:
    """Unsigned signature properties in document order (element children only)."""
    return parts_of(sig).unsigned()


def signed_info(sig: etree._Element) -> etree._Element:
    return child(sig, c.DS, "SignedInfo")


def canonical_signed_info(sig: etree._Element) -> bytes:
    """The octets the signature value is computed over."""
    si = signed_info(sig)
    method = child(si, c.DS, "CanonicalizationMethod")
    return canonicalize(si, method.get("Algorithm", ""), inclusive_namespaces(method))


# -- embedded validation data ---------------------------------------------------------------------

def _decode(el: etree._Element, problems: list[str]) -> bytes | None:
    try:
        return base64.b64decode("".join((el.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        problems.append(f"{local_name(el)} is not valid base64")
        return None


def _encapsulated(parent: etree._Element, name: str, problems: list[str]) -> list[bytes]:
    out = []
    for el in parent.iter():
        if is_element(el) and local_name(el) == name:
            der = _decode(el, problems)
            if der:
                out.append(der)
    return out


def values_of(props: list[etree._Element], problems: list[str]) -> ValidationData:
    """Certificates, OCSP responses and CRLs inside the given unsigned properties (undecodable
    values are left out, with a note in ``problems``)."""
    certs: list[bytes] = []
    ocsps: list[bytes] = []
    crls: list[bytes] = []
    for prop in props:
        if local_name(prop) not in VALUE_PROPERTIES:
            continue
        certs += _encapsulated(prop, "EncapsulatedX509Certificate", problems)
        ocsps += _encapsulated(prop, "EncapsulatedOCSPValue", problems)
        crls += _encapsulated(prop, "EncapsulatedCRLValue", problems)
    return ValidationData().merged(ValidationData(tuple(certs), tuple(ocsps), tuple(crls)))


def key_info_certificates(parts: SignatureParts, problems: list[str]) -> list[bytes]:
    out = []
    for data in children(parts.key_info, DS, "X509Data"):
        for el in children(data, DS, "X509Certificate"):
            der = _decode(el, problems)
            if der:
                out.append(der)
    return out


def embedded_data(parts: SignatureParts, problems: list[str]) -> ValidationData:
    """Everything the signature embeds: KeyInfo certificates first, then the unsigned values."""
    keyinfo = ValidationData(tuple(key_info_certificates(parts, problems)))
    return keyinfo.merged(values_of(parts.unsigned(), problems))


def keyinfo_certificates(sig: etree._Element) -> list[bytes]:
    return key_info_certificates(parts_of(sig), [])


def embedded_validation_data(sig: etree._Element, *, include_key_info: bool = False) -> ValidationData:
    """Certificates, OCSP responses and CRLs the signature carries (CertificateValues,
    RevocationValues and every TimeStampValidationData), first occurrence order."""
    parts = parts_of(sig)
    if include_key_info:
        return embedded_data(parts, [])
    return values_of(parts.unsigned(), [])


def level_of(sig: etree._Element) -> str:
    """Baseline level by content: T needs a signature time-stamp; then an archive time-stamp
    makes LTA, certificate or revocation values make LT."""
    names = {local_name(p) for p in parts_of(sig).unsigned() if namespace(p) in ALL_XADES}
    if "SignatureTimeStamp" not in names:
        return "B"
    if "ArchiveTimeStamp" in names:
        return "LTA"
    if "CertificateValues" in names or "RevocationValues" in names:
        return "LT"
    return "T"


# -- the signing certificate ----------------------------------------------------------------------

def any_children(parent: etree._Element | None, *names: str) -> list[etree._Element]:
    """Children in any XAdES or XMLDSig namespace (1.1.1 writes DigestMethod in its own)."""
    return children(parent, (*ALL_XADES, DS), *names)


def _b64(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class CertReference:
    """One xades:Cert of SigningCertificate(V2)."""

    digest_algorithm: str | None
    digest: bytes | None
    serial_number: int | None
    issuer: x509.Name | None
    has_uri: bool

    def matches(self, cert: x509.Certificate) -> bool:
        if self.digest_algorithm is None or self.digest is None:
            return False
        return hashlib.new(self.digest_algorithm, cert.dump()).digest() == self.digest

    def issuer_serial_matches(self, cert: x509.Certificate) -> bool | None:
        """None when the reference carries no (readable) issuer/serial."""
        if self.serial_number is None:
            return None
        if self.serial_number != cert.serial_number:
            return False
        return self.issuer is None or same_name(self.issuer, cert.issuer)


def signing_certificate_refs(parts: SignatureParts) -> tuple[list[CertReference], int]:
    """Cert references of SigningCertificate / SigningCertificateV2, and how many such
    properties there are (the format requires exactly one)."""
    props = parts.signed("SigningCertificate") + parts.signed("SigningCertificateV2")
    refs = []
    for prop in props:
        for cert_el in any_children(prop, "Cert"):
            refs.append(_cert_ref(cert_el))
    return refs, len(props)


def _cert_ref(cert_el: etree._Element) -> CertReference:
    algorithm = digest = None
    for digest_el in any_children(cert_el, "CertDigest"):
        method = next(iter(any_children(digest_el, "DigestMethod")), None)
        algorithm = DIGESTS.get(method.get("Algorithm", "")) if method is not None else None
        digest = _b64(text_of(next(iter(any_children(digest_el, "DigestValue")), None)))
    serial = issuer = None
    for issuer_serial in any_children(cert_el, "IssuerSerial"):
        serial_text = text_of(next(iter(any_children(issuer_serial, "X509SerialNumber")), None))
        try:
            serial = int(serial_text) if serial_text else None
        except ValueError:
            serial = None
    for v2 in any_children(cert_el, "IssuerSerialV2"):
        der = _b64(text_of(v2))
        if der:
            try:
                parsed = tsp.IssuerSerial.load(der, strict=True)
                serial = parsed["serial_number"].native
                names = [g.chosen for g in parsed["issuer"] if g.name == "directory_name"]
                issuer = names[0] if names else None
            except Exception:  # noqa: BLE001 - asn1crypto raises many types on garbage
                serial = issuer = None
    return CertReference(algorithm, digest, serial, issuer, cert_el.get("URI") is not None)


@dataclass
class SignerIdentification:
    """Outcome of identifying the signing certificate."""

    certificate: x509.Certificate | None
    signature_valid: bool
    message: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def identified(self) -> bool:
        return self.certificate is not None and self.message is None


def identify_signer(candidates: list[x509.Certificate], refs: list[CertReference], method: SignatureMethod,
                    signed_info: bytes, signature_value: bytes, *, qualified: bool) -> SignerIdentification:
    """Pick the signing certificate among ``candidates`` (KeyInfo first), EN 319 102-1 §5.2.3:
    the candidate whose key verifies the signature value must be the one SigningCertificate(V2)
    names by digest. ``qualified``: the signature has QualifyingProperties, so
    SigningCertificate(V2) must name the signer."""
    candidates = candidates[:MAX_CANDIDATES]
    verifying = next((c for c in candidates if verify_signature_value(c, method, signed_info, signature_value)), None)
    referenced = [c for c in candidates if any(r.matches(c) for r in refs)]
    referenced_der = {c.dump() for c in referenced}
    if not refs:
        cert = verifying or (candidates[0] if candidates else None)
        if cert is None:
            return SignerIdentification(None, False, "no certificate of the signer is available in ds:KeyInfo or "
                                                     "the signature's certificate values")
        ident = SignerIdentification(cert, verifying is not None)
        if qualified:
            ident.warnings.append("the signing certificate is not protected by a SigningCertificate property")
        return ident
    if verifying is not None:
        if verifying.dump() not in referenced_der:
            return SignerIdentification(verifying, True, "the certificate that verifies the signature does not match "
                                                         "the digest in SigningCertificate")
        cert = verifying
    elif referenced:
        cert = referenced[0]
    else:
        return SignerIdentification(None, False, "no available certificate matches the digest in SigningCertificate")
    ident = SignerIdentification(cert, verifying is not None)
    own = [r for r in refs if r.matches(cert)]
    if any(r.issuer_serial_matches(cert) is False for r in own):
        ident.warnings.append("the issuer and serial number in SigningCertificate do not match the signing certificate")
    return ident


def _load(der: bytes) -> x509.Certificate | None:
    try:
        cert = x509.Certificate.load(der)
        cert.native  # noqa: B018 - parse fully: a certificate that cannot be read is no candidate
        return cert
    except Exception:  # noqa: BLE001 - asn1crypto raises many types on garbage
        return None


def signer_certificate(sig: etree._Element, certificates: list[bytes]) -> bytes | None:
    """The certificate among ``certificates`` that SigningCertificate(V2) names; the first one
    if none is named (plain XMLDSig)."""
    refs, _ = signing_certificate_refs(parts_of(sig))
    if not refs:
        return certificates[0] if certificates else None
    for der in certificates:
        cert = _load(der)
        if cert is not None and any(r.matches(cert) for r in refs):
            return der
    return None


# -- the signature as values ----------------------------------------------------------------------

def _reference_name(uri: str) -> str | None:
    """The decoded data object name of a reference URI (None for same-document references; the
    URI itself when it is not a plain relative path)."""
    if uri == "" or uri.startswith("#"):
        return None
    try:
        return uri_to_name(uri)
    except FormatError:
        return uri


def references(sig: etree._Element) -> list[ReferenceInfo]:
    out = []
    for ref in signed_info(sig).findall(c.q(c.DS, "Reference")):
        uri = ref.get("URI")
        if uri is None:
            raise FormatError("invalid_xades", "ds:Reference without URI")
        method = child(ref, c.DS, "DigestMethod")
        name = DIGESTS.get(method.get("Algorithm", ""))
        if name is None:
            raise FormatError("unsupported_algorithm", f"digest method {method.get('Algorithm')!r} is not supported")
        transforms = ref.find(c.q(c.DS, "Transforms"))
        out.append(ReferenceInfo(
            id=ref.get("Id"), uri=uri, name=_reference_name(uri), type=ref.get("Type"), digest_algorithm=name,
            digest=unb64(child(ref, c.DS, "DigestValue").text, "DigestValue"),
            transforms=tuple(t.get("Algorithm", "") for t in transforms.findall(c.q(c.DS, "Transform")))
            if transforms is not None else ()))
    return out


def _signing_time(parts: SignatureParts) -> datetime | None:
    times = parts.signed("SigningTime")
    text = text_of(times[0]) if times else None
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise FormatError("invalid_xades", f"bad SigningTime {text!r}") from None


def read_signature(sig: etree._Element, *, require_value: bool = True) -> SignatureValues:
    """The decoded parts of a signature this package can sign or extend: any signature method the
    verifier knows (an extension of someone else's RSASSA-PSS signature needs no signing of it)."""
    parts = parts_of(sig)
    si = signed_info(sig)
    method = child(si, c.DS, "SignatureMethod").get("Algorithm", "")
    known = c.SIGNATURE_METHODS.get(method) or KNOWN_SIGNATURE_METHODS.get(method)
    if known is None:
        raise FormatError("unsupported_algorithm", f"signature method {method!r} is not supported")
    mechanism, digest_name = known
    value = unb64(child(sig, c.DS, "SignatureValue").text, "SignatureValue")
    if require_value and not value:
        raise FormatError("not_signed", "the signature value is empty; embed it first")
    certs = key_info_certificates(parts, [])
    signer = signer_certificate(sig, certs)
    ordered = ([signer] if signer else []) + [d for d in certs if d != signer]
    return SignatureValues(
        signature_id=sig.get("Id"), signature_method=method, mechanism=mechanism, digest_algorithm=digest_name,
        signed_info=canonical_signed_info(sig), signature_value=value, signer_certificate=signer,
        certificates=tuple(ordered), references=tuple(references(sig)), signing_time=_signing_time(parts),
        level=level_of(sig), validation_data=values_of(parts.unsigned(), []))
