"""What PAdES and CAdES validation share: reading CMS attributes, gathering the validation
material a signature carries (and what the service adds), detecting the ETSI level of a CMS
signer, validating time-stamp tokens, and mapping pyHanko's AdES results onto our model.

pyHanko does the EN 319 102-1 processing; this module only feeds it and translates its answers,
so that both formats report the same way."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from asn1crypto import cms, core, crl as asn1_crl, ocsp as asn1_ocsp, pdf as asn1_pdf, tsp, x509
from pyhanko.sign.ades.report import AdESPassed, AdESSubIndic
from pyhanko.sign.validation.ades import ades_timestamp_validation
from pyhanko.sign.validation.policy_decl import LocalKnowledge, SignatureValidationSpec
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.revinfo.archival import CRLContainer, OCSPContainer
from pyhanko_certvalidator.sig_validate import SignatureValidationContext

from remotesign.names import same_name
from remotesign.formats.base import ValidationData
from remotesign.validation.cms_signature import CMS_SIGNATURE_VALIDATOR
from remotesign.validation.fetching import fetching_session, with_backend  # noqa: F401 - re-exported
from remotesign.validation.model import (Block, Conclusion, Indication, SignatureResult, SubIndication,
                                         TimestampKind, TimestampResult)

log = logging.getLogger(__name__)

# --- attribute OIDs (dotted, so that parsing never depends on asn1crypto's name registry) -------
CONTENT_TYPE = "1.2.840.113549.1.9.3"
MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
SIGNING_TIME = "1.2.840.113549.1.9.5"
COUNTER_SIGNATURE = "1.2.840.113549.1.9.6"
SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12"
SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
SIGNATURE_POLICY = "1.2.840.113549.1.9.16.2.15"
COMMITMENT_TYPE = "1.2.840.113549.1.9.16.2.16"
SIGNER_LOCATION = "1.2.840.113549.1.9.16.2.17"
SIGNER_ATTRIBUTES = "1.2.840.113549.1.9.16.2.18"
CONTENT_TIMESTAMP = "1.2.840.113549.1.9.16.2.20"
CERTIFICATE_REFS = "1.2.840.113549.1.9.16.2.21"
REVOCATION_REFS = "1.2.840.113549.1.9.16.2.22"
CERTIFICATE_VALUES = "1.2.840.113549.1.9.16.2.23"
REVOCATION_VALUES = "1.2.840.113549.1.9.16.2.24"
ESC_TIMESTAMP = "1.2.840.113549.1.9.16.2.25"
CERT_CRL_TIMESTAMP = "1.2.840.113549.1.9.16.2.26"
ARCHIVE_TIMESTAMP_V1 = "1.2.840.113549.1.9.16.2.27"
ARCHIVE_TIMESTAMP_V2 = "1.2.840.113549.1.9.16.2.48"
SIGNATURE_TIMESTAMP = "1.2.840.113549.1.9.16.2.14"
ARCHIVE_TIMESTAMP_V3 = "0.4.0.1733.2.4"
SIGNER_ATTRIBUTES_V2 = "0.4.0.19122.1.1"
ADOBE_REVOCATION_ARCHIVAL = "1.2.840.113583.1.1.8"
ID_DATA = "1.2.840.113549.1.7.1"
OCSP_NO_CHECK = "1.3.6.1.5.5.7.48.1.5"
#: SignedData.crls otherRevInfoFormat: id-ri-ocsp-response (RFC 5940, an OCSPResponse) and
#: id-pkix-ocsp-basic (a BasicOCSPResponse, as DSS and BouncyCastle also write and read it)
OTHER_REV_INFO_OCSP_RESPONSE = "1.3.6.1.5.5.7.16.2"
OTHER_REV_INFO_BASIC_OCSP = "1.3.6.1.5.5.7.48.1.1"

ARCHIVE_TIMESTAMPS = (ARCHIVE_TIMESTAMP_V1, ARCHIVE_TIMESTAMP_V2, ARCHIVE_TIMESTAMP_V3)
COMMITMENT_NAMES = {
    "1.2.840.113549.1.9.16.6.1": "ProofOfOrigin", "1.2.840.113549.1.9.16.6.2": "ProofOfReceipt",
    "1.2.840.113549.1.9.16.6.3": "ProofOfDelivery", "1.2.840.113549.1.9.16.6.4": "ProofOfSender",
    "1.2.840.113549.1.9.16.6.5": "ProofOfApproval", "1.2.840.113549.1.9.16.6.6": "ProofOfCreation",
}
# pyHanko knows a sub-indication that EN 319 102-1 v1.1.1 (and our model) folds into its neighbour.
_SUBINDICATION_ALIASES = {"REVOCATION_OUT_OF_BOUNDS_NO_POE": SubIndication.OUT_OF_BOUNDS_NO_POE}


# --- small ASN.1 types asn1crypto and pyHanko lack, parsed leniently -------------------------------
class _DirectoryStrings(core.SequenceOf):
    _child_spec = x509.DirectoryString


class _SignerLocation(core.Sequence):
    """ETSI EN 319 122-1 signer-location."""

    _fields = [
        ("country_name", x509.DirectoryString, {"explicit": 0, "optional": True}),
        ("locality_name", x509.DirectoryString, {"explicit": 1, "optional": True}),
        ("postal_address", _DirectoryStrings, {"explicit": 2, "optional": True}),
    ]


class _AnySet(core.SetOf):
    _child_spec = core.Any


class _RawAttribute(core.Sequence):
    _fields = [("type", core.ObjectIdentifier), ("values", _AnySet)]


class _RawAttributes(core.SequenceOf):
    _child_spec = _RawAttribute


class _SignerAttributesV2(core.Sequence):
    _fields = [
        ("claimed_attributes", _RawAttributes, {"explicit": 0, "optional": True}),
        ("certified_attributes", core.Any, {"explicit": 1, "optional": True}),
        ("signed_assertions", core.Any, {"explicit": 2, "optional": True}),
    ]


class _SignerAttributeChoice(core.Choice):
    _alternatives = [("claimed_attributes", _RawAttributes, {"explicit": 0}),
                     ("certified_attributes", core.Any, {"explicit": 1})]


class _SignerAttributesV1(core.SequenceOf):
    _child_spec = _SignerAttributeChoice


class _CrlValues(core.SequenceOf):
    _child_spec = asn1_crl.CertificateList


class _BasicOcspValues(core.SequenceOf):
    _child_spec = asn1_ocsp.BasicOCSPResponse


class _RevocationValues(core.Sequence):
    """RFC 5126 RevocationValues (CAdES revocation-values attribute)."""

    _fields = [
        ("crl_vals", _CrlValues, {"explicit": 0, "optional": True}),
        ("ocsp_vals", _BasicOcspValues, {"explicit": 1, "optional": True}),
        ("other_rev_vals", core.Any, {"explicit": 2, "optional": True}),
    ]


class _CertificateValues(core.SequenceOf):
    _child_spec = x509.Certificate


# --- attributes ----------------------------------------------------------------------------------
def _attrs(signer_info: cms.SignerInfo, signed: bool) -> list[cms.CMSAttribute]:
    value = signer_info["signed_attrs" if signed else "unsigned_attrs"]
    if isinstance(value, core.Void) or value is None:
        return []
    return list(value)


def attribute_values(signer_info: cms.SignerInfo, oid: str, *, signed: bool) -> list[core.Asn1Value]:
    """Every value of every attribute ``oid`` (signed or unsigned); values that do not match the
    type asn1crypto registers for ``oid`` come back unparsed (core.Any) instead of raising."""
    out: list[core.Asn1Value] = []
    for attr in _attrs(signer_info, signed):
        if attr["type"].dotted != oid:
            continue
        try:
            out.extend(list(attr["values"]))
        except Exception:  # noqa: BLE001 - hostile or exotic encoding
            out.extend(safe(lambda a=attr: list(_RawAttribute.load(a.dump())["values"])) or [])
    return out


def attribute_count(signer_info: cms.SignerInfo, oid: str, *, signed: bool) -> int:
    """How many attributes of type ``oid`` there are (not values)."""
    return sum(1 for attr in _attrs(signer_info, signed) if attr["type"].dotted == oid)


def value_count(signer_info: cms.SignerInfo, oid: str, *, signed: bool) -> int:
    return len(attribute_values(signer_info, oid, signed=signed))


def has_signed_attrs(signer_info: cms.SignerInfo) -> bool:
    return bool(_attrs(signer_info, True))


def reparse(value: core.Asn1Value, spec: type[core.Asn1Value]) -> Any:
    return spec.load(value.dump())


def new_hash(algorithm: str) -> Any:
    """A hashlib object for an asn1crypto digest algorithm name (sha256, sha3_256, ...)."""
    return hashlib.new(algorithm)


# --- pyHanko plumbing ------------------------------------------------------------------------------
@dataclass
class FailedAdES:
    """Stands in for a pyHanko AdES result when pyHanko raised instead of returning one."""

    ades_subindic: AdESSubIndic | None
    failure_msg: str | None
    api_status: Any = None


def make_spec(options: Any, material: Material, backend: AIOHttpFetcherBackend | None,
              base: SignatureValidationSpec | None = None) -> SignatureValidationSpec:
    """The request's validation spec with ``material`` as local knowledge. ``base``: the
    request's spec already built by ``options.signature_spec()`` (its trust manager and
    policies), so that one validation builds them once."""
    if base is None:
        spec = options.signature_spec(material.local_knowledge())
    else:
        spec = dataclasses.replace(base, local_knowledge=material.local_knowledge())
    return with_backend(with_cms_signature_validator(spec), backend)


def with_cms_signature_validator(spec: SignatureValidationSpec) -> SignatureValidationSpec:
    """``spec`` verifying signature values with :class:`CmsSignatureValidator` (the encodings DSS
    accepts and pyHanko's default does not)."""
    policy = spec.cert_validation_policy
    if policy.signature_validator is CMS_SIGNATURE_VALIDATOR:
        return spec
    return dataclasses.replace(spec, cert_validation_policy=dataclasses.replace(
        policy, signature_validator=CMS_SIGNATURE_VALIDATOR))


# --- subindications ------------------------------------------------------------------------------
def map_subindication(sub: AdESSubIndic | None) -> SubIndication | None:
    """pyHanko's AdES sub-indication as ours (PASSED -> None)."""
    if sub is None or sub == AdESPassed.OK:
        return None
    name = getattr(sub, "name", str(sub))
    if name in _SUBINDICATION_ALIASES:
        return _SUBINDICATION_ALIASES[name]
    try:
        return SubIndication[name]
    except KeyError:
        return SubIndication.GENERIC


# --- validation material -------------------------------------------------------------------------
@dataclass
class Material:
    """Certificates, OCSP responses and CRLs at hand for one validation (deduplicated)."""

    certs: list[x509.Certificate] = field(default_factory=list)
    ocsps: list[asn1_ocsp.OCSPResponse] = field(default_factory=list)
    crls: list[asn1_crl.CertificateList] = field(default_factory=list)
    _seen: set[bytes] = field(default_factory=set, repr=False)

    def add_cert(self, cert: x509.Certificate) -> None:
        cert.subject  # noqa: B018 - parse now, not inside pyHanko
        self._add(self.certs, cert)

    def add_ocsp(self, response: asn1_ocsp.OCSPResponse) -> None:
        response["response_status"].native  # noqa: B018 - parse now, not inside pyHanko
        self._add(self.ocsps, response)

    def add_crl(self, crl: asn1_crl.CertificateList) -> None:
        crl["tbs_cert_list"]["issuer"]  # noqa: B018 - parse now: pyHanko sorts by these fields later
        self._add(self.crls, crl)

    def _add(self, target: list, value: core.Asn1Value) -> None:
        try:
            key = hashlib.sha256(value.dump()).digest()
        except Exception:  # noqa: BLE001 - an unencodable value is simply not usable
            return
        if key not in self._seen:
            self._seen.add(key)
            target.append(value)

    def extend(self, other: Material) -> None:
        for cert in other.certs:
            self.add_cert(cert)
        for response in other.ocsps:
            self.add_ocsp(response)
        for crl in other.crls:
            self.add_crl(crl)

    def add_der(self, data: ValidationData) -> None:
        """Merge DER validation data (what :meth:`ValidationOptions.provided_validation_data` returns)."""
        for der in data.certificates:
            _try(lambda d=der: self.add_cert(x509.Certificate.load(d)))
        for der in data.ocsp_responses:
            _try(lambda d=der: self.add_ocsp(asn1_ocsp.OCSPResponse.load(d)))
        for der in data.crls:
            _try(lambda d=der: self.add_crl(asn1_crl.CertificateList.load(d)))

    def local_knowledge(self) -> LocalKnowledge:
        ocsps: list[OCSPContainer] = []
        for response in self.ocsps:
            try:
                ocsps.extend(OCSPContainer.load_multi(response))
            except Exception:  # noqa: BLE001 - a malformed response just does not count
                log.debug("skipping unreadable OCSP response", exc_info=True)
        return LocalKnowledge(known_ocsps=ocsps, known_crls=[CRLContainer(c) for c in self.crls],
                              known_certs=list(self.certs))


def _try(action: Callable[[], None]) -> None:
    try:
        action()
    except Exception:  # noqa: BLE001 - hostile input: drop the item, keep validating
        log.debug("skipping unreadable validation data item", exc_info=True)


def _basic_ocsp(response: asn1_ocsp.OCSPResponse) -> asn1_ocsp.BasicOCSPResponse | None:
    try:
        if response["response_status"].native != "successful":
            return None
        return response["response_bytes"]["response"].parsed
    except Exception:  # noqa: BLE001
        return None


def wrap_basic_ocsp(basic: asn1_ocsp.BasicOCSPResponse) -> asn1_ocsp.OCSPResponse:
    """A BasicOCSPResponse (as CAdES revocation-values holds it) as a full OCSPResponse."""
    return asn1_ocsp.OCSPResponse({
        "response_status": "successful",
        "response_bytes": {"response_type": "basic_ocsp_response",
                           "response": core.ParsableOctetString(basic.dump())},
    })


def signed_data_material(signed_data: cms.SignedData, signer_info: cms.SignerInfo | None = None) -> Material:
    """What a CMS signature carries itself: SignedData.certificates and crls (CRLs and OCSP
    responses as otherRevInfoFormat), the CAdES certificate-values / revocation-values unsigned
    attributes and Adobe's revocation-info-archival signed attribute."""
    material = Material()
    for choice in _safe_iter(signed_data["certificates"]):
        if getattr(choice, "name", None) == "certificate":
            _try(lambda c=choice: material.add_cert(c.chosen))
    for choice in _safe_iter(signed_data["crls"]):
        _try(lambda c=choice: _add_revocation_choice(material, c))
    if signer_info is not None:
        for value in attribute_values(signer_info, CERTIFICATE_VALUES, signed=False):
            _try(lambda v=value: [material.add_cert(c) for c in reparse(v, _CertificateValues)])
        for value in attribute_values(signer_info, REVOCATION_VALUES, signed=False):
            _try(lambda v=value: _add_revocation_values(material, reparse(v, _RevocationValues)))
        for value in attribute_values(signer_info, ADOBE_REVOCATION_ARCHIVAL, signed=True):
            _try(lambda v=value: _add_adobe_archival(material, v))
    return material


def _safe_iter(value: Any) -> Iterable:
    if value is None or isinstance(value, core.Void):
        return ()
    try:
        return list(value)
    except Exception:  # noqa: BLE001
        return ()


def _add_revocation_choice(material: Material, choice: cms.RevocationInfoChoice) -> None:
    if choice.name == "crl":
        material.add_crl(asn1_crl.CertificateList.load(choice.chosen.dump()))
    elif choice.name == "other":
        other = choice.chosen
        kind = other["other_rev_info_format"].dotted
        if kind == OTHER_REV_INFO_OCSP_RESPONSE:
            material.add_ocsp(asn1_ocsp.OCSPResponse.load(other["other_rev_info"].dump()))
        elif kind == OTHER_REV_INFO_BASIC_OCSP:  # EN 319 122-1 §5.5.2 lets CAdES store a BasicOCSPResponse
            material.add_ocsp(wrap_basic_ocsp(asn1_ocsp.BasicOCSPResponse.load(other["other_rev_info"].dump())))


def _add_revocation_values(material: Material, values: _RevocationValues) -> None:
    for crl in _safe_iter(values["crl_vals"]):
        material.add_crl(crl)
    for basic in _safe_iter(values["ocsp_vals"]):
        material.add_ocsp(wrap_basic_ocsp(basic))


def _add_adobe_archival(material: Material, value: core.Asn1Value) -> None:
    archival = reparse(value, asn1_pdf.RevocationInfoArchival)
    for crl in _safe_iter(archival["crl"]):
        material.add_crl(crl)
    for response in _safe_iter(archival["ocsp"]):
        material.add_ocsp(response)


def provided_material(options: Any, certs: Sequence[x509.Certificate]) -> Material:
    """The service's own fresh validation data for ``certs`` (never raises)."""
    material = Material()
    try:
        material.add_der(options.provided_validation_data(list(certs)))
    except Exception:  # noqa: BLE001 - a failing provider must not break validation
        log.warning("the revocation provider failed", exc_info=True)
    return material


# --- signer certificate ---------------------------------------------------------------------------
def sd_certificates(signed_data: cms.SignedData) -> list[x509.Certificate]:
    return [c.chosen for c in _safe_iter(signed_data["certificates"]) if getattr(c, "name", None) == "certificate"]


def matches_sid(cert: x509.Certificate, sid: cms.SignerIdentifier) -> bool:
    try:
        if sid.name == "issuer_and_serial_number":
            ias = sid.chosen
            return (same_name(cert.issuer, ias["issuer"]) and cert.serial_number == ias["serial_number"].native)
        if sid.name == "subject_key_identifier":
            return cert.key_identifier == sid.chosen.native
    except Exception:  # noqa: BLE001
        return False
    return False


def find_signer_cert(signer_info: cms.SignerInfo, candidates: Iterable[x509.Certificate]) -> x509.Certificate | None:
    for cert in candidates:
        if matches_sid(cert, signer_info["sid"]):
            return cert
    return None


def with_single_signer(signed_data: cms.SignedData, signer_info: cms.SignerInfo,
                       extra_cert: x509.Certificate | None = None) -> cms.SignedData:
    """A copy of ``signed_data`` with only ``signer_info`` (pyHanko validates one signer at a
    time) and, when the signer's certificate was found outside the signature, that certificate
    added to ``certificates`` (which the signature value does not cover)."""
    copy = signed_data.copy()
    if len(signed_data["signer_infos"]) != 1:
        copy["signer_infos"] = cms.SignerInfos([signer_info.copy()])
    if extra_cert is not None:
        choices = [c for c in _safe_iter(signed_data["certificates"])]
        choices.append(cms.CertificateChoices(name="certificate", value=extra_cert))
        copy["certificates"] = cms.CertificateSet(choices)
    return copy


def best_effort_chain(cert: x509.Certificate, pool: Sequence[x509.Certificate],
                      limit: int = 10) -> list[x509.Certificate]:
    """Signer first, following issuer names (and key identifiers) through ``pool``: for display
    when no trusted path exists."""
    chain = [cert]
    seen = {cert.sha256}
    current = cert
    while len(chain) < limit and not is_self_issued(current):
        issuer = find_issuer(current, pool)
        if issuer is None or issuer.sha256 in seen:
            break
        chain.append(issuer)
        seen.add(issuer.sha256)
        current = issuer
    return chain


def chains(certs: Iterable[x509.Certificate | None], pool: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """The best-effort chains of several certificates, deduplicated (for the revocation provider)."""
    out: list[x509.Certificate] = []
    for cert in certs:
        if cert is not None:
            out.extend(best_effort_chain(cert, pool))
    return _dedupe(out)


def is_self_issued(cert: x509.Certificate) -> bool:
    return same_name(cert.subject, cert.issuer)


def find_issuer(cert: x509.Certificate, pool: Iterable[x509.Certificate]) -> x509.Certificate | None:
    aki = cert.authority_key_identifier
    fallback = None
    for candidate in pool:
        if not same_name(candidate.subject, cert.issuer) or candidate is cert:
            continue
        if aki is None or candidate.key_identifier is None or candidate.key_identifier == aki:
            return candidate
        fallback = fallback or candidate
    return fallback


# --- revocation completeness (level detection, as DSS decides LT) --------------------------------
def revocation_complete(roots: Sequence[x509.Certificate], material: Material,
                        anchors: Sequence[x509.Certificate] = ()) -> bool:
    """True when every certificate on the paths of ``roots`` (signer and time-stamp units), and
    of the OCSP responders used, is covered by an embedded OCSP response or CRL; trust anchors,
    self-issued and ocsp-nocheck certificates need none. Without any revocation data: False."""
    if not material.ocsps and not material.crls:
        return False
    pool = list(material.certs) + list(anchors)
    anchor_keys = {c.sha256 for c in anchors}
    todo = [c for c in roots if c is not None]
    checked: set[bytes] = set()
    while todo:
        cert = todo.pop()
        if cert.sha256 in checked:
            continue
        checked.add(cert.sha256)
        if is_self_issued(cert) or cert.sha256 in anchor_keys:
            continue
        issuer = find_issuer(cert, pool)
        if issuer is None:
            return False
        todo.append(issuer)
        if _has_extension(cert, OCSP_NO_CHECK):
            continue
        responder = _covering_ocsp_responder(cert, issuer, material)
        if responder is not False:
            if responder is not None:
                todo.append(responder)
            continue
        if not any(same_name(c["tbs_cert_list"]["issuer"], cert.issuer) for c in material.crls):
            return False
    return True


def _has_extension(cert: x509.Certificate, oid: str) -> bool:
    try:
        return any(ext["extn_id"].dotted == oid for ext in cert["tbs_certificate"]["extensions"] or ())
    except Exception:  # noqa: BLE001
        return False


def _covering_ocsp_responder(cert: x509.Certificate, issuer: x509.Certificate,
                             material: Material) -> x509.Certificate | None | bool:
    """The responder certificate of an OCSP response about ``cert`` (None when it is the issuer
    itself or unknown), or False when no response covers ``cert``."""
    for response in material.ocsps:
        basic = _basic_ocsp(response)
        if basic is None:
            continue
        try:
            for single in basic["tbs_response_data"]["responses"]:
                cert_id = single["cert_id"]
                if cert_id["serial_number"].native != cert.serial_number:
                    continue
                algo = cert_id["hash_algorithm"]["algorithm"].native
                if cert_id["issuer_name_hash"].native != hashlib.new(algo, cert.issuer.dump()).digest():
                    continue
                for signer in basic["certs"] or ():
                    if not same_name(signer.subject, issuer.subject):
                        return signer
                return None
        except Exception:  # noqa: BLE001
            continue
    return False


def ocsp_produced_at(material: Material, chain: Sequence[x509.Certificate]) -> list[datetime]:
    """producedAt of the OCSP responses about certificates of ``chain`` (all, without a chain)."""
    serials = {c.serial_number for c in chain}
    out: list[datetime] = []
    for response in material.ocsps:
        basic = _basic_ocsp(response)
        if basic is None:
            continue
        try:
            data = basic["tbs_response_data"]
            about = {s["cert_id"]["serial_number"].native for s in data["responses"]}
            if not serials or about & serials:
                out.append(data["produced_at"].native)
        except Exception:  # noqa: BLE001
            continue
    return sorted(set(out))


# --- signer facts ----------------------------------------------------------------------------------
@dataclass
class SignerFacts:
    """What a SignerInfo claims about itself (nothing here is verified)."""

    signing_time: datetime | None = None
    commitment_types: list[str] = field(default_factory=list)
    signer_roles: list[str] = field(default_factory=list)
    production_place: dict[str, str] = field(default_factory=dict)
    policy_id: str | None = None
    signature_algorithm: str | None = None
    digest_algorithm: str | None = None


def signer_facts(signer_info: cms.SignerInfo) -> SignerFacts:
    facts = SignerFacts()
    facts.digest_algorithm = safe(lambda: signer_info["digest_algorithm"]["algorithm"].native)
    facts.signature_algorithm = safe(lambda: signature_algorithm_name(signer_info))
    times = attribute_values(signer_info, SIGNING_TIME, signed=True)
    if times:
        facts.signing_time = safe(lambda: aware(reparse(times[0], cms.Time).native))
    for value in attribute_values(signer_info, COMMITMENT_TYPE, signed=True):
        oid = safe(lambda v=value: v["commitment_type_id"].dotted)
        if oid:
            facts.commitment_types.append(COMMITMENT_NAMES.get(oid, oid))
    for value in attribute_values(signer_info, SIGNATURE_POLICY, signed=True):
        facts.policy_id = safe(lambda v=value: v.chosen["sig_policy_id"].dotted) or facts.policy_id
    for value in attribute_values(signer_info, SIGNER_LOCATION, signed=True):
        facts.production_place.update(safe(lambda v=value: _location(reparse(v, _SignerLocation))) or {})
    for value in attribute_values(signer_info, SIGNER_ATTRIBUTES_V2, signed=True):
        facts.signer_roles.extend(safe(lambda v=value: _claimed_roles(
            reparse(v, _SignerAttributesV2)["claimed_attributes"])) or [])
    for value in attribute_values(signer_info, SIGNER_ATTRIBUTES, signed=True):
        for choice in safe(lambda v=value: list(reparse(v, _SignerAttributesV1))) or []:
            if choice.name == "claimed_attributes":
                facts.signer_roles.extend(safe(lambda c=choice: _claimed_roles(c.chosen)) or [])
    return facts


def safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001 - claims in hostile signatures are best-effort
        return None


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _location(location: _SignerLocation) -> dict[str, str]:
    """CAdES signer-location in the report's signatureProductionPlace keys (as XAdES gives them)."""
    out: dict[str, str] = {}
    if location["country_name"].native:
        out["countryName"] = str(location["country_name"].native)
    if location["locality_name"].native:
        out["city"] = str(location["locality_name"].native)
    postal = location["postal_address"].native
    if postal:
        out["postalAddress"] = ", ".join(str(p) for p in postal)
    return out


def _claimed_roles(attributes: Any) -> list[str]:
    roles: list[str] = []
    if attributes is None or isinstance(attributes, core.Void):
        return roles
    for attr in attributes:
        for value in attr["values"]:
            text = _role_text(value)
            if text:
                roles.append(text)
    return roles


def _role_text(value: core.Asn1Value) -> str | None:
    der = value.dump()
    try:
        generic = core.Asn1Value.load(der)
        if isinstance(generic.native, str):
            return generic.native
    except Exception:  # noqa: BLE001
        pass
    try:
        role = cms.RoleSyntax.load(der)
        name = role["role_name"].native
        return name if isinstance(name, str) else str(name)
    except Exception:  # noqa: BLE001
        return None


def signature_algorithm_name(signer_info: cms.SignerInfo) -> str:
    """e.g. sha256_rsa, sha256_ecdsa, rsassa_pss: what reports and policies show."""
    algo = signer_info["signature_algorithm"]
    name = algo["algorithm"].native
    digest = signer_info["digest_algorithm"]["algorithm"].native
    if name in ("rsassa_pkcs1v15", "rsa"):
        return f"{digest}_rsa"
    if name == "ecdsa":
        return f"{digest}_ecdsa"
    return str(name)


# --- DER of the signed attributes ------------------------------------------------------------------
def non_der_signed_attrs(signer_info: cms.SignerInfo, cert: x509.Certificate | None) -> bool:
    """True when the signed attributes are not in DER (SET OF) order and the signature does not
    verify over their DER encoding, which is what RFC 5652 §5.4 has signers sign. pyHanko
    tolerates the deviation by verifying the bytes as sent; DSS and the ETSI plugtests treat such
    a signature as not intact (HASH_FAILURE), and so do we."""
    if cert is None or not has_signed_attrs(signer_info):
        return False
    try:
        children = [attr.dump() for attr in signer_info["signed_attrs"]]
    except Exception:  # noqa: BLE001
        return False
    ordered = sorted(children)
    if ordered == children:
        return False
    body = b"".join(ordered)
    der = b"\x31" + _der_length(len(body)) + body
    try:
        CMS_SIGNATURE_VALIDATOR.validate_signature(
            signer_info["signature"].native, der, cert.public_key, signer_info["signature_algorithm"],
            context=SignatureValidationContext(
                contextual_md_algorithm=signer_info["digest_algorithm"]["algorithm"].native))
        return False
    except Exception:  # noqa: BLE001 - InvalidSignature (or unusable key): not intact as DER
        return True


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


NON_DER_MESSAGE = ("The signed attributes are not DER-encoded (their SET OF is not sorted) and the signature "
                   "does not verify over their DER encoding, as RFC 5652 requires.")


def digest_supported(algorithm: str | None) -> bool:
    if not algorithm:
        return False
    try:
        hashlib.new(algorithm)
        return True
    except (ValueError, TypeError):
        return False


# --- level detection ---------------------------------------------------------------------------------
@dataclass
class CmsProfile:
    """Which EN 319 122 requirements one SignerInfo meets (what DSS checks for its levels)."""

    extended_bes: bool
    baseline_b_core: bool      # the CMS requirements shared by CAdES and PAdES baseline-B
    signing_time_present: bool
    policy: bool
    signature_timestamp: bool
    archive_v3: bool
    archive_any: bool
    complete_refs: bool
    x_timestamps: bool
    lt_forbidden_attrs: bool   # certificate-values, revocation-values or refs: not baseline LT
    commitment: bool
    content_type_data: bool    # content-type attribute absent or id-data
    signer_in_certificates: bool


def cms_profile(signed_data: cms.SignedData, signer_info: cms.SignerInfo,
                signer_cert: x509.Certificate | None, *, counter_signature: bool = False) -> CmsProfile:
    signed = has_signed_attrs(signer_info)
    content_types = value_count(signer_info, CONTENT_TYPE, signed=True)
    content_type_ok = content_types == 1 or (counter_signature and content_types == 0)
    one_digest = value_count(signer_info, MESSAGE_DIGEST, signed=True) == 1
    signing_certs = (value_count(signer_info, SIGNING_CERTIFICATE, signed=True)
                     + value_count(signer_info, SIGNING_CERTIFICATE_V2, signed=True))
    signer_attrs = (attribute_count(signer_info, SIGNER_ATTRIBUTES, signed=True)
                    + attribute_count(signer_info, SIGNER_ATTRIBUTES_V2, signed=True))
    extended_bes = (signed and content_type_ok and one_digest and signing_certs == 1 and signer_attrs <= 1
                    and _signing_cert_attr_hash_ok(signer_info))
    sd_certs = sd_certificates(signed_data)
    content_type_value = safe(lambda: reparse(
        attribute_values(signer_info, CONTENT_TYPE, signed=True)[0], cms.ContentType).dotted)
    signer_in_certificates = signer_cert is not None and any(c.sha256 == signer_cert.sha256 for c in sd_certs)
    content_type_data = content_type_value in (None, ID_DATA)
    baseline_b_core = (extended_bes and bool(sd_certs)
                       and attribute_count(signer_info, SIGNATURE_POLICY, signed=True) <= 1
                       and signer_in_certificates and (content_type_data or counter_signature))
    unsigned = {attr["type"].dotted for attr in _attrs(signer_info, False)}
    return CmsProfile(
        extended_bes=extended_bes,
        baseline_b_core=baseline_b_core,
        signing_time_present=value_count(signer_info, SIGNING_TIME, signed=True) == 1,
        policy=value_count(signer_info, SIGNATURE_POLICY, signed=True) > 0,
        signature_timestamp=SIGNATURE_TIMESTAMP in unsigned,
        archive_v3=ARCHIVE_TIMESTAMP_V3 in unsigned,
        archive_any=bool(unsigned & set(ARCHIVE_TIMESTAMPS)),
        complete_refs=CERTIFICATE_REFS in unsigned,
        x_timestamps=(attribute_count(signer_info, ESC_TIMESTAMP, signed=False)
                      + attribute_count(signer_info, CERT_CRL_TIMESTAMP, signed=False)) == 1,
        lt_forbidden_attrs=bool(unsigned & {CERTIFICATE_VALUES, REVOCATION_VALUES, CERTIFICATE_REFS,
                                            REVOCATION_REFS, CERT_CRL_TIMESTAMP}),
        commitment=value_count(signer_info, COMMITMENT_TYPE, signed=True) > 0,
        content_type_data=content_type_data,
        signer_in_certificates=signer_in_certificates,
    )


def _signing_cert_attr_hash_ok(signer_info: cms.SignerInfo) -> bool:
    """EN 319 122-1 (h)/(i): signing-certificate for SHA-1 references, -v2 for the others."""
    for value in attribute_values(signer_info, SIGNING_CERTIFICATE_V2, signed=True):
        algo = safe(lambda v=value: reparse(v, tsp.SigningCertificateV2)["certs"][0]["hash_algorithm"]
                     ["algorithm"].native)
        if algo == "sha1":
            return False
    return True


# --- time-stamp tokens ------------------------------------------------------------------------------
def tst_info(tst_signed_data: cms.SignedData) -> tsp.TSTInfo:
    return tst_signed_data["encap_content_info"]["content"].parsed


def tst_signed_data(value: core.Asn1Value) -> cms.SignedData:
    """The SignedData of a TimeStampToken attribute value (a ContentInfo)."""
    info = value if isinstance(value, cms.ContentInfo) else reparse(value, cms.ContentInfo)
    return info["content"]


async def validate_timestamp(tst_sd: cms.SignedData, kind: TimestampKind,
                             expected_imprint: Callable[[str], bytes] | None,
                             spec: SignatureValidationSpec, timing: ValidationTimingInfo,
                             *, unchecked_reason: str | None = None) -> TimestampResult:
    """One time-stamp token inside a CMS signature or PDF, judged by the shared
    :func:`remotesign.validation.timestamps.validate_timestamp`; ``expected_imprint`` None means
    the imprint cannot be recomputed (the result is then at best INDETERMINATE/GENERIC, with
    ``unchecked_reason``)."""
    from remotesign.validation.timestamps import validate_timestamp as judge_token

    der = cms.ContentInfo({"content_type": "signed_data", "content": tst_sd}).dump()
    own_imprint = (lambda _algo: tst_info(tst_sd)["message_imprint"]["hashed_message"].native)
    result = (await judge_token(der, kind, expected_imprint or own_imprint, spec, timing)).result
    if expected_imprint is None and result.valid:
        result.conclusion = Conclusion.of(SubIndication.GENERIC,
                                          unchecked_reason or "The time-stamp's message imprint was not verified.")
    return result


# --- mapping pyHanko results ------------------------------------------------------------------------
def describe(sub: SubIndication | None, failure_msg: str | None = None) -> str | None:
    """A clear sentence for an outcome, with pyHanko's own explanation as detail when it adds one."""
    if sub is None:
        return None
    sentence = _SENTENCES.get(sub, f"Validation ended with {sub.value}.")
    detail = _PYHANKO_ENUM.sub("", failure_msg or "").strip().rstrip(".")
    if not detail or detail.startswith("Validation of signature at current time failed"):
        return sentence
    return f"{sentence} Detail: {detail}."


_PYHANKO_ENUM = re.compile(r"\s*\[?AdES(?:Indeterminate|Failure|Passed)\.\w+\]?")
_SENTENCES = {
    SubIndication.FORMAT_FAILURE: "The signature is not correctly formatted.",
    SubIndication.HASH_FAILURE: "The signed data has been modified after signing (digest mismatch).",
    SubIndication.SIG_CRYPTO_FAILURE: "The signature value does not verify with the signer's public key.",
    SubIndication.REVOKED: "The signing certificate was revoked before the signature was made.",
    SubIndication.SIG_CONSTRAINTS_FAILURE: "The signature does not meet the validation constraints.",
    SubIndication.CHAIN_CONSTRAINTS_FAILURE: "The certificate chain does not meet the validation constraints.",
    SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE:
        "The certificate chain could not be validated (for example, revocation information is missing).",
    SubIndication.CRYPTO_CONSTRAINTS_FAILURE: "An algorithm used is not acceptable under the validation policy.",
    SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE:
        "An algorithm used is no longer acceptable and there is no proof the signature existed before.",
    SubIndication.EXPIRED: "The signing certificate had expired when the signature was made.",
    SubIndication.NOT_YET_VALID: "The signing certificate was not yet valid when the signature was made.",
    SubIndication.NO_SIGNING_CERTIFICATE_FOUND: "The signing certificate could not be identified.",
    SubIndication.NO_CERTIFICATE_CHAIN_FOUND: "No certificate chain to a trusted anchor could be built.",
    SubIndication.REVOKED_NO_POE:
        "The signing certificate is revoked and there is no proof the signature existed before revocation.",
    SubIndication.REVOKED_CA_NO_POE:
        "A CA certificate in the chain is revoked and there is no proof the signature existed before.",
    SubIndication.OUT_OF_BOUNDS_NO_POE:
        "The signing certificate is expired or not yet valid at the validation time and there is no "
        "proof the signature existed within its validity.",
    SubIndication.OUT_OF_BOUNDS_NOT_REVOKED:
        "The signing certificate is outside its validity period at the validation time.",
    SubIndication.NO_POE: "There is no proof of existence of the signature before a critical time.",
    SubIndication.TRY_LATER: "Revocation information is not yet available; try again later.",
    SubIndication.SIGNED_DATA_NOT_FOUND: "The signed data was not provided, so the signature cannot be checked.",
    SubIndication.TIMESTAMP_ORDER_FAILURE: "The time-stamps are not in a consistent order.",
    SubIndication.GENERIC: "The signature could not be validated.",
}

_CRYPTO_SUBS = {SubIndication.HASH_FAILURE, SubIndication.SIG_CRYPTO_FAILURE, SubIndication.SIGNED_DATA_NOT_FOUND}
_IDENTIFICATION_SUBS = {SubIndication.NO_SIGNING_CERTIFICATE_FOUND}
_SAV_SUBS = {SubIndication.SIG_CONSTRAINTS_FAILURE, SubIndication.CRYPTO_CONSTRAINTS_FAILURE,
             SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE, SubIndication.POLICY_PROCESSING_ERROR,
             SubIndication.SIGNATURE_POLICY_NOT_AVAILABLE}


def mark_not_intact(result: SignatureResult, sub: SubIndication, message: str) -> None:
    """Override a non-crypto outcome with a cryptographic failure found after pyHanko."""
    result.conclude(sub, message)
    result.blocks[Block.CRYPTOGRAPHIC_VERIFICATION] = Conclusion.of(sub, message)
    for block in (Block.X509_CERTIFICATE_VALIDATION, Block.SIGNATURE_ACCEPTANCE_VALIDATION):
        result.blocks.pop(block, None)


def unsupported_digest(result: SignatureResult, algorithm: str | None) -> None:
    """INDETERMINATE / CRYPTO_CONSTRAINTS_FAILURE: the digest algorithm cannot be computed."""
    message = (f"The digest algorithm {algorithm} is not a supported message digest algorithm, "
               "so the signature cannot be verified.")
    result.conclude(SubIndication.CRYPTO_CONSTRAINTS_FAILURE, message)
    result.blocks[Block.SIGNATURE_ACCEPTANCE_VALIDATION] = Conclusion.of(SubIndication.CRYPTO_CONSTRAINTS_FAILURE,
                                                                         message)
    if result.signing_certificate is not None:
        result.blocks[Block.IDENTIFICATION_OF_SIGNING_CERTIFICATE] = Conclusion.passed(
            f"Signing certificate: {result.signing_certificate.subject.human_friendly}.")


def apply_ades_result(result: SignatureResult, ades: Any, pool: Sequence[x509.Certificate]) -> None:
    """Copy one pyHanko AdES outcome into ``result``: indication, certificate, chain, blocks."""
    sub = map_subindication(ades.ades_subindic)
    status = ades.api_status
    if status is not None:
        cert = safe(lambda: status.signing_cert)
        if cert is not None:
            result.signing_certificate = cert
        path = safe(lambda: status.validation_path)
        if path is not None:
            chain = list(safe(lambda: path.iter_certs(include_root=True)) or [])
            chain.reverse()
            signer = result.signing_certificate
            if chain and signer is not None and chain[0].sha256 != signer.sha256:
                chain.insert(0, signer)
            result.chain = _dedupe(chain)
    if not result.chain and result.signing_certificate is not None:
        result.chain = best_effort_chain(result.signing_certificate, pool)
    result.conclude(sub, describe(sub, ades.failure_msg))
    fill_blocks(result, sub, status)


def explain_crypto_refusal(result: SignatureResult, signer_info: cms.SignerInfo, policy: Any,
                           moment: datetime) -> None:
    """pyHanko reports a refused algorithm without saying which; name the signature algorithm,
    digest, key or certificate the policy's cryptographic suite refuses at ``moment``."""
    if result.sub_indication not in (SubIndication.CRYPTO_CONSTRAINTS_FAILURE,
                                      SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE):
        return
    reason = safe(lambda: _crypto_refusal(signer_info, result.chain or [result.signing_certificate], policy, moment))
    if not reason:
        return
    generic = describe(result.sub_indication)
    detailed = f"{generic} Detail: {reason}."
    result.errors = [detailed if e == generic else e for e in result.errors]
    if detailed not in result.errors:
        result.errors.append(detailed)


def _crypto_refusal(signer_info: cms.SignerInfo, chain: Sequence[x509.Certificate | None], policy: Any,
                    moment: datetime) -> str | None:
    signatures = policy.crypto.algorithm_policy()
    signer = chain[0] if chain else None
    verdict = signatures.signature_algorithm_allowed(signer_info["signature_algorithm"], moment,
                                                     signer.public_key if signer is not None else None)
    if not verdict:
        return verdict.failure_reason
    verdict = signatures.digest_algorithm_allowed(signer_info["digest_algorithm"], moment)
    if not verdict:
        return verdict.failure_reason
    certificates = policy.crypto.for_certificates().algorithm_policy()
    for cert, issuer in zip(chain, chain[1:]):
        if cert is None or issuer is None:
            continue
        verdict = certificates.signature_algorithm_allowed(cert["signature_algorithm"], moment, issuer.public_key)
        if not verdict:
            return f"certificate {cert.subject.human_friendly}: {verdict.failure_reason}"
    return None


def fill_blocks(result: SignatureResult, sub: SubIndication | None, status: Any) -> None:
    """Per-building-block conclusions derived from the overall outcome and pyHanko's status."""
    blocks = result.blocks
    blocks.setdefault(Block.FORMAT_CHECKING, Conclusion.passed()
                      if sub is not SubIndication.FORMAT_FAILURE else Conclusion.of(sub, describe(sub) or ""))
    if sub in _IDENTIFICATION_SUBS:
        blocks[Block.IDENTIFICATION_OF_SIGNING_CERTIFICATE] = Conclusion.of(sub, describe(sub) or "")
        return
    if result.signing_certificate is not None:
        blocks.setdefault(Block.IDENTIFICATION_OF_SIGNING_CERTIFICATE, Conclusion.passed(
            f"Signing certificate: {result.signing_certificate.subject.human_friendly}."))
    if sub in _CRYPTO_SUBS:
        blocks[Block.CRYPTOGRAPHIC_VERIFICATION] = Conclusion.of(sub, describe(sub) or "")
        return
    if status is not None:
        intact, valid = safe(lambda: status.intact), safe(lambda: status.valid)
        if intact and valid:
            blocks.setdefault(Block.CRYPTOGRAPHIC_VERIFICATION, Conclusion.passed(
                "The signature value and the signed data digest verify."))
        trust = map_subindication(safe(lambda: status.trust_problem_indic))
        if trust is None and sub is not None and sub not in _SAV_SUBS and sub is not SubIndication.FORMAT_FAILURE:
            trust = sub
        if intact and valid:
            blocks.setdefault(Block.X509_CERTIFICATE_VALIDATION, Conclusion.passed(
                "The certificate chain is trusted and not revoked.") if trust is None
                else Conclusion.of(trust, describe(trust) or ""))
    elif sub is not None and sub not in _SAV_SUBS and sub is not SubIndication.FORMAT_FAILURE:
        blocks.setdefault(Block.X509_CERTIFICATE_VALIDATION, Conclusion.of(sub, describe(sub) or ""))
    if sub in _SAV_SUBS:
        blocks[Block.SIGNATURE_ACCEPTANCE_VALIDATION] = Conclusion.of(sub, describe(sub) or "")
    elif Block.CRYPTOGRAPHIC_VERIFICATION in blocks and blocks[Block.CRYPTOGRAPHIC_VERIFICATION].indication \
            is Indication.TOTAL_PASSED:
        blocks.setdefault(Block.SIGNATURE_ACCEPTANCE_VALIDATION, Conclusion.passed())


def _dedupe(certs: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    seen: set[bytes] = set()
    out = []
    for cert in certs:
        if cert.sha256 not in seen:
            seen.add(cert.sha256)
            out.append(cert)
    return out


def timestamp_blocks(result: SignatureResult) -> None:
    """TIME_STAMP_VALIDATION and PROOF_OF_EXISTENCE from the time-stamps gathered on ``result``."""
    relevant = [t for t in result.timestamps if t.kind in (TimestampKind.SIGNATURE, TimestampKind.DOCUMENT,
                                                           TimestampKind.ARCHIVE, TimestampKind.CONTENT)]
    if relevant:
        failing = [t for t in relevant if not t.valid]
        if failing:
            first = failing[0].conclusion
            result.blocks[Block.TIME_STAMP_VALIDATION] = Conclusion(
                first.indication, first.sub_indication,
                [f"{len(failing)} of {len(relevant)} time-stamp(s) did not validate."] + first.messages)
        else:
            result.blocks[Block.TIME_STAMP_VALIDATION] = Conclusion.passed(
                f"{len(relevant)} time-stamp(s) validated.")
    if result.best_signature_time is not None:
        result.blocks[Block.PROOF_OF_EXISTENCE] = Conclusion.passed(
            f"The signature existed at {result.best_signature_time.isoformat()} (time-stamp).")


def best_signature_time(timestamps: Iterable[TimestampResult]) -> datetime | None:
    """Earliest valid signature or document time-stamp covering the signature."""
    times = [t.gen_time for t in timestamps
             if t.valid and t.gen_time is not None and t.kind in (TimestampKind.SIGNATURE, TimestampKind.DOCUMENT)]
    return min(times) if times else None


# --- time-stamp tokens inside a SignerInfo ------------------------------------------------------------
def timestamp_tokens(signer_info: cms.SignerInfo, oid: str, *, signed: bool) -> list[cms.SignedData]:
    """The readable time-stamp tokens in one (signed or unsigned) attribute of a SignerInfo."""
    out = []
    for value in attribute_values(signer_info, oid, signed=signed):
        token = safe(lambda v=value: tst_signed_data(v))
        if token is not None:
            out.append(token)
    return out


def timestamp_certificates(signer_info: cms.SignerInfo) -> list[x509.Certificate]:
    """Every certificate the signature and content time-stamps carry."""
    certs: list[x509.Certificate] = []
    for oid, signed in ((SIGNATURE_TIMESTAMP, False), (CONTENT_TIMESTAMP, True)):
        for token in timestamp_tokens(signer_info, oid, signed=signed):
            certs.extend(safe(lambda t=token: sd_certificates(t)) or [])
    return certs


def tst_signers(signer_info: cms.SignerInfo, *, content: bool = True) -> list[x509.Certificate]:
    """Certificates of the TSAs of the signature (and content) time-stamps."""
    tokens = timestamp_tokens(signer_info, SIGNATURE_TIMESTAMP, signed=False)
    if content:
        tokens += timestamp_tokens(signer_info, CONTENT_TIMESTAMP, signed=True)
    out = []
    for token in tokens:
        cert = safe(lambda t=token: find_signer_cert(t["signer_infos"][0], sd_certificates(t)))
        if cert is not None:
            out.append(cert)
    return out
