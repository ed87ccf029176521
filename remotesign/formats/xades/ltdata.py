"""B-LT: embed certificates and revocation data (xades:CertificateValues and
xades:RevocationValues, EN 319 132-1 §5.5.1-§5.5.2). Once an archive time-stamp covers those
properties they are frozen, so later material goes into a new xadesv141:TimeStampValidationData
instead."""

from __future__ import annotations

from lxml import etree

from remotesign.formats.base import ValidationData
from remotesign.formats.xades.reading import CERT_VALUES, REV_VALUES, embedded_validation_data, read_signature
from remotesign.formats.xades.unsigned import (Ids, append_certificates, append_revocation,
                                               append_timestamp_validation_data, append_values, ensure_usp)
from remotesign.formats.xades.xmlio import (MAX_DOCUMENT_BYTES, element_children, find_signature,
                                            parse_signatures, serialize)


def incorporate(sig: etree._Element, data: ValidationData, ids: Ids) -> None:
    """Add what ``data`` has and the signature lacks: into CertificateValues / RevocationValues
    while no archive time-stamp exists, else into a new TimeStampValidationData."""
    missing = data.without(embedded_validation_data(sig))
    if missing.is_empty():
        return
    usp = ensure_usp(sig, ids)
    props = element_children(usp)
    if any(etree.QName(p).localname == "ArchiveTimeStamp" for p in props):
        append_timestamp_validation_data(usp, missing, ids)
        return
    cert_values = next((p for p in props if p.tag == CERT_VALUES), None)
    rev_values = next((p for p in props if p.tag == REV_VALUES), None)
    if cert_values is not None and missing.certificates:
        append_certificates(cert_values, missing.certificates)
        missing = ValidationData((), missing.ocsp_responses, missing.crls)
    if rev_values is not None and (missing.ocsp_responses or missing.crls):
        append_revocation(rev_values, missing.crls, missing.ocsp_responses)
        missing = ValidationData(missing.certificates)
    append_values(usp, missing, ids, "")


def add_validation_data(xml: bytes, data: ValidationData, *, signature_id: str | None = None) -> bytes:
    """B-T -> B-LT: CertificateValues + RevocationValues with whatever of ``data`` is not yet
    embedded (the KeyInfo certificates are included again: verifiers look for them here)."""
    tree = parse_signatures(xml, MAX_DOCUMENT_BYTES)
    sig = find_signature(tree, signature_id)
    read_signature(sig)
    incorporate(sig, data, Ids(sig))
    return serialize(tree)
