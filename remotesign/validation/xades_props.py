"""Signed qualifying properties as facts for the report (signing time, roles, place,
commitments, policy) and the identification of the signing certificate (EN 319 102-1 §5.2.3):
the candidate whose key verifies the signature value must be the one SigningCertificate(V2)
names by digest, or the signing certificate is not identified."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

from asn1crypto import tsp, x509
from lxml import etree

from remotesign.validation.xades_algorithms import DIGESTS, SignatureMethod, verify_signature_value
from remotesign.validation.xades_dom import (ALL_XADES, DS, SignatureParts, children, local_name, text_of)

MAX_CANDIDATES = 64


def parse_time(text: str | None) -> datetime | None:
    """xsd:dateTime; without a zone it is taken as UTC (as EU DSS does)."""
    if not text:
        return None
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _any(parent: etree._Element | None, *names: str) -> list[etree._Element]:
    """Children in any XAdES or XMLDSig namespace (1.1.1 writes DigestMethod in its own)."""
    return children(parent, (*ALL_XADES, DS), *names)


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
        return self.issuer is None or self.issuer == cert.issuer


def signing_certificate_refs(parts: SignatureParts) -> tuple[list[CertReference], int]:
    """Cert references of SigningCertificate / SigningCertificateV2, and how many such
    properties there are (the format requires exactly one)."""
    props = parts.signed("SigningCertificate") + parts.signed("SigningCertificateV2")
    refs = []
    for prop in props:
        for cert_el in _any(prop, "Cert"):
            refs.append(_cert_ref(cert_el))
    return refs, len(props)


def _cert_ref(cert_el: etree._Element) -> CertReference:
    algorithm = digest = None
    for digest_el in _any(cert_el, "CertDigest"):
        method = next(iter(_any(digest_el, "DigestMethod")), None)
        algorithm = DIGESTS.get(method.get("Algorithm", "")) if method is not None else None
        digest = _b64(text_of(next(iter(_any(digest_el, "DigestValue")), None)))
    serial = issuer = None
    for issuer_serial in _any(cert_el, "IssuerSerial"):
        serial_text = text_of(next(iter(_any(issuer_serial, "X509SerialNumber")), None))
        try:
            serial = int(serial_text) if serial_text else None
        except ValueError:
            serial = None
    for v2 in _any(cert_el, "IssuerSerialV2"):
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


def _b64(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


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
    """Pick the signing certificate among ``candidates`` (KeyInfo first). ``qualified``: the
    signature has QualifyingProperties, so SigningCertificate(V2) must name the signer."""
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


@dataclass
class SignedFacts:
    """Signed properties reported to the caller."""

    claimed_signing_time: datetime | None = None
    signer_roles: list[str] = field(default_factory=list)
    production_place: dict[str, str] = field(default_factory=dict)
    commitment_types: list[str] = field(default_factory=list)
    policy_id: str | None = None
    policy_implied: bool = False


_PLACE = {"City": "city", "StateOrProvince": "stateOrProvince", "PostalCode": "postalCode",
          "CountryName": "countryName"}


def signed_facts(parts: SignatureParts) -> SignedFacts:
    facts = SignedFacts()
    times = parts.signed("SigningTime")
    if times:
        facts.claimed_signing_time = parse_time(text_of(times[0]))
    for role in parts.signed("SignerRole") + parts.signed("SignerRoleV2"):
        for claimed in _any(role, "ClaimedRoles"):
            facts.signer_roles += [t for t in (text_of(r) for r in _any(claimed, "ClaimedRole")) if t]
    for place in (parts.signed("SignatureProductionPlace") + parts.signed("SignatureProductionPlaceV2"))[:1]:
        for el in _any(place):
            key = _PLACE.get(local_name(el))
            value = text_of(el)
            if key and value:
                facts.production_place[key] = value
    for indication in parts.data_object_properties("CommitmentTypeIndication"):
        for type_id in _any(indication, "CommitmentTypeId"):
            value = text_of(next(iter(_any(type_id, "Identifier")), None))
            if value:
                facts.commitment_types.append(value)
    for policy in parts.signed("SignaturePolicyIdentifier")[:1]:
        for policy_id in _any(policy, "SignaturePolicyId"):
            for sig_policy_id in _any(policy_id, "SigPolicyId"):
                facts.policy_id = text_of(next(iter(_any(sig_policy_id, "Identifier")), None))
        facts.policy_implied = bool(_any(policy, "SignaturePolicyImplied"))
    return facts
