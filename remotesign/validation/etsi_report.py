"""The ETSI TS 119 102-2 (v1.2.1) XML validation report of a validated document, for any format.

Built from the format-independent model with pyHanko's generated TS 119 102-2 bindings, so the
element order and namespaces are the schema's and match the reports pyHanko itself writes for
PDFs (same validation-object identifiers, URNs and prefixes). Signature quality is given with
the EU DSS signature-qualification URIs (``urn:cef:dss:signatureQualification:...``), which is
what DSS-based validators put there. Output is deterministic for a given result.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import Any

from asn1crypto import x509
from pyhanko.generated.etsi import ts_11910202 as vr
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig
from xsdata.models.datatype import XmlDateTime

from remotesign.validation.model import (DocumentResult, Indication, SignatureResult, SubIndication,
                                         TimestampKind, TimestampResult)

NAMESPACES = {
    "vr": "http://uri.etsi.org/19102/v1.2.1#",
    "XAdES": "http://uri.etsi.org/01903/v1.3.2#",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xs": "http://www.w3.org/2001/XMLSchema",
}
MAIN_INDICATION = {
    Indication.TOTAL_PASSED: "urn:etsi:019102:mainindication:total-passed",
    Indication.TOTAL_FAILED: "urn:etsi:019102:mainindication:total-failed",
    Indication.INDETERMINATE: "urn:etsi:019102:mainindication:indeterminate",
}
SUBINDICATION_PREFIX = "urn:etsi:019102:subindication:"
CERTIFICATE_OBJECT = "urn:etsi:019102:validationObject:certificate"
POE_FROM_VALIDATION = "urn:etsi:019102:poetype:validation"
_QUALITY_PREFIX = "urn:cef:dss:signatureQualification:"
#: eParaksts signature levels -> the tail of their DSS signature-qualification URI.
_QUALITY = {
    "QESIG": "QESig", "QESEAL": "QESeal", "QES": "QES",
    "ADESIG_QC": "AdESigQC", "ADESEAL_QC": "AdESealQC", "ADES_QC": "AdESQC",
    "ADESIG": "AdESig", "ADESEAL": "AdESeal", "ADES": "AdES",
    "NOT_ADES_QC_QSCD": "notAdESbutQCwithQSCD", "NOT_ADES_QC": "notAdESbutQC", "NOT_ADES": "notAdES",
    "NA": "notApplicable",
}
_REPORT_DATA_ERROR = "urn:remotesign:validation:error"
_REPORT_DATA_WARNING = "urn:remotesign:validation:warning"
#: With these the chain's last certificate is not a trust anchor, only where building stopped.
_NO_ANCHOR = frozenset({SubIndication.NO_CERTIFICATE_CHAIN_FOUND, SubIndication.NO_SIGNING_CERTIFICATE_FOUND})
_OID = re.compile(r"^[0-2](\.\d+)+$")
_NCNAME_BAD = re.compile(r"[^A-Za-z0-9._-]")
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def etsi_validation_report(document: DocumentResult) -> bytes:
    """The ValidationReport XML (UTF-8): one SignatureValidationReport per signature and the
    certificates they reference as SignatureValidationObjects."""
    objects: dict[str, vr.ValidationObjectType] = {}
    ids: set[str] = set()
    reports = tuple(_signature_report(s, document, objects, ids) for s in document.signatures)
    report = vr.ValidationReport(
        signature_validation_report=reports,
        signature_validation_objects=(vr.ValidationObjectListType(validation_object=tuple(objects.values()))
                                      if objects else None),
    )
    config = SerializerConfig(indent="  ", xml_declaration=True, encoding="UTF-8")
    return XmlSerializer(config=config).render(report, ns_map=NAMESPACES).encode("utf-8")


def signature_quality_uri(level: str) -> str:
    """The DSS signature-qualification URI of an eParaksts ``signatureLevel``."""
    if level.startswith("INDETERMINATE_") and level[len("INDETERMINATE_"):] in _QUALITY:
        return f"{_QUALITY_PREFIX}indeterminate{_QUALITY[level[len('INDETERMINATE_'):]]}"
    return _QUALITY_PREFIX + _QUALITY.get(level, "notApplicable")


def _signature_report(s: SignatureResult, document: DocumentResult, objects: dict[str, vr.ValidationObjectType],
                      ids: set[str]) -> vr.SignatureValidationReportType:
    refs = [_certificate_object(c, objects) for c in _chain(s)]
    signer = None
    if s.signing_certificate is not None:
        signer = vr.SignerInformationType(signer_certificate=_ref(refs[0]), signer=_signer_name(s.signing_certificate))
    best_time = s.best_signature_time or document.validation_time
    return vr.SignatureValidationReportType(
        signature_identifier=vr.SignatureIdentifierType(id=_unique_id(s.id, ids), hash_only=False,
                                                        doc_hash_only=False),
        validation_time_info=vr.ValidationTimeInfoType(
            validation_time=_time(document.validation_time),
            best_signature_time=vr.POEType(poetime=_time(best_time), type_of_proof=POE_FROM_VALIDATION)),
        signature_attributes=_attributes(s),
        signer_information=signer,
        signature_quality=vr.SignatureQualityType(signature_quality_information=(
            signature_quality_uri(s.signature_level),)),
        signature_validation_process=vr.SignatureValidationProcessType(
            signature_validation_process_id=f"urn:etsi:019102:validationprocess:{_process(s)}"),
        signature_validation_status=vr.ValidationStatusType(
            main_indication=MAIN_INDICATION[s.indication],
            sub_indication=(f"{SUBINDICATION_PREFIX}{s.sub_indication.value}",) if s.sub_indication else (),
            associated_validation_report_data=_report_data(s, refs),
        ),
    )


def _chain(s: SignatureResult) -> list[x509.Certificate]:
    """Signer first, anchor last, each certificate once; none without a signing certificate."""
    if s.signing_certificate is None:
        return []
    certs = [s.signing_certificate, *s.chain]
    return list({c.dump(): c for c in certs}.values())


def _certificate_object(cert: x509.Certificate, objects: dict[str, vr.ValidationObjectType]) -> str:
    der = cert.dump()
    vo_id = f"vo-certificate-{hashlib.sha256(der).hexdigest()}"  # pyHanko's identifier scheme
    if vo_id not in objects:
        objects[vo_id] = vr.ValidationObjectType(
            id=vo_id, object_type=CERTIFICATE_OBJECT,
            validation_object_representation=vr.ValidationObjectRepresentationType(base64=der))
    return vo_id


def _ref(vo_id: str) -> vr.VOReferenceType:
    return vr.VOReferenceType(voreference=(vo_id,))


def _report_data(s: SignatureResult, refs: list[str]) -> tuple[vr.ValidationReportDataType, ...]:
    """The certificate chain the conclusion rests on, and the validator's messages."""
    data: dict[str, Any] = {}
    if refs:
        anchored = len(refs) > 1 and s.sub_indication not in _NO_ANCHOR
        middle = refs[1:-1] if anchored else refs[1:]
        data["trust_anchor"] = _ref(refs[-1]) if anchored else None
        data["certificate_chain"] = vr.CertificateChainType(
            signing_certificate=_ref(refs[0]), intermediate_certificate=tuple(_ref(r) for r in middle),
            trust_anchor=_ref(refs[-1]) if anchored else None)
    messages = [(_REPORT_DATA_ERROR, m) for m in s.errors] + [(_REPORT_DATA_WARNING, m) for m in s.warnings]
    if messages:
        data["additional_validation_report_data"] = vr.AdditionalValidationReportDataType(report_data=tuple(
            vr.TypedDataType(type_value=kind, value=_text(text)) for kind, text in messages))
    return (vr.ValidationReportDataType(**data),) if data else ()


def _attributes(s: SignatureResult) -> vr.SignatureAttributesType | None:
    """The signature's attributes as the signer claimed them (TS 119 102-2 §4.3.5.1)."""
    attrs: dict[str, Any] = {}
    if s.claimed_signing_time is not None:
        attrs["signing_time"] = (vr.SASigningTimeType(signed=True, time=_time(s.claimed_signing_time)),)
    if s.commitment_types:
        attrs["commitment_type_indication"] = tuple(
            vr.SACommitmentTypeIndicationType(signed=True, commitment_type_identifier=_text(_urn(c)))
            for c in s.commitment_types)
    if s.policy_id:
        attrs["sig_policy_identifier"] = (vr.SASigPolicyIdentifierType(signed=True,
                                                                      sig_policy_id=_text(_urn(s.policy_id))),)
    if s.production_place:
        attrs["signature_production_place"] = (vr.SASignatureProductionPlaceType(
            signed=True, address_string=tuple(_text(v) for v in s.production_place.values() if v)),)
    if s.signer_roles:
        attrs["signer_role"] = (vr.SASignerRoleType(signed=True, role_details=tuple(
            vr.SAOneSignerRoleType(role=_text(r), endorsement_type=vr.SAOneSignerRoleTypeEndorsementType.CLAIMED)
            for r in s.signer_roles)),)
    for field_name, kinds in (("all_data_objects_time_stamp", {TimestampKind.CONTENT}),
                              ("signature_time_stamp", {TimestampKind.SIGNATURE}),
                              ("sig_and_refs_time_stamp", {TimestampKind.VALIDATION_DATA}),
                              ("archive_time_stamp", {TimestampKind.ARCHIVE}),
                              ("doc_time_stamp", {TimestampKind.DOCUMENT})):
        stamps = tuple(_timestamp(t) for t in s.timestamps if t.kind in kinds and t.gen_time is not None)
        if stamps:
            attrs[field_name] = stamps
    if s.signing_reason:
        attrs["reason"] = (vr.SAReasonType(signed=True, reason_element=_text(s.signing_reason)),)
    return vr.SignatureAttributesType(**attrs) if attrs else None


def _timestamp(t: TimestampResult) -> vr.SATimestampType:
    assert t.gen_time is not None
    return vr.SATimestampType(signed=t.kind is TimestampKind.CONTENT, time_stamp_value=_time(t.gen_time))


def _process(s: SignatureResult) -> str:
    """Basic, LTVM (validation with time) or LTA (with long-term availability), by the time-stamps
    the validation could rely on (EN 319 102-1 §5.3-5.6)."""
    kinds = {t.kind for t in s.timestamps if t.valid}
    if kinds & {TimestampKind.ARCHIVE, TimestampKind.DOCUMENT}:
        return "LTA"
    if kinds & {TimestampKind.SIGNATURE, TimestampKind.VALIDATION_DATA}:
        return "LTVM"
    return "Basic"


def _signer_name(cert: x509.Certificate) -> str:
    names = cert.subject.native
    return _text(str(names.get("common_name") or cert.subject.human_friendly))


def _urn(value: str) -> str:
    """OIDs as ``urn:oid:`` URIs (TS 119 102-2 identifies policies and commitments by URI)."""
    return f"urn:oid:{value}" if _OID.match(value) else value


def _text(value: str) -> str:
    """``value`` without the characters XML 1.0 cannot carry (messages may quote file content)."""
    return _NOT_XML_CHAR.sub("\ufffd", value)


def _unique_id(value: str, taken: set[str]) -> str:
    """``value`` as an xs:ID (an NCName, unique in the report)."""
    candidate = _NCNAME_BAD.sub("_", value) or "signature"
    if not re.match(r"[A-Za-z_]", candidate):
        candidate = f"sig-{candidate}"
    unique, n = candidate, 1
    while unique in taken or unique.startswith("vo-certificate-"):
        n += 1
        unique = f"{candidate}-{n}"
    taken.add(unique)
    return unique


def _time(value: datetime) -> XmlDateTime:
    aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return XmlDateTime.from_datetime(aware.astimezone(timezone.utc))
