"""Canonical XML (C14N 1.0, 1.1 and Exclusive C14N, with or without comments) of the node-sets
XMLDSig reference processing produces, written out in Python.

Why not lxml's ``tostring(method="c14n")``: libxml2 2.14 renders a spurious ``xmlns=""`` on
grandchildren when the apex of an inclusive canonicalization declares the default namespace
(``<h xmlns="urn:x"><a><b/></a></h>`` inside another element gives ``<b xmlns="">``), so
real-world signatures over XHTML or default-namespace documents would fail to verify. A
validator also needs node-sets lxml cannot express: a subtree minus enveloped signatures, or an
element's content without the element (XPath Filter 2.0 ``id('x')/node()``).

Only node-sets that permitted transforms can produce are modelled (whole document, one subtree,
or one element's content; minus excluded subtrees). Input comes from the hardened parser: no
DTD, no entities, so attribute defaults and entity references never arise. Every canonical
octet produced is charged to a work budget, which bounds what a hostile document with many
references can cost.

This is the one canonicalization of the project: the signer (SignedInfo, SignedProperties,
references), the extenders (time-stamp inputs) and the validator all produce their octets here,
so what is signed or time-stamped is exactly what is later verified."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lxml import etree

from remotesign.formats.base import FormatError
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.dom import XML_NS, StructureError, is_element

_XML_ATTR = f"{{{XML_NS}}}"
_WITH_COMMENTS = {c.C14N_10_COMMENTS, c.C14N_11_COMMENTS, c.EXC_C14N_COMMENTS}
_EXCLUSIVE = {c.EXC_C14N, c.EXC_C14N_COMMENTS}
_C14N_11 = {c.C14N_11, c.C14N_11_COMMENTS}
ALGORITHMS = frozenset({c.C14N_10, c.C14N_10_COMMENTS, c.C14N_11, c.C14N_11_COMMENTS, c.EXC_C14N,
                        c.EXC_C14N_COMMENTS})


#: Canonical octets one document may make us produce, per octet of input (plus a fixed
#: allowance): generous for real signatures, bounded for hostile ones.
WORK_FACTOR = 16
WORK_ALLOWANCE = 64 << 20


class BudgetExceeded(Exception):
    """The document asks for more canonicalization work than the validator allows."""


class Budget:
    """Octets of canonical output one validation may produce."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def spend(self, amount: int) -> None:
        self.used += amount
        if self.used > self.limit:
            raise BudgetExceeded(f"canonicalization work above {self.limit} octets")


def work_budget(document_size: int) -> Budget:
    """The budget for all canonicalization work on one document of ``document_size`` octets."""
    return Budget(WORK_FACTOR * document_size + WORK_ALLOWANCE)


def is_c14n(algorithm: str | None) -> bool:
    return algorithm in ALGORITHMS


def check_algorithm(algorithm: str | None) -> str:
    if not algorithm or algorithm not in ALGORITHMS:
        raise StructureError(f"canonicalization {algorithm!r} is not supported")
    return algorithm


def _text(value: str | None) -> str:
    if not value:
        return ""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")


def _attr(value: str) -> str:
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
            .replace("\t", "&#x9;").replace("\n", "&#xA;").replace("\r", "&#xD;"))


def _pi(node: etree._ProcessingInstruction) -> str:
    return f"<?{node.target}{' ' + node.text if node.text else ''}?>"


@dataclass(frozen=True)
class NodeSet:
    """A node-set: ``apex`` None means the whole document; ``children_only`` leaves the apex
    element itself out but keeps its content; ``excluded`` subtrees are not in the set."""

    tree: etree._ElementTree
    apex: etree._Element | None
    comments: bool = False
    children_only: bool = False
    excluded: tuple[etree._Element, ...] = field(default=())

    def contains(self, el: etree._Element) -> bool:
        """True when element ``el`` is in the node-set."""
        if self.apex is not None:
            if el is self.apex:
                if self.children_only:
                    return False
            elif not any(a is self.apex for a in el.iterancestors()):
                return False
        return not any(el is x or any(a is x for a in el.iterancestors()) for x in self.excluded)

    def holds_content(self, el: etree._Element) -> bool:
        """True when the child nodes of ``el`` (its text, in particular) are in the node-set."""
        return self.contains(el) or (el is self.apex and self.children_only)

    def without(self, elements: list[etree._Element]) -> NodeSet:
        """The node-set minus the subtrees of ``elements`` (those outside it change nothing)."""
        if self.apex is not None and not self.children_only and any(e is self.apex for e in elements):
            raise StructureError("a transform removes the whole referenced element")
        inside = tuple(e for e in elements if self.contains(e) and e not in self.excluded)
        return replace(self, excluded=self.excluded + inside)

    def text_value(self) -> str:
        """XPath string-value of the node-set's text nodes (input of the base64 transform)."""
        root = self.apex if self.apex is not None else self.tree.getroot()
        parts = []
        for node in root.iter():
            if is_element(node) and node.text and self.holds_content(node):
                parts.append(node.text)
            if node is not root and node.tail:
                parent = node.getparent()
                if parent is not None and self.holds_content(parent):
                    parts.append(node.tail)
        return "".join(parts)

    def octets(self, algorithm: str, budget: Budget, prefixes: list[str] | None = None) -> bytes:
        """The node-set canonicalized with ``algorithm`` (InclusiveNamespaces ``prefixes``
        apply to exclusive canonicalization only)."""
        writer = _Writer(check_algorithm(algorithm), self, prefixes, budget)
        if self.apex is None:
            writer.document(self.tree)
        elif self.children_only:
            writer.content(self.apex, {}, {}, apex_children=True)
        else:
            writer.element(self.apex, {}, {}, apex=True)
        return writer.result()


def element_octets(el: etree._Element, algorithm: str, budget: Budget, prefixes: list[str] | None = None, *,
                   comments: bool = True) -> bytes:
    """``el`` and its subtree canonicalized in document context (comments kept when both the
    node-set and the algorithm have them)."""
    return NodeSet(el.getroottree(), el, comments=comments).octets(algorithm, budget, prefixes)


class _Writer:
    def __init__(self, algorithm: str, node_set: NodeSet, prefixes: list[str] | None, budget: Budget) -> None:
        self.exclusive = algorithm in _EXCLUSIVE
        self.c14n11 = algorithm in _C14N_11
        self.comments = node_set.comments and algorithm in _WITH_COMMENTS
        self.excluded = {id(x) for x in node_set.excluded}
        self.inclusive_prefixes = ({(None if p == "#default" else p) for p in (prefixes or [])}
                                   if self.exclusive else set())
        self.budget = budget
        self.out: list[str] = []
        self.size = 0

    def emit(self, text: str) -> None:
        if text:
            self.out.append(text)
            self.size += len(text)
            if self.size > 1 << 16:
                self.budget.spend(self.size)
                self.size = 0

    def result(self) -> bytes:
        self.budget.spend(self.size)
        return "".join(self.out).encode("utf-8")

    # -- document and content -------------------------------------------------------------------
    def document(self, tree: etree._ElementTree) -> None:
        root = tree.getroot()
        before = list(reversed(list(root.itersiblings(preceding=True))))
        after = list(root.itersiblings())
        for node in before:
            if self._misc(node):
                self.emit("\n")
        self.element(root, {}, {}, apex=True)
        for node in after:
            if self._is_output_misc(node):
                self.emit("\n")
                self._misc(node)

    def _is_output_misc(self, node: etree._Element) -> bool:
        return isinstance(node, etree._ProcessingInstruction) or (isinstance(node, etree._Comment) and self.comments)

    def _misc(self, node: etree._Element) -> bool:
        if isinstance(node, etree._ProcessingInstruction):
            self.emit(_pi(node))
            return True
        if isinstance(node, etree._Comment) and self.comments:
            self.emit(f"<!--{node.text or ''}-->")
            return True
        return False

    def content(self, el: etree._Element, axis: dict, rendered: dict, *, apex_children: bool = False) -> None:
        """Text and child nodes of ``el``; ``axis``/``rendered`` describe the nearest output
        ancestor (empty when ``el`` itself is not output)."""
        self.emit(_text(el.text))
        for node in el:
            if isinstance(node, etree._Comment):
                if self.comments:
                    self.emit(f"<!--{node.text or ''}-->")
            elif isinstance(node, etree._ProcessingInstruction):
                self.emit(_pi(node))
            elif is_element(node) and id(node) not in self.excluded:
                self.element(node, axis, rendered, apex=apex_children)
            self.emit(_text(node.tail))

    # -- elements -----------------------------------------------------------------------------------
    def element(self, el: etree._Element, parent_axis: dict, parent_rendered: dict, *, apex: bool) -> None:
        axis = {p: u for p, u in el.nsmap.items()}
        if self.exclusive:
            decls, rendered = self._exclusive_namespaces(el, axis, parent_rendered)
        else:
            decls, rendered = self._inclusive_namespaces(axis, parent_axis, apex)
        name = self._qname(el.prefix, etree.QName(el).localname)
        self.emit(f"<{name}")
        for prefix, uri in sorted(decls.items(), key=lambda kv: "" if kv[0] is None else kv[0]):
            self.emit(f' xmlns="{_attr(uri)}"' if prefix is None else f' xmlns:{prefix}="{_attr(uri)}"')
        for (ns, local), (qname, value) in sorted(self._attributes(el, axis, apex).items()):
            self.emit(f' {qname}="{_attr(value)}"')
        self.emit(">")
        self.content(el, axis, rendered)
        self.emit(f"</{name}>")

    @staticmethod
    def _qname(prefix: str | None, local: str) -> str:
        return f"{prefix}:{local}" if prefix else local

    def _inclusive_namespaces(self, axis: dict, parent_axis: dict, apex: bool) -> tuple[dict, dict]:
        decls = {p: u for p, u in axis.items() if apex or parent_axis.get(p) != u}
        if decls.get(None) == "" and not parent_axis.get(None):
            del decls[None]  # xmlns="" undeclares nothing where no output ancestor has a default namespace
        if None not in axis and parent_axis.get(None):
            decls[None] = ""
        return decls, axis

    def _exclusive_namespaces(self, el: etree._Element, axis: dict, parent_rendered: dict) -> tuple[dict, dict]:
        used = {el.prefix}
        for key in el.attrib:
            if key.startswith("{") and not key.startswith(_XML_ATTR):
                used.add(self._attribute_prefix(key[1:].split("}", 1)[0], axis))
        used |= {p for p in self.inclusive_prefixes if p in axis}
        decls = {}
        rendered = dict(parent_rendered)
        for prefix in used:
            uri = axis.get(prefix, "" if prefix is None else None)
            if uri is None:
                continue
            if rendered.get(prefix, "" if prefix is None else None) != uri:
                decls[prefix] = uri
                rendered[prefix] = uri
        return decls, rendered

    @staticmethod
    def _attribute_prefix(uri: str, axis: dict) -> str:
        candidates = sorted(p for p, u in axis.items() if u == uri and p is not None)
        if not candidates:
            raise StructureError(f"attribute namespace {uri!r} has no prefix in scope")
        return candidates[0]

    def _attributes(self, el: etree._Element, axis: dict, apex: bool) -> dict:
        attrs: dict[tuple[str, str], tuple[str, str]] = {}
        for key, value in el.attrib.items():
            if key.startswith(_XML_ATTR):
                local = key[len(_XML_ATTR):]
                attrs[(XML_NS, local)] = (f"xml:{local}", value)
            elif key.startswith("{"):
                uri, local = key[1:].split("}", 1)
                attrs[(uri, local)] = (f"{self._attribute_prefix(uri, axis)}:{local}", value)
            else:
                attrs[("", key)] = (key, value)
        if apex and not self.exclusive:
            self._inherit_xml_attributes(el, attrs)
        return attrs

    def _inherit_xml_attributes(self, el: etree._Element, attrs: dict) -> None:
        """C14N 1.0 §2.4 / 1.1 §2.4: an apex element takes the xml:* attributes of its
        ancestors (1.1: xml:lang and xml:space only; xml:base fix-up is not supported)."""
        for ancestor in el.iterancestors():
            for key, value in ancestor.attrib.items():
                if not key.startswith(_XML_ATTR):
                    continue
                local = key[len(_XML_ATTR):]
                if self.c14n11:
                    if local == "base":
                        raise StructureError("C14N 1.1 of an element under an inherited xml:base is not supported")
                    if local not in ("lang", "space"):
                        continue
                attrs.setdefault((XML_NS, local), (f"xml:{local}", value))


# -- the formats' side: FormatError instead of StructureError ---------------------------------------

def canonicalize(element: etree._Element, algorithm: str, inclusive_prefixes: list[str] | None = None,
                 budget: Budget | None = None) -> bytes:
    """Octets of ``element`` (and its subtree, comments kept when ``algorithm`` keeps them) in
    its document context under ``algorithm``; FormatError when that cannot be done."""
    if not is_c14n(algorithm):
        raise FormatError("unsupported_algorithm", f"canonicalization {algorithm!r} is not supported")
    if budget is None:
        budget = work_budget(0)
    try:
        return element_octets(element, algorithm, budget, inclusive_prefixes)
    except StructureError as exc:
        raise FormatError("unsupported_xml", f"the element cannot be canonicalized: {exc}") from None
    except BudgetExceeded as exc:
        raise FormatError("document_too_complex", f"the document needs too much processing ({exc})") from None


def canonicalization_of(parent: etree._Element, default: str = c.C14N_10) -> str:
    """Algorithm of the ``ds:CanonicalizationMethod`` child of ``parent`` (XMLDSig default if absent)."""
    method = parent.find(c.q(c.DS, "CanonicalizationMethod"))
    if method is None:
        return default
    algorithm = method.get("Algorithm")
    if not is_c14n(algorithm):
        raise FormatError("unsupported_algorithm", f"canonicalization {algorithm!r} is not supported")
    return algorithm  # type: ignore[return-value]


def inclusive_namespaces(method: etree._Element | None) -> list[str] | None:
    """PrefixList of an ``ec:InclusiveNamespaces`` child of an exclusive c14n method, if any."""
    if method is None:
        return None
    for node in method:
        if isinstance(node.tag, str) and etree.QName(node).localname == "InclusiveNamespaces":
            return (node.get("PrefixList") or "").split()
    return None
