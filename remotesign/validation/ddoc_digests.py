"""The digests a DigiDoc signature's references are checked against, by DigiDoc's own rules
(as digidoc4j's ddoc4j reads them; see ``ddoc_xml`` for the re-serialisation they start from):

* a DataFile (EMBEDDED_BASE64) of DIGIDOC-XML: the canonical start tag of the element re-written
  on its own, then its text as it stands, then ``</DataFile>``. Version 1.3 adds the DigiDoc 1.3
  default namespace to a start tag that declares none; early 1.3 writers left it out, so that
  form is the alternative digest;
* a DataFile of SK-XML: the decoded content (never the ``DigestValue`` attribute alone: content
  replaced under an unchanged attribute would pass);
* a HASHCODE DataFile: its ``DigestValue`` attribute (the content is held elsewhere);
* SignedInfo and SignedProperties: the element re-written on its own and canonicalized
  (inclusive C14N 1.0, whatever method SignedInfo names, as DigiDoc's canonicalizer does);
  before 1.3 both inherit the XML-DSig default namespace (SignedInfo not in SK-XML); SK-XML
  signs both as re-written, without canonicalization;
* SK-XML's ``#Dn-MIME`` reference: the DataFile's MimeType string."""

from __future__ import annotations

import base64
import binascii
import hashlib

from lxml import etree

from remotesign.formats.base import FormatError
from remotesign.formats.xades.c14n import Budget, element_octets
from remotesign.formats.xades.constants import C14N_10
from remotesign.formats.xades.dom import DS
from remotesign.formats.xades.xmlio import parse_xml
from remotesign.validation.ddoc_xml import DIGIDOC_13_NS, DdocDocument, collected, start_tag

EMBEDDED_BASE64 = "EMBEDDED_BASE64"
HASHCODE = "HASHCODE"
DATA_FILE_END = "</DataFile>"


def canonical(fragment: str, budget: Budget) -> bytes:
    """``fragment`` (a re-written element) parsed on its own and canonicalized, C14N 1.0."""
    budget.spend(len(fragment))
    tree = parse_xml(fragment.encode("utf-8"), max(len(fragment) * 4, 1024))
    return element_octets(tree.getroot(), C14N_10, budget)


def _attribute_digest(df: etree._Element) -> bytes | None:
    value = "".join((df.get("DigestValue") or "").split())
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("invalid_ddoc", f"DataFile {df.get('Id')!r} has a DigestValue that is not base64") from None


def _content(df: etree._Element) -> str:
    if any(True for _ in df):  # elements, comments or PIs: not base64 content
        raise FormatError("invalid_ddoc", f"DataFile {df.get('Id')!r} has markup in its content")
    return df.text or ""


def data_file_digests(doc: DdocDocument, df: etree._Element, algorithm: str, budget: Budget) -> list[bytes]:
    """The digests a reference to ``df`` may carry, preferred first (empty: none can be computed)."""
    content_type = df.get("ContentType")
    if content_type == HASHCODE:
        digest = _attribute_digest(df)
        return [digest] if digest is not None else []
    if content_type != EMBEDDED_BASE64:
        raise FormatError("invalid_ddoc", f"DataFile content type {content_type!r} is not supported")
    text = _content(df)
    if doc.sk_xml:
        try:
            content = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise FormatError("invalid_ddoc", f"DataFile {df.get('Id')!r} content is not base64") from None
        budget.spend(len(content))
        return [hashlib.new(algorithm, content).digest()]
    injected = DIGIDOC_13_NS if doc.version == "1.3" else None
    forms = [injected] + ([None] if injected is not None else [])
    digests = []
    for inject in forms:
        tag = start_tag(doc, df, inject=inject)
        octets = canonical(tag + DATA_FILE_END, budget)
        head = octets[:-len(DATA_FILE_END)]
        hasher = hashlib.new(algorithm, head)
        hasher.update(text.encode("utf-8"))
        hasher.update(DATA_FILE_END.encode())
        digests.append(hasher.digest())
        budget.spend(len(text))
    return list(dict.fromkeys(digests))


def mime_digest(df: etree._Element, algorithm: str) -> bytes:
    """SK-XML's ``#<Id>-MIME`` reference digests the DataFile's MimeType."""
    return hashlib.new(algorithm, (df.get("MimeType") or "").encode("utf-8")).digest()


def signed_info_octets(doc: DdocDocument, signed_info: etree._Element, budget: Budget) -> bytes:
    """What the signature value signs."""
    return _signed_octets(doc, signed_info, budget)


def signed_properties_octets(doc: DdocDocument, props: etree._Element, budget: Budget) -> bytes:
    """What the SignedProperties reference digests."""
    return _signed_octets(doc, props, budget)


def _signed_octets(doc: DdocDocument, element: etree._Element, budget: Budget) -> bytes:
    """SignedInfo and SignedProperties alike: re-written as SK-XML kept them, else canonicalized
    (inheriting the XML-DSig default namespace before DIGIDOC-XML 1.3)."""
    if doc.sk_xml:
        text = collected(doc, element, raw=True)
        budget.spend(len(text))
        return text.encode("utf-8")
    inject = None if doc.version == "1.3" else DS
    return canonical(collected(doc, element, inject=inject), budget)
