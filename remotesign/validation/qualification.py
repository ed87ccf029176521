"""eIDAS qualification of a validated signature: is the signer's certificate qualified (per the
trusted lists), for signatures or seals, on a QSCD; and the resulting signature level as the
eParaksts Validation API names it (``QESIG``, ``ADESEAL_QC``, ``INDETERMINATE_ADES``, ...).

Only a trusted list grants qualification (ETSI TS 119 615): a QC statement in the certificate
alone never does. pyHanko's :class:`QualificationAssessor` applies the list's qualifiers; the
type (e-signature / e-seal) falls back to the certificate and then to its subject when neither
the list nor the certificate says. The level matrix follows EU DSS (``SigQualificationMatrix``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from asn1crypto import x509
from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature
from pyhanko.sign.ades import qualified_asn1
from pyhanko.sign.validation.qualified.assess import QualificationAssessor
from pyhanko.sign.validation.qualified.q_status import QualificationResult
from pyhanko.sign.validation.qualified.tsp import QcCertType, Qualifier, TSPRegistry
from pyhanko_certvalidator.authority import AuthorityWithCert, TrustAnchor
from pyhanko_certvalidator.path import ValidationPath

from remotesign.validation.model import CertificateQualification, Indication, SignatureResult
from remotesign.validation.options import ValidationOptions

logger = logging.getLogger(__name__)

ESIG, ESEAL, WEB = "esig", "eseal", "web"
_KIND_OF_TYPE = {QcCertType.QC_ESIGN: ESIG, QcCertType.QC_ESEAL: ESEAL, QcCertType.QC_WEB: WEB}
_KIND_OF_QUALIFIER = {Qualifier.FOR_ESIG: ESIG, Qualifier.FOR_ESEAL: ESEAL, Qualifier.FOR_WSA: WEB}
_KIND_OF_STATEMENT = {"qct_esign": ESIG, "qct_eseal": ESEAL, "qct_web": WEB}
ORGANIZATION_IDENTIFIER = "2.5.4.97"
_NATURAL_PERSON_ATTRIBUTES = {"2.5.4.5", "2.5.4.42"}  # serialNumber, givenName


@dataclass(frozen=True)
class Qualification:
    """What is known of the signer's certificate; ``kind`` None when its type is unknown."""

    qualified: bool
    qscd: bool
    kind: str | None

    @property
    def certificate_qualification(self) -> CertificateQualification:
        Q = CertificateQualification
        if self.qualified and self.qscd:
            return {ESIG: Q.QC_FOR_ESIG_QSCD, ESEAL: Q.QC_FOR_ESEAL_QSCD}.get(self.kind or "", Q.QC_QSCD)
        if self.qualified:
            return {ESIG: Q.QC_FOR_ESIG, ESEAL: Q.QC_FOR_ESEAL}.get(self.kind or "", Q.QC)
        return {ESIG: Q.NOT_QC_FOR_ESIG, ESEAL: Q.NOT_QC_FOR_ESEAL}.get(self.kind or "", Q.NOT_QC)


def assess(signature: SignatureResult, options: ValidationOptions) -> None:
    """Set ``signature.qualification`` and ``signature.signature_level``. Never raises: any
    failure is logged and the signature gets its unqualified level."""
    if signature.signing_certificate is None:
        signature.qualification = CertificateQualification.UNKNOWN
        signature.signature_level = "NA"
        return
    try:
        found = qualify(signature.signing_certificate, signature.chain, options.tsp_registry,
                        signature.best_signature_time or options.at)
    except Exception:  # noqa: BLE001 - qualification must not break a validation report
        logger.exception("qualification of signature %s failed; reporting it unqualified", signature.id)
        found = Qualification(qualified=False, qscd=False, kind=_safe_subject_kind(signature.signing_certificate))
    signature.qualification = found.certificate_qualification
    signature.signature_level = signature_level(signature.indication, found)


def qualify(certificate: x509.Certificate, chain: list[x509.Certificate], registry: TSPRegistry | None,
            moment: datetime) -> Qualification:
    """The qualification of ``certificate`` at ``moment``, over the ``chain`` (signer first,
    anchor last) the validator built."""
    leaf = _reload(certificate)
    statement_kinds = _statement_kinds(leaf)
    path = _path(leaf, chain) if registry is not None else None
    if path is not None and registry is not None:
        result = QualificationAssessor(registry).check_entity_cert_qualified(path, _aware(moment))
        if result.status.qualified:
            kind = _kind(_listed_kind(result, leaf), statement_kinds, leaf)
            return Qualification(True, result.status.qc_key_security.is_qscd, kind)
    return Qualification(False, False, _kind(None, statement_kinds, leaf))


def signature_level(indication: Indication, q: Qualification) -> str:
    """The eParaksts ``signatureLevel`` for a signature with this outcome and certificate."""
    if q.kind == WEB:
        return "NOT_ADES"  # a website certificate supports neither signatures nor seals (DSS)
    if indication is Indication.TOTAL_FAILED:
        if q.qualified:
            return "NOT_ADES_QC_QSCD" if q.qscd else "NOT_ADES_QC"
        return "NOT_ADES"
    suffix = {ESIG: "SIG", ESEAL: "SEAL"}.get(q.kind or "", "S")
    if q.qualified and q.qscd:
        level = f"QE{suffix}"
    elif q.qualified:
        level = f"ADE{suffix}_QC"
    else:
        level = f"ADE{suffix}"
    return f"INDETERMINATE_{level}" if indication is Indication.INDETERMINATE else level


def _path(leaf: x509.Certificate, chain: list[x509.Certificate]) -> ValidationPath | None:
    """The path signer -> anchor the validator built; None when there is no issuer to ask about
    or a link does not verify (a chain assembled by name only must not borrow a listed CA)."""
    certs = [_reload(c) for c in chain]
    if certs and certs[0].dump() == leaf.dump():
        certs = certs[1:]
    if not certs or not _linked([leaf, *certs]):
        return None
    anchor, intermediates = certs[-1], certs[:-1]
    return ValidationPath(TrustAnchor(AuthorityWithCert(anchor)), list(reversed(intermediates)), leaf)


def _linked(chain: list[x509.Certificate]) -> bool:
    """Each certificate is signed by the next one."""
    loaded = [cx509.load_der_x509_certificate(c.dump()) for c in chain]
    for child, issuer in zip(loaded, loaded[1:]):
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            logger.info("chain link %s <- %s does not verify; not qualified", child.subject.rfc4514_string(),
                        issuer.subject.rfc4514_string())
            return False
    return True


def _listed_kind(result: QualificationResult, leaf: x509.Certificate) -> str | None:
    """The type the trusted list states for this certificate: a QCFor* qualifier that applies to
    it, else a single type in the service's additional information. Either wins over the
    certificate's own QcType, as in pyHanko's assessment."""
    sd = result.service_definition
    if sd is None:
        return None
    kinds = {_KIND_OF_QUALIFIER[q] for qual in sd.qualifications if qual.criteria_list.matches(leaf)
             for q in qual.qualifiers if q in _KIND_OF_QUALIFIER}
    if len(kinds) == 1:
        return kinds.pop()
    declared = {_KIND_OF_TYPE[t] for t in sd.base_info.additional_info_certificate_type}
    return declared.pop() if len(declared) == 1 else None


def _kind(listed: str | None, statement_kinds: list[str | None], leaf: x509.Certificate) -> str | None:
    if listed is not None:
        return listed
    if len(statement_kinds) == 1:
        return statement_kinds[0]     # None for a QcType this code does not know
    if len(statement_kinds) > 1:
        return None                   # the certificate claims several types: unknown
    return _subject_kind(leaf)


def _statement_kinds(cert: x509.Certificate) -> list[str | None]:
    kinds: set[str | None] = set()
    for statement in qualified_asn1.get_qc_statements(cert):
        if statement["statement_id"].native == "qc_type":
            kinds.update(_KIND_OF_STATEMENT.get(t.native) for t in statement["statement_info"])
    return sorted(kinds, key=str)


def _subject_kind(cert: x509.Certificate) -> str:
    """A legal person's subject (organizationIdentifier, no serialNumber/givenName) means a seal."""
    types = {attr["type"].dotted for rdn in cert.subject.chosen for attr in rdn}
    if ORGANIZATION_IDENTIFIER in types and not types & _NATURAL_PERSON_ATTRIBUTES:
        return ESEAL
    return ESIG


def _safe_subject_kind(cert: x509.Certificate) -> str | None:
    try:
        return _subject_kind(cert)
    except Exception:  # noqa: BLE001
        return None


def _reload(cert: x509.Certificate) -> x509.Certificate:
    """A freshly parsed copy, so pyHanko's QCStatements parser applies to the extension."""
    return x509.Certificate.load(cert.dump())


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
