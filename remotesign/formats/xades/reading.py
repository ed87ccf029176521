"""Reading one ds:Signature: its parts, its signer certificate, the validation data it embeds
and the baseline level it reaches. Shared by the extenders (which must know what is already
there) and by verification helpers."""

from __future__ import annotations

import hashlib
from datetime import datetime

from lxml import etree

from remotesign.formats.base import FormatError, ValidationData
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.canonical import canonicalize
from remotesign.formats.xades.model import ReferenceInfo, SignatureValues
from remotesign.formats.xades.uris import uri_to_name
from remotesign.formats.xades.xmlio import child, element_children, unb64

STS = c.q(c.XADES, "SignatureTimeStamp")
CERT_VALUES = c.q(c.XADES, "CertificateValues")
REV_VALUES = c.q(c.XADES, "RevocationValues")
TSVD = c.q(c.XADES141, "TimeStampValidationData")
ATS = c.q(c.XADES141, "ArchiveTimeStamp")


def qualifying_properties(sig: etree._Element) -> etree._Element | None:
    """The xades:QualifyingProperties of ``sig`` (a direct child of one of its ds:Objects)."""
    found = [qp for obj in sig.findall(c.q(c.DS, "Object")) for qp in obj.findall(c.q(c.XADES, "QualifyingProperties"))]
    if len(found) > 1:
        raise FormatError("invalid_xades", "more than one xades:QualifyingProperties")
    if found and sig.get("Id") and found[0].get("Target") not in (None, f"#{sig.get('Id')}"):
        raise FormatError("invalid_xades", "QualifyingProperties Target does not point at the signature")
    return found[0] if found else None


def unsigned_signature_properties(sig: etree._Element) -> etree._Element | None:
    qp = qualifying_properties(sig)
    if qp is None:
        return None
    up = child(qp, c.XADES, "UnsignedProperties", required=False)
    return None if up is None else child(up, c.XADES, "UnsignedSignatureProperties", required=False)


def unsigned_children(sig: etree._Element) -> list[etree._Element]:
    usp = unsigned_signature_properties(sig)
    return [] if usp is None else element_children(usp)


def signed_info(sig: etree._Element) -> etree._Element:
    return child(sig, c.DS, "SignedInfo")


def canonical_signed_info(sig: etree._Element) -> bytes:
    """The octets the signature value is computed over."""
    si = signed_info(sig)
    return canonicalize(si, child(si, c.DS, "CanonicalizationMethod").get("Algorithm", ""))


def keyinfo_certificates(sig: etree._Element) -> list[bytes]:
    key_info = child(sig, c.DS, "KeyInfo", required=False)
    if key_info is None:
        return []
    return [unb64(el.text, "X509Certificate")
            for data in key_info.findall(c.q(c.DS, "X509Data"))
            for el in data.findall(c.q(c.DS, "X509Certificate"))]


def _signing_cert_digests(sig: etree._Element) -> list[tuple[str, bytes]]:
    qp = qualifying_properties(sig)
    if qp is None:
        return []
    out = []
    for tag in ("SigningCertificateV2", "SigningCertificate"):
        for prop in qp.iter(c.q(c.XADES, tag)):
            for digest in prop.iter(c.q(c.XADES, "CertDigest")):
                method = digest.find(c.q(c.DS, "DigestMethod"))
                name = c.DIGEST_NAMES.get(method.get("Algorithm") if method is not None else "")
                if name is not None:
                    out.append((name, unb64(digest.findtext(c.q(c.DS, "DigestValue")), "CertDigest")))
    return out


def signer_certificate(sig: etree._Element, certificates: list[bytes]) -> bytes | None:
    """The KeyInfo certificate named by SigningCertificate(V2); the first one if none is named."""
    digests = _signing_cert_digests(sig)
    for der in certificates:
        if any(hashlib.new(name, der).digest() == value for name, value in digests):
            return der
    return certificates[0] if certificates and not digests else None


def _encapsulated(parent: etree._Element, local: str) -> list[bytes]:
    return [unb64(e.text, local) for e in parent.findall(c.q(c.XADES, local))]


def _values(container: etree._Element) -> ValidationData:
    """Values of a CertificateValues / RevocationValues property or of a TimeStampValidationData."""
    certs: list[bytes] = []
    ocsp: list[bytes] = []
    crls: list[bytes] = []
    for cv in ([container] if container.tag == CERT_VALUES else container.findall(CERT_VALUES)):
        certs += _encapsulated(cv, "EncapsulatedX509Certificate")
    for rv in ([container] if container.tag == REV_VALUES else container.findall(REV_VALUES)):
        for values in rv.findall(c.q(c.XADES, "OCSPValues")):
            ocsp += _encapsulated(values, "EncapsulatedOCSPValue")
        for values in rv.findall(c.q(c.XADES, "CRLValues")):
            crls += _encapsulated(values, "EncapsulatedCRLValue")
    return ValidationData(tuple(certs), tuple(ocsp), tuple(crls))


def embedded_validation_data(sig: etree._Element, *, include_key_info: bool = False) -> ValidationData:
    """Certificates, OCSP responses and CRLs the signature carries (CertificateValues,
    RevocationValues and every TimeStampValidationData), first occurrence order."""
    data = ValidationData(tuple(keyinfo_certificates(sig)) if include_key_info else ())
    for prop in unsigned_children(sig):
        if prop.tag in (CERT_VALUES, REV_VALUES, TSVD):
            data = data.merged(_values(prop))
    return data.merged(ValidationData())


def level_of(sig: etree._Element) -> str:
    """Baseline level by content: T needs a signature time-stamp; then an archive time-stamp
    makes LTA, certificate or revocation values make LT."""
    tags = {p.tag for p in unsigned_children(sig)}
    if STS not in tags:
        return "B"
    if ATS in tags:
        return "LTA"
    if CERT_VALUES in tags or REV_VALUES in tags:
        return "LT"
    return "T"


def references(sig: etree._Element) -> list[ReferenceInfo]:
    out = []
    for ref in signed_info(sig).findall(c.q(c.DS, "Reference")):
        uri = ref.get("URI")
        if uri is None:
            raise FormatError("invalid_xades", "ds:Reference without URI")
        method = child(ref, c.DS, "DigestMethod")
        name = c.DIGEST_NAMES.get(method.get("Algorithm", ""))
        if name is None:
            raise FormatError("unsupported_algorithm", f"digest method {method.get('Algorithm')!r} is not supported")
        transforms = ref.find(c.q(c.DS, "Transforms"))
        out.append(ReferenceInfo(
            id=ref.get("Id"), uri=uri, name=uri_to_name(uri), type=ref.get("Type"), digest_algorithm=name,
            digest=unb64(child(ref, c.DS, "DigestValue").text, "DigestValue"),
            transforms=tuple(t.get("Algorithm", "") for t in transforms.findall(c.q(c.DS, "Transform")))
            if transforms is not None else ()))
    return out


def _signing_time(sig: etree._Element) -> datetime | None:
    qp = qualifying_properties(sig)
    text = None if qp is None else qp.findtext(f".//{c.q(c.XADES, 'SigningTime')}")
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise FormatError("invalid_xades", f"bad SigningTime {text!r}") from None


def read_signature(sig: etree._Element, *, require_value: bool = True) -> SignatureValues:
    si = signed_info(sig)
    method = child(si, c.DS, "SignatureMethod").get("Algorithm", "")
    if method not in c.SIGNATURE_METHODS:
        raise FormatError("unsupported_algorithm", f"signature method {method!r} is not supported")
    mechanism, digest_name = c.SIGNATURE_METHODS[method]
    value = unb64(child(sig, c.DS, "SignatureValue").text, "SignatureValue")
    if require_value and not value:
        raise FormatError("not_signed", "the signature value is empty; embed it first")
    certs = keyinfo_certificates(sig)
    signer = signer_certificate(sig, certs)
    ordered = ([signer] if signer else []) + [d for d in certs if d != signer]
    return SignatureValues(
        signature_id=sig.get("Id"), signature_method=method, mechanism=mechanism, digest_algorithm=digest_name,
        signed_info=canonical_signed_info(sig), signature_value=value, signer_certificate=signer,
        certificates=tuple(ordered), references=tuple(references(sig)), signing_time=_signing_time(sig),
        level=level_of(sig), validation_data=embedded_validation_data(sig))
