"""Canonicalization of element subtrees *in their document context*, by algorithm URI.

lxml canonicalizes a subtree with its in-scope namespace declarations, which is exactly what
inclusive C14N needs. What it does not do is carry inherited ``xml:*`` attributes onto the apex
element, so a subtree whose ancestors hold any is refused instead of canonicalized wrongly.
C14N 1.1 is served by the 1.0 serializer: the two differ only for inherited xml:id / xml:base,
which that same check excludes."""

from __future__ import annotations

from lxml import etree

from remotesign.formats.base import FormatError
from remotesign.formats.xades import constants as c

# URI -> (exclusive, with_comments)
_MODES = {
    c.C14N_10: (False, False),
    c.C14N_10_COMMENTS: (False, True),
    c.C14N_11: (False, False),
    c.C14N_11_COMMENTS: (False, True),
    c.EXC_C14N: (True, False),
    c.EXC_C14N_COMMENTS: (True, True),
}


def is_c14n(algorithm: str) -> bool:
    return algorithm in _MODES


def canonicalize(element: etree._Element, algorithm: str, inclusive_prefixes: list[str] | None = None) -> bytes:
    """Octets of ``element`` (and its subtree) under ``algorithm``."""
    try:
        exclusive, comments = _MODES[algorithm]
    except KeyError:
        raise FormatError("unsupported_algorithm", f"canonicalization {algorithm!r} is not supported") from None
    if not exclusive:
        _refuse_inherited_xml_attributes(element)
    return etree.tostring(element, method="c14n", exclusive=exclusive, with_comments=comments,
                          inclusive_ns_prefixes=inclusive_prefixes if exclusive else None)


def _refuse_inherited_xml_attributes(element: etree._Element) -> None:
    for ancestor in element.iterancestors():
        if any(name.startswith(f"{{{c.XML_NS}}}") for name in ancestor.attrib):
            raise FormatError("unsupported_xml",
                              "inclusive canonicalization under inherited xml:* attributes is not supported")


def canonicalization_of(parent: etree._Element, default: str = c.C14N_10) -> str:
    """Algorithm of the ``ds:CanonicalizationMethod`` child of ``parent`` (XMLDSig default if absent)."""
    method = parent.find(c.q(c.DS, "CanonicalizationMethod"))
    if method is None:
        return default
    algorithm = method.get("Algorithm")
    if not algorithm or not is_c14n(algorithm):
        raise FormatError("unsupported_algorithm", f"canonicalization {algorithm!r} is not supported")
    return algorithm


def inclusive_namespaces(method: etree._Element | None) -> list[str] | None:
    """PrefixList of an ``ec:InclusiveNamespaces`` child of an exclusive c14n method, if any."""
    if method is None:
        return None
    for node in method:
        if isinstance(node.tag, str) and etree.QName(node).localname == "InclusiveNamespaces":
            return (node.get("PrefixList") or "").split()  # libxml2 understands "#default" itself
    return None
