"""ETSI EN 319 412-5 QCStatements, which asn1crypto does not know. Encoded here so that the CA can
mark qualified certificates (QcCompliance, QcSSCD, QcType) the way EU trusted-list tooling reads them."""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import core
from cryptography import x509

ID_PE_QC_STATEMENTS = "1.3.6.1.5.5.7.1.3"
QC_COMPLIANCE = "0.4.0.1862.1.1"
QC_SSCD = "0.4.0.1862.1.4"
QC_TYPE = "0.4.0.1862.1.6"
QC_PDS = "0.4.0.1862.1.5"
QCT_ESIGN = "0.4.0.1862.1.6.1"
QCT_ESEAL = "0.4.0.1862.1.6.2"
QCT_WEB = "0.4.0.1862.1.6.3"
SEMANTICS_NATURAL = "0.4.0.194121.1.1"  # id-etsi-qcs-semanticsId-Natural
SEMANTICS_LEGAL = "0.4.0.194121.1.2"  # id-etsi-qcs-semanticsId-Legal
ID_QCS_PKIXQCSYNTAX_V2 = "1.3.6.1.5.5.7.11.2"


class QcTypeSequence(core.SequenceOf):
    _child_spec = core.ObjectIdentifier


class PdsLocation(core.Sequence):
    _fields = [("url", core.IA5String), ("language", core.PrintableString)]


class PdsLocations(core.SequenceOf):
    _child_spec = PdsLocation


class SemanticsInformation(core.Sequence):
    _fields = [("semantics_identifier", core.ObjectIdentifier, {"optional": True})]


class QcStatement(core.Sequence):
    _fields = [("statement_id", core.ObjectIdentifier), ("statement_info", core.Any, {"optional": True})]


class QcStatements(core.SequenceOf):
    _child_spec = QcStatement


def qc_statements(qc_type: str, semantics: str, pds_url: str | None) -> bytes:
    """DER of a QCStatements extension value for a qualified certificate of ``qc_type``."""
    statements = [
        {"statement_id": ID_QCS_PKIXQCSYNTAX_V2,
         "statement_info": SemanticsInformation({"semantics_identifier": semantics})},
        {"statement_id": QC_COMPLIANCE},
        {"statement_id": QC_SSCD},
        {"statement_id": QC_TYPE, "statement_info": QcTypeSequence([qc_type])},
    ]
    if pds_url:
        statements.append({"statement_id": QC_PDS,
                           "statement_info": PdsLocations([{"url": pds_url, "language": "en"}])})
    return QcStatements(statements).dump()


@dataclass(frozen=True)
class QcClaims:
    """What a certificate's QCStatements claim (EN 319 412-5): EU qualified, the key in a
    qualified device, and for which use. Claims only: whether a trusted list backs them is the
    validator's business (validation/qualification.py)."""

    compliance: bool = False
    sscd: bool = False
    seal: bool = False


def read_claims(certificate: x509.Certificate) -> QcClaims:
    """The certificate's QC claims; none for a certificate without (or with an unreadable) extension."""
    try:
        ext = certificate.extensions.get_extension_for_oid(x509.ObjectIdentifier(ID_PE_QC_STATEMENTS))
        statements = QcStatements.load(ext.value.value)  # type: ignore[attr-defined]
        ids = {s["statement_id"].dotted: s for s in statements}
        seal = False
        if QC_TYPE in ids:
            types = QcTypeSequence.load(ids[QC_TYPE]["statement_info"].dump())
            seal = QCT_ESEAL in {t.dotted for t in types}
        return QcClaims(QC_COMPLIANCE in ids, QC_SSCD in ids, seal)
    except x509.ExtensionNotFound:
        return QcClaims()
    except (ValueError, TypeError, KeyError):  # a malformed extension claims nothing
        return QcClaims()
