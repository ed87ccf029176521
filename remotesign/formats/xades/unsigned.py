"""Writing unsigned signature properties: the container, time-stamp elements and validation
data elements. Properties are appended in incorporation order, as EN 319 132-1 §4.4 requires;
nothing already present is reordered or re-serialized.

New elements are always created with ``SubElement`` inside the tree, so lxml reuses the prefixes
already in scope (xades:, ds:) instead of declaring fresh ones; ancestors' namespace declarations
are never touched, because inclusive c14n of the signed parts depends on them."""

from __future__ import annotations

from lxml import etree

from remotesign.formats.base import FormatError, ValidationData
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.dom import id_index
from remotesign.formats.xades.reading import parts_of
from remotesign.formats.xades.xmlio import b64, child, new_id

_V141 = {"xadesv141": c.XADES141}


class Ids:
    """Fresh Ids for new elements, unique in the whole document (among every Id-like attribute,
    as the reference processor counts them) and derived from the signature Id."""

    def __init__(self, sig: etree._Element) -> None:
        self._taken = set(id_index(sig.getroottree()))
        self._base = sig.get("Id") or "sig"

    def __call__(self, suffix: str) -> str:
        return new_id(self._taken, f"{self._base}-{suffix}")


def check_writable(sig: etree._Element) -> etree._Element:
    """The xades:QualifyingProperties of ``sig``, if unsigned properties can be added to it:
    plain XMLDSig cannot become XAdES (``not_xades``: nothing signed says who signed with
    which certificate), and only XAdES 1.3.2 (EN 319 132-1) signatures get baseline properties."""
    qp = parts_of(sig).qualifying_properties
    if qp is None:
        raise FormatError("not_xades", "the signature is plain XMLDSig (no xades:QualifyingProperties); "
                                       "it cannot be extended to a XAdES level")
    if etree.QName(qp).namespace != c.XADES:
        raise FormatError("unsupported_xades_version",
                          f"XAdES {etree.QName(qp).namespace} signatures are not extended; only {c.XADES} ones")
    return qp


def ensure_usp(sig: etree._Element, ids: Ids) -> etree._Element:
    """xades:UnsignedSignatureProperties of ``sig``, created (with UnsignedProperties) if absent."""
    qp = check_writable(sig)
    up = child(qp, c.XADES, "UnsignedProperties", required=False)
    if up is None:
        up = etree.SubElement(qp, c.q(c.XADES, "UnsignedProperties"), {"Id": ids("unsignedprops")})
    usp = child(up, c.XADES, "UnsignedSignatureProperties", required=False)
    if usp is None:
        usp = etree.SubElement(up, c.q(c.XADES, "UnsignedSignatureProperties"), {"Id": ids("unsignedsigprops")})
        up.insert(0, usp)  # UnsignedDataObjectProperties, if any, come after it
    return usp


def append_timestamp(usp: etree._Element, tag: str, token: bytes, c14n_algorithm: str, ids: Ids,
                     id_suffix: str) -> etree._Element:
    """Append a XAdESTimeStampType property: explicit ds:CanonicalizationMethod + EncapsulatedTimeStamp."""
    nsmap = _V141 if tag.startswith(f"{{{c.XADES141}}}") else None
    el = etree.SubElement(usp, tag, {"Id": ids(id_suffix)}, nsmap=nsmap)
    etree.SubElement(el, c.q(c.DS, "CanonicalizationMethod"), {"Algorithm": c14n_algorithm})
    enc = etree.SubElement(el, c.q(c.XADES, "EncapsulatedTimeStamp"), {"Id": ids(f"{id_suffix}-token")})
    enc.text = b64(token)
    return el


def append_certificates(cert_values: etree._Element, certificates: tuple[bytes, ...]) -> None:
    for der in certificates:
        etree.SubElement(cert_values, c.q(c.XADES, "EncapsulatedX509Certificate")).text = b64(der)


def append_revocation(rev_values: etree._Element, crls: tuple[bytes, ...], ocsps: tuple[bytes, ...]) -> None:
    """Add to RevocationValues keeping the schema order CRLValues, OCSPValues, OtherValues."""
    if crls:
        crl_values = child(rev_values, c.XADES, "CRLValues", required=False)
        if crl_values is None:
            crl_values = etree.SubElement(rev_values, c.q(c.XADES, "CRLValues"))
            rev_values.insert(0, crl_values)
        for der in crls:
            etree.SubElement(crl_values, c.q(c.XADES, "EncapsulatedCRLValue")).text = b64(der)
    if ocsps:
        ocsp_values = child(rev_values, c.XADES, "OCSPValues", required=False)
        if ocsp_values is None:
            ocsp_values = etree.SubElement(rev_values, c.q(c.XADES, "OCSPValues"))
            crl_values = child(rev_values, c.XADES, "CRLValues", required=False)
            rev_values.insert(0 if crl_values is None else rev_values.index(crl_values) + 1, ocsp_values)
        for der in ocsps:
            etree.SubElement(ocsp_values, c.q(c.XADES, "EncapsulatedOCSPValue")).text = b64(der)


def append_values(parent: etree._Element, data: ValidationData, ids: Ids, id_prefix: str) -> None:
    """Append CertificateValues and/or RevocationValues holding ``data`` to ``parent``."""
    if data.certificates:
        cv = etree.SubElement(parent, c.q(c.XADES, "CertificateValues"), {"Id": ids(f"{id_prefix}certvalues")})
        append_certificates(cv, data.certificates)
    if data.ocsp_responses or data.crls:
        rv = etree.SubElement(parent, c.q(c.XADES, "RevocationValues"), {"Id": ids(f"{id_prefix}revocvalues")})
        append_revocation(rv, data.crls, data.ocsp_responses)


def append_timestamp_validation_data(usp: etree._Element, data: ValidationData, ids: Ids) -> etree._Element:
    """xadesv141:TimeStampValidationData holding ``data`` (EN 319 132-1 §5.5.1)."""
    el = etree.SubElement(usp, c.q(c.XADES141, "TimeStampValidationData"), {"Id": ids("tsvd")}, nsmap=_V141)
    append_values(el, data, ids, "tsvd-")
    return el
