"""Reading a legacy Estonian DigiDoc file (DDOC: root ``SignedDoc``; SK-XML 1.0, DIGIDOC-XML
1.1, 1.2 and 1.3) and re-serialising its signed parts the way DigiDoc libraries do.

DigiDoc does not digest the document's own octets or a canonical node-set of it: its SAX parser
re-writes each signed element from the parse events (start tags with the attributes and the
namespace declarations *written on that element*, escaped text, end tags, no comments) and then
canonicalizes that fragment on its own, without the ancestors' namespaces. Reproducing that needs
the namespace declarations exactly as written, redundant ones included, which lxml's tree does not
keep; they are read from a second, event-based pass over the same bytes. Both passes use the
hardened parser settings (no DTD, no entities, no network); the first is ``parse_xml`` itself."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from lxml import etree

from remotesign.formats.base import FormatError
from remotesign.formats.xades.dom import DS, is_element, local_name
from remotesign.formats.xades.xmlio import parse_xml

DIGIDOC_13_NS = "http://www.sk.ee/DigiDoc/v1.3.0#"
XML_NS = "http://www.w3.org/XML/1998/namespace"
BOM = b"\xef\xbb\xbf"
#: Formats and versions DigiDoc libraries read, as the root element names them.
VERSIONS = {"SK-XML": ("1.0",), "DIGIDOC-XML": ("1.1", "1.2", "1.3")}
MAX_DATA_FILES = 1000
MAX_SIGNATURES = 200

# The first element of a document: after BOMs, the XML declaration, comments and PIs.
_PROLOG = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->)", re.S)
_ROOT = re.compile(rb"\s*<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")


def strip_boms(data: bytes) -> bytes:
    """``data`` without leading UTF-8 byte order marks (DigiDoc tools wrote several)."""
    start = 0
    while data.startswith(BOM, start):
        start += len(BOM)
    return data[start:] if start else data


def root_name(head: bytes) -> str | None:
    """Local name of the first element in ``head`` (the first bytes of a file), if there is one."""
    text = strip_boms(head)
    pos = 0
    for _ in range(64):  # bounded: a prolog of many comments is not a DigiDoc file
        prolog = _PROLOG.match(text, pos)
        if prolog is None:
            break
        pos = prolog.end()
    found = _ROOT.match(text, pos)
    return found.group(1).decode("ascii") if found else None


def is_ddoc(head: bytes) -> bool:
    return root_name(head) == "SignedDoc"


@dataclass
class DdocDocument:
    """A parsed DDOC: its format and version, data files and signatures (document order), and the
    namespace declarations each element carries as written."""

    tree: etree._ElementTree
    format: str
    version: str
    data_files: list[etree._Element]
    signatures: list[etree._Element]
    declarations: dict[etree._Element, list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """SiVa's name of the format, e.g. DIGIDOC_XML_1.3, SK_XML_1.0."""
        return f"{self.format.replace('-', '_')}_{self.version}"

    @property
    def sk_xml(self) -> bool:
        return self.format == "SK-XML"

    def declared(self, el: etree._Element) -> list[tuple[str, str]]:
        """(prefix or "", URI) of the namespace declarations written on ``el``."""
        return self.declarations.get(el, [])


def read_ddoc(data: bytes, max_bytes: int) -> DdocDocument:
    """Parse a DDOC; FormatError when it is not well-formed XML or not a DigiDoc file this
    validator knows."""
    data = strip_boms(data)
    tree = parse_xml(data, max_bytes)
    root = tree.getroot()
    if local_name(root) != "SignedDoc" or root.prefix is not None:
        raise FormatError("invalid_ddoc", "the root element is not a DigiDoc SignedDoc")
    fmt, version = root.get("format", ""), root.get("version", "")
    if version not in VERSIONS.get(fmt, ()):
        raise FormatError("invalid_ddoc", f"unknown DigiDoc format {fmt!r} version {version!r}")
    expected_ns = DIGIDOC_13_NS if version == "1.3" else None
    if etree.QName(root).namespace != expected_ns:
        raise FormatError("invalid_ddoc", f"{fmt} {version} SignedDoc in namespace {etree.QName(root).namespace!r}")
    data_files, signatures = [], []
    for child in root:
        if not is_element(child):
            continue
        if local_name(child) == "DataFile" and etree.QName(child).namespace == expected_ns and child.prefix is None:
            data_files.append(child)
        elif child.tag == f"{{{DS}}}Signature":
            signatures.append(child)
        else:
            raise FormatError("invalid_ddoc", f"unexpected element {child.tag} in SignedDoc")
    if len(data_files) > MAX_DATA_FILES or len(signatures) > MAX_SIGNATURES:
        raise FormatError("invalid_ddoc", "the DigiDoc file holds too many data files or signatures")
    return DdocDocument(tree=tree, format=fmt, version=version, data_files=data_files, signatures=signatures,
                        declarations=_declarations(data, tree))


def _declarations(data: bytes, tree: etree._ElementTree) -> dict[etree._Element, list[tuple[str, str]]]:
    """Namespace declarations per element of ``tree``, as written (an event pass over the same
    bytes, matched to ``tree`` by document order)."""
    pending: list[tuple[str, str]] = []
    per_element: list[list[tuple[str, str]]] = []
    try:
        for event, item in etree.iterparse(io.BytesIO(data), events=("start-ns", "start"), resolve_entities=False,
                                           no_network=True, load_dtd=False, huge_tree=False,
                                           remove_comments=True, remove_pis=True):
            if event == "start-ns":
                pending.append((item[0] or "", item[1]))
            else:
                per_element.append(pending)
                pending = []
    except (etree.LxmlError, ValueError) as exc:
        raise FormatError("invalid_xml", f"malformed XML: {exc}") from None
    elements = [el for el in tree.iter() if is_element(el)]
    if len(elements) != len(per_element):
        raise FormatError("invalid_xml", "the document's elements cannot be matched between parser passes")
    return {el: decls for el, decls in zip(elements, per_element) if decls}


# -- DigiDoc's re-serialisation ------------------------------------------------------------------------

def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")


def _attribute(value: str) -> str:
    return _text(value).replace("'", "&apos;").replace('"', "&quot;")


def _qualified(el: etree._Element, clark: str) -> str:
    """The name as written: a namespaced attribute or element gets a prefix in scope for it."""
    if not clark.startswith("{"):
        return clark
    uri, local = clark[1:].split("}", 1)
    if uri == XML_NS:
        return f"xml:{local}"
    if el.tag == clark:
        return f"{el.prefix}:{local}" if el.prefix else local
    prefixes = sorted(p for p, u in el.nsmap.items() if u == uri and p)
    if not prefixes:
        raise FormatError("invalid_ddoc", f"attribute namespace {uri!r} has no prefix")
    return f"{prefixes[0]}:{local}"


def start_tag(doc: DdocDocument, el: etree._Element, *, inject: str | None = None, raw: bool = False) -> str:
    """``el``'s start tag as DigiDoc's parser re-writes it: namespace declarations written on it,
    then its attributes in document order; ``inject`` is a default namespace DigiDoc adds when the
    element declares none; ``raw`` leaves attribute values unescaped (SK-XML)."""
    parts = ["<", _qualified(el, el.tag)]
    declared = doc.declared(el)
    for prefix, uri in declared:
        parts.append(f' xmlns:{prefix}="{_attribute(uri)}"' if prefix else f' xmlns="{_attribute(uri)}"')
    for key, value in el.attrib.items():
        name = _qualified(el, key)
        if raw:
            if name == "DigestValue" and value.endswith(" "):  # SK-XML writers' line-broken DigestValue
                value = value.replace(" ", "\n")
            parts.append(f' {name}="{value}"')
        else:
            parts.append(f' {name}="{_attribute(value)}"')
    if inject is not None and not any(prefix == "" for prefix, _ in declared):
        parts.append(f' xmlns="{_attribute(inject)}"')
    parts.append(">")
    return "".join(parts)


def collected(doc: DdocDocument, el: etree._Element, *, inject: str | None = None, raw: bool = False) -> str:
    """The whole element as DigiDoc collects it from parse events (``inject`` on the outermost
    start tag only). Iterative: depth is bounded by the parser, not by Python's stack."""
    out: list[str] = []
    stack: list[tuple[etree._Element, bool]] = [(el, True)]
    while stack:
        node, opening = stack.pop()
        if not opening:
            out.append(f"</{_qualified(node, node.tag)}>")
            if node is not el and node.tail:
                out.append(_text(node.tail))
            continue
        out.append(start_tag(doc, node, inject=inject if node is el else None, raw=raw))
        if node.text:
            out.append(_text(node.text))
        stack.append((node, False))
        children = [c for c in node if is_element(c)]
        for child in reversed(children):
            stack.append((child, True))
        # comments and PIs are not parse events DigiDoc collects, but their tails are text
        for child in node:
            if not is_element(child) and child.tail:
                raise FormatError("invalid_ddoc", "comments or processing instructions inside signed DigiDoc data")
    return "".join(out)
