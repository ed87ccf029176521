"""Where things are in one DigiDoc ``Signature``. Its qualifying properties follow XAdES 1.1.1
in version 1.3 and sit in the XML-DSig namespace (inherited from ``Signature``) before; SK-XML
writes the signer's serial number as the text of IssuerSerial. Lookups are by namespace and
refuse duplicates (a second SignedInfo or SignedProperties is how wrapping attacks start)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from lxml import etree

from remotesign.formats.xades.algorithms import DIGESTS
from remotesign.formats.xades.constants import XADES111
from remotesign.formats.xades.dom import DS, StructureError, children, local_name, single, text_of
from remotesign.formats.xades.reading import CertReference
from remotesign.validation.ddoc_xml import DdocDocument


@dataclass
class DdocParts:
    """The located parts of one DigiDoc signature."""

    sig: etree._Element
    signed_info: etree._Element
    signature_value: etree._Element
    key_info_certificates: list[etree._Element]
    signed_properties: etree._Element
    signed_signature_properties: etree._Element | None
    unsigned_signature_properties: etree._Element | None
    ns: tuple[str, ...]

    def signed(self, *path: str) -> list[etree._Element]:
        """Elements at ``path`` below SignedSignatureProperties."""
        level = [self.signed_signature_properties] if self.signed_signature_properties is not None else []
        for name in path:
            level = [c for el in level for c in children(el, (*self.ns, DS), name)]
        return level

    def unsigned(self, *path: str) -> list[etree._Element]:
        level = [self.unsigned_signature_properties] if self.unsigned_signature_properties is not None else []
        for name in path:
            level = [c for el in level for c in children(el, (*self.ns, DS), name)]
        return level


def locate(doc: DdocDocument, sig: etree._Element) -> DdocParts:
    """The parts of ``sig``; StructureError when the DigiDoc structure is broken."""
    ns = (XADES111,) if doc.version == "1.3" else (DS,)
    signed_info = single(sig, DS, "SignedInfo", required=True)
    value = single(sig, DS, "SignatureValue", required=True)
    key_info = single(sig, DS, "KeyInfo", required=True)
    certs = [c for data in children(key_info, DS, "X509Data") for c in children(data, DS, "X509Certificate")]
    objects = children(sig, DS, "Object")
    if len(objects) != 1:
        raise StructureError(f"the signature has {len(objects)} ds:Object elements, DigiDoc has one")
    qp = single(objects[0], ns, "QualifyingProperties", required=True)
    sp = single(qp, ns, "SignedProperties", required=True)
    up = single(qp, ns, "UnsignedProperties")
    return DdocParts(sig=sig, signed_info=signed_info, signature_value=value, key_info_certificates=certs,
                     signed_properties=sp, signed_signature_properties=single(sp, ns, "SignedSignatureProperties"),
                     unsigned_signature_properties=single(up, ns, "UnsignedSignatureProperties"), ns=ns)


def decode(el: etree._Element | None, what: str) -> bytes:
    """Base64 content of ``el``; StructureError when absent, empty or not base64."""
    text = "".join((text_of(el) or "").split())
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise StructureError(f"{what} is not valid base64") from None
    if not value:
        raise StructureError(f"{what} is empty")
    return value


def cert_references(parts: DdocParts) -> list[CertReference]:
    """SigningCertificate/Cert: digest, and the serial number (X509SerialNumber, or SK-XML's bare
    IssuerSerial text)."""
    refs = []
    for cert in parts.signed("SigningCertificate", "Cert"):
        algorithm = digest = serial = None
        for cert_digest in children(cert, (*parts.ns, DS), "CertDigest"):
            method = next(iter(children(cert_digest, (*parts.ns, DS), "DigestMethod")), None)
            algorithm = DIGESTS.get(method.get("Algorithm", "")) if method is not None else None
            try:
                digest = decode(next(iter(children(cert_digest, (*parts.ns, DS), "DigestValue")), None), "CertDigest")
            except StructureError:
                digest = None
        for issuer_serial in children(cert, (*parts.ns, DS), "IssuerSerial"):
            number = next(iter(children(issuer_serial, (*parts.ns, DS), "X509SerialNumber")), None)
            text = text_of(number) if number is not None else (issuer_serial.text or "").strip()
            serial = int(text) if text and text.isdigit() and len(text) < 100 else None
        refs.append(CertReference(algorithm, digest, serial, None, False))
    return refs


def issuer_namespace_warnings(parts: DdocParts) -> list[str]:
    """DigiDoc 1.3 writes X509IssuerName and X509SerialNumber in the XML-DSig namespace; some
    writers left it out (a warning in digidoc4j)."""
    out = []
    for el in parts.signed("SigningCertificate", "Cert", "IssuerSerial"):
        for child in el:
            if isinstance(child.tag, str) and local_name(child) in ("X509IssuerName", "X509SerialNumber") \
                    and etree.QName(child).namespace != DS:
                out.append(f"{local_name(child)} has none or invalid namespace: {etree.QName(child).namespace}")
    return out


# SK-XML: 2002.10.07T15:10:19-03:00; DIGIDOC-XML: 2006-06-26T12:15:31Z
_TIME = re.compile(r"^(\d{4})[.-](\d{2})[.-](\d{2})T(\d{2}):(\d{2}):(\d{2})(Z|[+-]\d{2}:\d{2})?$")


def parse_time(text: str | None) -> datetime | None:
    found = _TIME.match((text or "").strip())
    if found is None:
        return None
    year, month, day, hour, minute, second, zone = found.groups()
    offset = timedelta(0)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        tzinfo=timezone(offset)).astimezone(timezone.utc)
    except ValueError:
        return None


def production_place(parts: DdocParts) -> dict[str, str]:
    place = {}
    for el in parts.signed("SignatureProductionPlace"):
        for child in el:
            if isinstance(child.tag, str) and (child.text or "").strip():
                place[local_name(child)] = child.text.strip()
    return place


def claimed_roles(parts: DdocParts) -> list[str]:
    return [r for r in (text_of(el) for el in parts.signed("SignerRole", "ClaimedRoles", "ClaimedRole")) if r]
