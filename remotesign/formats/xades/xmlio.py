"""Parsing and serialising signature documents. Everything that reads XML goes through the one
hardened parser here, and everything that writes goes through ``serialize``, which never
re-indents: signed parts must keep their exact octets across extension steps."""

from __future__ import annotations

import base64
import binascii
import re

from lxml import etree

from remotesign.formats.base import FormatError
from remotesign.formats.xades.constants import ASIC, DS, q

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
#: Ceiling for documents this package re-reads while extending its own output; untrusted input
#: is bounded by the caller's ``max_bytes`` (formats.base.Limits.max_xml_bytes).
MAX_DOCUMENT_BYTES = 64 << 20
# A conservative subset of XML NCName (what xsd:ID allows), enough for generated and given Ids.
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]*$")


def _parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers are not thread-safe and keep error logs.
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                           dtd_validation=False, remove_blank_text=False, remove_comments=False,
                           remove_pis=False, strip_cdata=False, collect_ids=False)


def parse_xml(data: bytes, max_bytes: int) -> etree._ElementTree:
    """Parse untrusted XML: size-capped, no network, no DTD and no entities of any kind."""
    if not isinstance(data, (bytes, bytearray)):
        raise FormatError("invalid_xml", "XML input must be bytes")
    if len(data) > max_bytes:
        raise FormatError("invalid_xml", f"XML document larger than {max_bytes} bytes")
    if not data.strip():
        raise FormatError("invalid_xml", "empty XML document")
    try:
        tree = etree.ElementTree(etree.fromstring(bytes(data), _parser()))
    except (etree.LxmlError, ValueError) as exc:
        raise FormatError("invalid_xml", f"malformed XML: {exc}") from None
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise FormatError("invalid_xml", "XML documents with a DOCTYPE are not accepted")
    for node in tree.iter(etree.Entity):  # belt and braces: no entity reference may survive
        raise FormatError("invalid_xml", f"entity reference {node.text!r} not allowed")
    return tree


def parse_signatures(data: bytes, max_bytes: int) -> etree._ElementTree:
    """Safe parse of a ``signatures*.xml`` document: ``asic:XAdESSignatures`` (or a bare
    ``ds:Signature``) as root, anything else is rejected."""
    tree = parse_xml(data, max_bytes)
    root = tree.getroot()
    if root.tag not in (q(ASIC, "XAdESSignatures"), q(DS, "Signature")):
        raise FormatError("invalid_xml", f"unexpected root element {root.tag}")
    return tree


def serialize(tree: etree._ElementTree) -> bytes:
    """UTF-8 with the canonical declaration; nodes are written exactly as they are held (no
    re-indenting), top-level comments and PIs included."""
    return XML_DECLARATION + etree.tostring(tree, encoding="UTF-8", xml_declaration=False)


def signature_elements(tree: etree._ElementTree) -> list[etree._Element]:
    root = tree.getroot()
    if root.tag == q(DS, "Signature"):
        return [root]
    return root.findall(q(DS, "Signature"))


def find_signature(tree: etree._ElementTree, signature_id: str | None = None) -> etree._Element:
    """The one signature the caller means: by Id, or the only one in the document."""
    signatures = signature_elements(tree)
    if signature_id is not None:
        for sig in signatures:
            if sig.get("Id") == signature_id:
                return sig
        raise FormatError("invalid_xades", f"no ds:Signature with Id {signature_id!r}")
    if len(signatures) != 1:
        raise FormatError("invalid_xades", f"expected one ds:Signature, found {len(signatures)}; pass signature_id")
    return signatures[0]


def child(parent: etree._Element, ns: str, local: str, *, required: bool = True) -> etree._Element | None:
    """The single child ``{ns}local``; a missing required or a duplicated child is malformed."""
    found = parent.findall(q(ns, local))
    if len(found) > 1:
        raise FormatError("invalid_xades", f"{local} appears {len(found)} times in {etree.QName(parent).localname}")
    if not found:
        if required:
            raise FormatError("invalid_xades", f"{etree.QName(parent).localname} has no {local}")
        return None
    return found[0]


def element_children(parent: etree._Element) -> list[etree._Element]:
    """Element children only (comments, PIs and whitespace text are not properties)."""
    return [c for c in parent if isinstance(c.tag, str)]


def check_id(value: str) -> str:
    if not isinstance(value, str) or not _NCNAME.match(value):
        raise FormatError("invalid_argument", f"{value!r} is not a valid XML Id")
    return value


def new_id(taken: set[str], base: str) -> str:
    """``base`` or ``base-2``, ``base-3`` ... whichever is free; records the choice in ``taken``."""
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    taken.add(candidate)
    return candidate


def b64(data: bytes) -> str:
    """Base64 on one line: XMLDSig allows line breaks, but none means nothing to re-wrap."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str | None, what: str) -> bytes:
    cleaned = "".join((text or "").split())
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("invalid_xades", f"{what} is not valid base64") from None
