"""The DigiDoc time-mark ("notary"): the one OCSP response of a DigiDoc signature, whose nonce is
the SHA-1 digest of the signature value (bare, or wrapped in an OCTET STRING), proves the
signature existed when the response was produced. DigiDoc also references the response and its
responder's certificate by digest from the unsigned properties; those must match."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import core, ocsp, x509
from lxml import etree

from remotesign.formats.xades.algorithms import DIGESTS
from remotesign.formats.xades.dom import DS, StructureError, children, text_of
from remotesign.validation.ddoc_parts import DdocParts, decode

NONCE_OID = "1.3.6.1.5.5.7.48.1.2"


class _RawExtension(core.Sequence):
    # extnValue as plain octets: asn1crypto's OCSP nonce spec refuses the bare digest DigiDoc's
    # responders put there.
    _fields = [("extn_id", core.ObjectIdentifier), ("critical", core.Boolean, {"default": False}),
               ("extn_value", core.OctetString)]


@dataclass
class Notary:
    """The validation data a DigiDoc signature carries and what is wrong with it."""

    responses: list[bytes] = field(default_factory=list)
    certificates: list[bytes] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)      # reference mismatches: the signature is invalid


def read_notary(parts: DdocParts, *, check_ocsp_digest: bool) -> Notary:
    """RevocationValues / CertificateValues, checked against CompleteRevocationRefs /
    CompleteCertificateRefs as DigiDoc checks them (SK-XML and 1.1 wrote wrong OCSP digests, so
    ``check_ocsp_digest`` is off for them)."""
    notary = Notary()
    for el in parts.unsigned("RevocationValues", "OCSPValues", "EncapsulatedOCSPValue") + \
            parts.unsigned("RevocationValues", "EncapsulatedOCSPValue"):
        notary.responses.append(decode(el, "EncapsulatedOCSPValue"))
    for el in parts.unsigned("CertificateValues", "EncapsulatedX509Certificate"):
        notary.certificates.append(decode(el, "EncapsulatedX509Certificate"))
    if not notary.responses:
        return notary
    if len(notary.responses) > 1:
        notary.problems.append("DigiDoc signatures carry one OCSP response, this one has more")
    cert_digests = [d for d in (_digest_value(c, parts) for c in parts.unsigned("CompleteCertificateRefs", "Cert"))
                    if d is not None]
    if notary.certificates and cert_digests and not any(
            hashlib.new(algorithm, der).digest() == digest
            for algorithm, digest in cert_digests for der in notary.certificates):
        notary.problems.append("Notary certificates digest doesn't match!")
    if check_ocsp_digest:
        refs = [d for d in (_digest_value(r, parts, "DigestAlgAndValue")
                            for r in parts.unsigned("CompleteRevocationRefs", "OCSPRefs", "OCSPRef")) if d is not None]
        if not refs:
            notary.problems.append("the OCSP response is not referenced from CompleteRevocationRefs")
        elif not any(hashlib.new(a, notary.responses[0]).digest() == d for a, d in refs):
            notary.problems.append("Notarys digest doesn't match!")
    return notary


def _digest_value(el: etree._Element, parts: DdocParts, holder: str = "CertDigest") -> tuple[str, bytes] | None:
    ns = (*parts.ns, DS)
    for container in children(el, ns, holder):
        method = next(iter(children(container, ns, "DigestMethod")), None)
        algorithm = DIGESTS.get(method.get("Algorithm", "")) if method is not None else None
        value = next(iter(children(container, ns, "DigestValue")), None)
        if algorithm is None or value is None or not text_of(value):
            return None
        try:
            return algorithm, decode(value, holder)
        except StructureError:
            return None
    return None


def nonce(der: bytes) -> bytes | None:
    """The nonce of an OCSP response: the extension's octets when they are 20 bytes (a bare SHA-1
    digest, as DigiDoc's responders wrote it), else the content of the OCTET STRING they hold."""
    try:
        data = ocsp.OCSPResponse.load(der).basic_ocsp_response["tbs_response_data"]
        for ext in data["response_extensions"] or ():
            parsed = _RawExtension.load(ext.dump())
            if parsed["extn_id"].dotted != NONCE_OID:
                continue
            raw = parsed["extn_value"].native
            if len(raw) == 20:
                return raw
            return core.OctetString.load(raw, strict=True).native
    except Exception:  # noqa: BLE001 - asn1crypto raises many types on hostile DER
        return None
    return None


def time_mark(der: bytes, signature_value: bytes, signer: x509.Certificate) -> datetime | None:
    """producedAt of the response when it is this signature's time-mark: its nonce is
    SHA-1(SignatureValue) and it answers for the signer's certificate."""
    found = nonce(der)
    if found is None or not hmac.compare_digest(found, hashlib.sha1(signature_value).digest()):
        return None
    try:
        data = ocsp.OCSPResponse.load(der).basic_ocsp_response["tbs_response_data"]
        if not any(_answers_for(single["cert_id"], signer) for single in data["responses"]):
            return None
        return data["produced_at"].native
    except Exception:  # noqa: BLE001 - an unreadable response is no time-mark
        return None


def _answers_for(cert_id: ocsp.CertId, cert: x509.Certificate) -> bool:
    if cert_id["serial_number"].native != cert.serial_number:
        return False
    try:
        algorithm = cert_id["hash_algorithm"]["algorithm"].native
        return hashlib.new(algorithm, cert.issuer.dump()).digest() == cert_id["issuer_name_hash"].native
    except ValueError:
        return False
