"""Which XAdES form and level a signature has, decided the way EU DSS decides it
(XAdESSignature.getDataFoundUpToLevel with the EN 319 132-1 §6.3 baseline requirements of
XAdESBaselineRequirementsChecker), so reports name levels as eParaksts and DSS users expect:
``XAdES_BASELINE_B/T/LT/LTA`` when the baseline requirements hold, otherwise the extended names
(``XAdES_BES/EPES/T/C/X/XL/LT/A``), ``XML_NOT_ETSI`` for plain XMLDSig, and
``XAdES_BASELINE_LT_TM`` for the Estonian BDOC time-mark profile (an OCSP response bound to the
signature instead of a signature time-stamp)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import x509
from lxml import etree

from remotesign.formats.xades.c14n import ALGORITHMS
from remotesign.formats.xades.dom import DS, SignatureParts, children, is_element, local_name, single
from remotesign.formats.xades.reading import CertReference
from remotesign.formats.xades.references import ReferenceOutcome

_EXEMPT_FROM_FORMAT = frozenset({"signed_properties", "countersigned", "manifest", "key_info", "properties"})


@dataclass
class LevelFacts:
    """What level detection looks at besides the XML structure."""

    parts: SignatureParts
    references: list[ReferenceOutcome]
    signing_certificate: x509.Certificate | None
    keyinfo_certificates: list[x509.Certificate]
    cert_refs: list[CertReference]
    #: Encapsulated token count per SignatureTimeStamp, and the generation times read from them.
    signature_timestamp_tokens: list[int] = field(default_factory=list)
    signature_timestamp_times: list[datetime] = field(default_factory=list)
    #: Certificates of the signature and its time-stamps (all but the last archive time-stamp).
    certificates: list[x509.Certificate] = field(default_factory=list)
    has_revocation_data: bool = False
    #: Every certificate that needs revocation data has some (EU DSS's "all revocation data present").
    revocation_complete: bool = False
    has_ocsp_values: bool = False


def _count(parts: SignatureParts, *names: str) -> int:
    return sum(len(parts.signed(n)) for n in names)


def _unsigned_count(parts: SignatureParts, *names: str) -> int:
    return len(parts.unsigned_named(*names))


def _dof_ok(facts: LevelFacts, dof: etree._Element, baseline: bool) -> bool:
    """EN 319 132-1 §5.2.4 (and §6.3 for baseline) DataObjectFormat requirements."""
    counts = {name: len([e for e in dof if is_element(e) and local_name(e) == name])
              for name in ("Description", "ObjectIdentifier", "MimeType", "Encoding")}
    if not (counts["Description"] or counts["ObjectIdentifier"] or counts["MimeType"]):
        return False
    if baseline and (counts["MimeType"] != 1 or counts["Description"] > 1 or counts["ObjectIdentifier"] > 1
                     or counts["Encoding"] > 1):
        return False
    target = dof.get("ObjectReference", "")
    if not target.startswith("#"):
        return False
    ref = next((r for r in facts.references if r.id is not None and r.id == target[1:]), None)
    if ref is None:
        return _in_signed_manifest(facts, target[1:])
    obj = ref.target
    if obj is not None and obj.tag == f"{{{DS}}}Object":
        mime = next((e for e in dof if is_element(e) and local_name(e) == "MimeType"), None)
        if mime is not None and obj.get("MimeType") and obj.get("MimeType") != (mime.text or "").strip():
            return False
        encoding = next((e for e in dof if is_element(e) and local_name(e) == "Encoding"), None)
        if encoding is not None and obj.get("Encoding") and obj.get("Encoding") != (encoding.text or "").strip():
            return False
    return True


def _in_signed_manifest(facts: LevelFacts, ident: str) -> bool:
    for ref in facts.references:
        if ref.kind == "manifest" and ref.target is not None:
            if any(r.get("Id") == ident for r in children(ref.target, DS, "Reference")):
                return True
    return False


def _bes(facts: LevelFacts) -> bool:
    parts = facts.parts
    if parts.qualifying_properties is None:
        return False
    if _count(parts, "SigningTime") > 1 or _count(parts, "SigningCertificate", "SigningCertificateV2") > 1:
        return False
    if not all(_dof_ok(facts, d, False) for d in parts.data_object_properties("DataObjectFormat")):
        return False
    if _count(parts, "SignatureProductionPlace", "SignatureProductionPlaceV2") > 1:
        return False
    if _count(parts, "SignerRole", "SignerRoleV2") > 1:
        return False
    signed_key_info = any(r.kind == "key_info" and r.found for r in facts.references)
    in_key_info = facts.signing_certificate is not None and any(
        c.dump() == facts.signing_certificate.dump() for c in facts.keyinfo_certificates)
    return _count(parts, "SigningCertificate", "SigningCertificateV2") == 1 or (signed_key_info and in_key_info)


def _epes(facts: LevelFacts) -> bool:
    return (_count(facts.parts, "SignaturePolicyIdentifier") == 1
            and _unsigned_count(facts.parts, "SignaturePolicyStore") <= 1)


def _baseline_b(facts: LevelFacts) -> bool:
    parts = facts.parts
    if parts.key_info is None:
        return False
    method = single(parts.signed_info, DS, "CanonicalizationMethod")
    if method is None or method.get("Algorithm") not in ALGORITHMS:
        return False
    if len(facts.references) < 2:
        return False
    if _count(parts, "SigningTime") != 1 or _count(parts, "SigningCertificate", "SigningCertificateV2") != 1:
        return False
    dofs = parts.data_object_properties("DataObjectFormat")
    if not all(_dof_ok(facts, d, True) for d in dofs):
        return False
    if _count(parts, "SignerRole", "SignerRoleV2") > 1:
        return False
    if _count(parts, "SignatureProductionPlace", "SignatureProductionPlaceV2") > 1:
        return False
    if _count(parts, "SignaturePolicyIdentifier") > 1 or _unsigned_count(parts, "SignaturePolicyStore") > 1:
        return False
    if facts.signing_certificate is None or not any(
            c.dump() == facts.signing_certificate.dump() for c in facts.keyinfo_certificates):
        return False
    if parts.signed("SigningCertificateV2") and any(r.has_uri for r in facts.cert_refs):
        return False
    described = {d.get("ObjectReference", "")[1:] for d in dofs}
    for ref in facts.references:
        exempt = (ref.uri or "").startswith("#") and ref.kind in _EXEMPT_FROM_FORMAT
        if not exempt and ref.id and ref.id not in described:
            return False
    return True


def _minimal_t(facts: LevelFacts) -> bool:
    if not facts.signature_timestamp_tokens:
        return False
    if facts.signing_certificate is not None:
        not_after = facts.signing_certificate["tbs_certificate"]["validity"]["not_after"].native
        if any(t >= not_after for t in facts.signature_timestamp_times):
            return False
    return True


def _minimal_lt(facts: LevelFacts) -> bool:
    certs = facts.certificates
    all_self_signed = bool(certs) and all(c.self_signed != "no" for c in certs)
    if not all_self_signed and facts.has_revocation_data:
        return facts.revocation_complete
    if all_self_signed:
        return bool(_unsigned_count(facts.parts, "CertificateValues") or any(
            children(t, facts.parts.ns(), "CertificateValues")
            for t in facts.parts.unsigned_named("TimeStampValidationData")))
    return False


def _baseline_lt(facts: LevelFacts) -> bool:
    parts = facts.parts
    return (_minimal_lt(facts)
            and _unsigned_count(parts, "CertificateValues") <= 1
            and _unsigned_count(parts, "CompleteCertificateRefs", "CompleteCertificateRefsV2") == 0
            and _unsigned_count(parts, "AttrAuthoritiesCertValues") <= 1
            and _unsigned_count(parts, "RevocationValues") <= 1
            and _unsigned_count(parts, "CompleteRevocationRefs") == 0
            and _unsigned_count(parts, "AttributeRevocationValues") <= 1
            and _unsigned_count(parts, "SigAndRefsTimeStamp", "SigAndRefsTimeStampV2") == 0
            and _unsigned_count(parts, "RefsOnlyTimeStamp", "RefsOnlyTimeStampV2") == 0)


def _c(facts: LevelFacts) -> bool:
    certs = facts.certificates
    all_self_signed = bool(certs) and all(c.self_signed != "no" for c in certs)
    cert_refs = _unsigned_count(facts.parts, "CompleteCertificateRefs", "CompleteCertificateRefsV2")
    rev_refs = _unsigned_count(facts.parts, "CompleteRevocationRefs")
    return cert_refs == 1 and (rev_refs == 1 or (rev_refs == 0 and all_self_signed))


def _x(facts: LevelFacts) -> bool:
    return bool(_unsigned_count(facts.parts, "SigAndRefsTimeStamp", "SigAndRefsTimeStampV2", "RefsOnlyTimeStamp",
                                "RefsOnlyTimeStampV2"))


def _archive(facts: LevelFacts) -> bool:
    return bool(_unsigned_count(facts.parts, "ArchiveTimeStamp"))


def signature_format(facts: LevelFacts) -> str:
    """The format/level name (see the module docstring)."""
    if not _bes(facts):
        return "XML_NOT_ETSI"
    baseline = _baseline_b(facts)
    extended_t = _minimal_t(facts) and all(n >= 1 for n in facts.signature_timestamp_tokens)
    if not extended_t:
        if baseline:
            if not facts.signature_timestamp_tokens and facts.has_ocsp_values and _baseline_lt(facts):
                return "XAdES_BASELINE_LT_TM"
            return "XAdES_BASELINE_B"
        return "XAdES_EPES" if _epes(facts) else "XAdES_BES"
    baseline = baseline and all(n == 1 for n in facts.signature_timestamp_tokens)
    if baseline and _baseline_lt(facts):
        return "XAdES_BASELINE_LTA" if _archive(facts) else "XAdES_BASELINE_LT"
    if _c(facts):
        if _minimal_lt(facts):
            if _archive(facts):
                return "XAdES_A"
            if _x(facts):
                return "XAdES_XL"
        return "XAdES_X" if _x(facts) else "XAdES_C"
    if _minimal_lt(facts):
        return "XAdES_A" if _archive(facts) else "XAdES_LT"
    return "XAdES_BASELINE_T" if baseline else "XAdES_T"


def is_epes(facts: LevelFacts) -> bool:
    return _epes(facts)
