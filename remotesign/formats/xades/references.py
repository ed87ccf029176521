"""ds:Reference processing (XMLDSig §4.4.3) with the defences against signature wrapping.

A reference is only ever resolved to an element by a *unique* Id of the same document, to the
whole document (``URI=""`` / ``#xpointer(/)``) or to a detached object through the caller's
resolver; an Id carried by two elements is a format failure, never a choice. Transforms are
limited to the ones signatures need (enveloped-signature, the C14N family, base64, and the
fixed XPath forms that equal enveloped-signature or select an element by Id); XSLT and general
XPath are refused. What a reference covers is classified, so a ds:Manifest, KeyInfo or
SignedProperties reference never counts as signed data, and an element found by its Id must
also be where its kind belongs (``placement``): moved signed data is not found.

The one reference processor of the project: the signer computes the DigestValues of the
references it writes here, the extender the archive time-stamp input (EN 319 132-1 §5.5.2.2
step 1, through a :class:`Tee`, so a detached file is read once) and the validator its verdict."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from lxml import etree

from remotesign.formats.base import FormatError
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.algorithms import digest_name, new_hash
from remotesign.formats.xades.c14n import Budget, BudgetExceeded, NodeSet, inclusive_namespaces, is_c14n, work_budget
from remotesign.formats.xades.dom import (COUNTERSIGNED_TYPES, DS, MANIFEST_TYPE, SIGNATURE_PROPERTIES_TYPE,
                                          SignatureParts, StructureError, children, enclosing_signature, id_index,
                                          is_counter_signature, local_name, namespace, q, signature_parts, single)
from remotesign.formats.xades.placement import enveloped_problem, misplacement
from remotesign.formats.xades.uris import uri_to_name
from remotesign.formats.xades.xmlio import MAX_DOCUMENT_BYTES, parse_xml

#: Opens a detached data object (read, binary) each time it is called.
ContentOpener = Callable[[], BinaryIO]
#: A detached reference's content: given the reference URI exactly as written in the signature,
#: return an opener, or None when the content is not available (-> not found).
Resolver = Callable[[str], "ContentOpener | None"]

ENVELOPED = DS + "enveloped-signature"
BASE64 = DS + "base64"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
XPATH_FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"
MAX_REFERENCES = 1000
MAX_TRANSFORMS = 10
CHUNK = 1 << 20

_XPOINTER_ID = re.compile(r"""^#xpointer\(\s*id\(\s*(?:'([^']*)'|"([^"]*)")\s*\)\s*\)$""")
_NOT_SIGNATURE = re.compile(r"^not\(ancestor-or-self::(?:([A-Za-z_][\w.-]*):)?Signature\)$")
_NAME = r"[A-Za-z_][\w.-]*"
_FILTER_ID = re.compile(rf"""^id\(\s*(?:'([^']*)'|"([^"]*)")\s*\)((?:/{_NAME}:{_NAME})*)(/node\(\))?$""")
_FILTER_HERE = re.compile(rf"^here\(\)/ancestor::(?:({_NAME}):)?Signature\[1\]$")
_FILTER_ALL_SIGS = re.compile(rf"^(?:/descendant::|//)(?:({_NAME}):)?Signature$")


class NotFound(Exception):
    """The referenced data object is not available."""


@dataclass
class Octets:
    """Octet-stream reference data: in memory, or re-readable from a detached object."""

    data: bytes | None = None
    opener: ContentOpener | None = None

    def chunks(self) -> Iterator[bytes]:
        if self.data is not None:
            yield self.data
            return
        assert self.opener is not None
        try:
            stream = self.opener()
        except (OSError, LookupError, ValueError) as exc:
            raise NotFound(f"the data object cannot be read: {exc}") from None
        with stream:
            while True:
                try:
                    chunk = stream.read(CHUNK)
                except (OSError, ValueError) as exc:
                    raise NotFound(f"the data object cannot be read: {exc}") from None
                if not chunk:
                    return
                yield chunk

    def read_all(self, limit: int) -> bytes:
        out = bytearray()
        for chunk in self.chunks():
            out += chunk
            if len(out) > limit:
                raise StructureError(f"a transformed data object is larger than {limit} octets")
        return bytes(out)


@dataclass
class ReferenceOutput:
    """The result of processing a reference, replayable for time-stamp inputs: a node-set is
    canonicalized with whatever algorithm the consumer asks for (XMLDSig default: C14N 1.0)."""

    octets: Octets | None = None
    node_set: NodeSet | None = None

    def chunks(self, budget: Budget, algorithm: str | None = None,
               prefixes: list[str] | None = None) -> Iterator[bytes]:
        if self.node_set is not None:
            yield self.node_set.octets(algorithm or c.C14N_10, budget, prefixes)
        else:
            assert self.octets is not None
            yield from self.octets.chunks()


@dataclass
class ReferenceOutcome:
    """One ds:Reference of SignedInfo after processing."""

    element: etree._Element
    uri: str | None
    type: str | None
    id: str | None
    #: signed_properties | manifest | key_info | properties | countersigned | data
    kind: str
    name: str | None = None                    # decoded name of a detached data object
    target: etree._Element | None = None       # same-document target
    digest_algorithm: str | None = None
    found: bool = False
    intact: bool = False
    message: str | None = None
    output: ReferenceOutput | None = None
    computed: bytes | None = None              # the digest of the output (what DigestValue must hold)

    @property
    def detached(self) -> bool:
        return self.uri is not None and self.uri != "" and not self.uri.startswith("#")


@dataclass
class Tee:
    """A second consumer of every reference's output, fed while the reference is digested: the
    output's octets (a node-set canonicalized with ``algorithm`` / ``prefixes``, as the archive
    time-stamp input wants it) go to ``update``, so detached content is read only once."""

    update: Callable[[bytes], None]
    algorithm: str
    prefixes: list[str] | None = None


@dataclass
class ReferenceContext:
    """Everything reference processing needs besides the reference itself."""

    parts: SignatureParts
    tree: etree._ElementTree
    ids: dict[str, list[etree._Element]]
    resolve: Resolver
    budget: Budget
    max_xml_bytes: int
    tee: Tee | None = None


def by_id(ctx_ids: dict[str, list[etree._Element]], ident: str) -> etree._Element | None:
    """The element carrying Id ``ident``; StructureError when the Id is not unique."""
    found = ctx_ids.get(ident, [])
    if len(found) > 1:
        raise StructureError(f"Id {ident!r} is carried by {len(found)} elements (XML signature wrapping)")
    return found[0] if found else None


def detached_name(uri: str) -> str:
    """The decoded name of a detached object URI (the URI itself when it is not a plain path)."""
    try:
        name = uri_to_name(uri)
    except FormatError:
        return uri
    return name if name is not None else uri


def process_references(ctx: ReferenceContext) -> list[ReferenceOutcome]:
    """Every ds:Reference of SignedInfo, in order, each found/intact or with a reason."""
    refs = children(ctx.parts.signed_info, DS, "Reference")
    if len(refs) > MAX_REFERENCES:
        raise StructureError(f"SignedInfo has {len(refs)} references, more than {MAX_REFERENCES}")
    return [_process(ctx, ref) for ref in refs]


def manifest_entries(ctx: ReferenceContext, refs: list[ReferenceOutcome]) -> list[ReferenceOutcome]:
    """The references of each ds:Manifest that a found, intact reference of SignedInfo covers:
    the manifest's digests are signed, so what they digest is signed through it (EU DSS counts it
    as the signature's scope). Each is dereferenced and digested like a reference of SignedInfo,
    with kind ``manifest_entry``; a missing or altered entry is reported as such."""
    out: list[ReferenceOutcome] = []
    for ref in refs:
        target = ref.target
        if ref.kind != "manifest" or not (ref.found and ref.intact) or target is None or target.tag != q(DS, "Manifest"):
            continue
        entries = children(target, DS, "Reference")
        if len(entries) + len(out) > MAX_REFERENCES:
            raise StructureError(f"the manifests hold more than {MAX_REFERENCES} references")
        for entry in entries:
            outcome = _process(ctx, entry)
            if outcome.kind == "data":
                outcome.kind = "manifest_entry"
            out.append(outcome)
    return out


def _process(ctx: ReferenceContext, ref: etree._Element) -> ReferenceOutcome:
    uri = ref.get("URI")
    outcome = ReferenceOutcome(element=ref, uri=uri, type=ref.get("Type"), id=ref.get("Id"), kind="data")
    outcome.digest_algorithm = digest_name(single(ref, DS, "DigestMethod"))
    expected = _digest_value(ref)
    if uri is None:
        outcome.message = "a ds:Reference without URI does not identify its data object"
        return outcome
    try:
        data = _dereference(ctx, outcome)
        data = _apply_transforms(ctx, ref, data, outcome)
    except NotFound as exc:
        outcome.message = str(exc)
        return outcome
    outcome.kind = _classify(ctx.parts, outcome)
    problem = misplacement(ctx.parts, outcome)
    if problem is not None:
        outcome.message = problem
        return outcome
    output = ReferenceOutput(node_set=data) if isinstance(data, NodeSet) else ReferenceOutput(octets=data)
    hasher = new_hash(outcome.digest_algorithm)
    tee = ctx.tee
    try:
        if tee is not None and output.node_set is not None:
            for chunk in output.chunks(ctx.budget, tee.algorithm, tee.prefixes):
                tee.update(chunk)
        for chunk in output.chunks(ctx.budget):
            hasher.update(chunk)
            if tee is not None and output.octets is not None:
                tee.update(chunk)
    except NotFound as exc:
        outcome.message = str(exc)
        return outcome
    outcome.found = True
    outcome.output = output
    outcome.computed = hasher.digest()
    outcome.intact = hmac.compare_digest(outcome.computed, expected)
    if not outcome.intact:
        outcome.message = f"the digest of {_describe(outcome)} does not match its ds:Reference"
    return outcome


def _describe(outcome: ReferenceOutcome) -> str:
    if outcome.name is not None:
        return f"data object {outcome.name!r}"
    if outcome.uri == "":
        return "the document that contains the signature"
    return f"element {outcome.uri}"


def _digest_value(ref: etree._Element) -> bytes:
    value = single(ref, DS, "DigestValue", required=True)
    cleaned = "".join((value.text or "").split())
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise StructureError("ds:DigestValue is not valid base64") from None


def _dereference(ctx: ReferenceContext, outcome: ReferenceOutcome) -> NodeSet | Octets:
    uri = outcome.uri or ""
    if uri == "":
        return NodeSet(ctx.tree, None, comments=False)
    if uri == "#xpointer(/)":
        return NodeSet(ctx.tree, None, comments=True)
    if uri.startswith("#"):
        match = _XPOINTER_ID.match(uri)
        ident = (match.group(1) or match.group(2) or "") if match else uri[1:]
        if uri.startswith("#xpointer(") and not match:
            # Only #xpointer(/) and #xpointer(id('x')) have a defined meaning in XMLDSig; any other
            # form selects nothing this validator (or EU DSS's Santuario) can dereference.
            raise NotFound(f"the XPointer {uri!r} cannot be dereferenced")
        target = by_id(ctx.ids, ident)
        if target is None:
            raise NotFound(f"no element with Id {ident!r} in the document")
        outcome.target = target
        return NodeSet(ctx.tree, target, comments=match is not None)
    outcome.name = detached_name(uri)
    try:
        opener = ctx.resolve(uri)
    except Exception:  # noqa: BLE001 - a failing resolver only means the content is unavailable
        opener = None
    if opener is None:
        raise NotFound(f"the signed data object {outcome.name!r} was not provided")
    return Octets(opener=opener)


def _apply_transforms(ctx: ReferenceContext, ref: etree._Element, data: NodeSet | Octets,
                      outcome: ReferenceOutcome) -> NodeSet | Octets:
    transforms_el = single(ref, DS, "Transforms")
    transforms = children(transforms_el, DS, "Transform")
    if transforms_el is not None and len(transforms_el) and not transforms:
        raise StructureError("ds:Transforms holds no ds:Transform")
    if len(transforms) > MAX_TRANSFORMS:
        raise StructureError(f"{len(transforms)} transforms on one reference, more than {MAX_TRANSFORMS}")
    for transform in transforms:
        algorithm = transform.get("Algorithm", "")
        if algorithm == ENVELOPED:
            data = _enveloping(ctx, _node_set(ctx, data)).without([ctx.parts.sig])
        elif is_c14n(algorithm):
            data = Octets(data=_node_set(ctx, data).octets(algorithm, ctx.budget, inclusive_namespaces(transform)))
        elif algorithm == BASE64:
            data = Octets(data=_base64(ctx, data))
        elif algorithm == XPATH:
            data = _xpath(ctx, _node_set(ctx, data), transform)
        elif algorithm == XPATH_FILTER2:
            data = _xpath_filter2(ctx, _node_set(ctx, data), transform)
            if data.apex is not None and not data.children_only:
                outcome.target = data.apex  # what the reference covers after the selection
        else:
            raise StructureError(f"transform {algorithm!r} is not allowed")
    return data


def _node_set(ctx: ReferenceContext, data: NodeSet | Octets) -> NodeSet:
    """Octets parsed into a node-set (XMLDSig §4.4.3.2), with the hardened parser."""
    if isinstance(data, NodeSet):
        return data
    raw = data.read_all(ctx.max_xml_bytes)
    try:
        tree = parse_xml(raw, ctx.max_xml_bytes)
    except FormatError as exc:
        raise StructureError(f"transformed data object is not acceptable XML: {exc.message}") from None
    return NodeSet(tree, None, comments=True)


def _enveloping(ctx: ReferenceContext, node_set: NodeSet) -> NodeSet:
    """``node_set`` if it holds this signature, as a transform that removes the signature from
    the signed data expects; NotFound when the signed element was moved away from it."""
    if node_set.tree is ctx.tree:
        problem = enveloped_problem(node_set.apex, ctx.parts.sig)
        if problem is not None:
            raise NotFound(problem)
    return node_set


def _base64(ctx: ReferenceContext, data: NodeSet | Octets) -> bytes:
    if isinstance(data, NodeSet):
        text = data.text_value()
    else:
        text = data.read_all(ctx.max_xml_bytes).decode("ascii", "replace")
    cleaned = "".join(text.split())
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise StructureError("the base64 transform input is not valid base64") from None


def _signatures_in(node_set: NodeSet) -> list[etree._Element]:
    root = node_set.apex if node_set.apex is not None else node_set.tree.getroot()
    return [el for el in root.iter(q(DS, "Signature"))]


def _prefix_is_ds(el: etree._Element, prefix: str | None) -> bool:
    return (el.nsmap.get(prefix) if prefix else el.nsmap.get(None)) == DS


def _xpath(ctx: ReferenceContext, node_set: NodeSet, transform: etree._Element) -> NodeSet:
    """XPath 1.0 transform: only ``not(ancestor-or-self::ds:Signature)`` (all signatures out)."""
    expr = single(transform, DS, "XPath", required=True)
    text = "".join((expr.text or "").split())
    match = _NOT_SIGNATURE.match(text)
    if not match or not _prefix_is_ds(expr, match.group(1)):
        raise StructureError(f"XPath transform {text!r} is not allowed")
    return _enveloping(ctx, node_set).without(_signatures_in(node_set))


def _xpath_filter2(ctx: ReferenceContext, node_set: NodeSet, transform: etree._Element) -> NodeSet:
    """XPath Filter 2.0 restricted to: intersect ``id('x')[/p:child...][/node()]``; subtract the
    enclosing signature (``here()/ancestor::ds:Signature[1]``) or all signatures."""
    filters = children(transform, XPATH_FILTER2, "XPath")
    if not filters:
        raise StructureError("XPath Filter 2.0 transform without XPath")
    for flt in filters:
        mode = flt.get("Filter")
        text = "".join((flt.text or "").split())
        if mode == "intersect" and (match := _FILTER_ID.match(text)):
            node_set = _intersect_id(ctx, node_set, flt, match)
        elif mode == "subtract" and (match := _FILTER_HERE.match(text)) and _prefix_is_ds(flt, match.group(1)):
            node_set = _enveloping(ctx, node_set).without([ctx.parts.sig])
        elif mode == "subtract" and (match := _FILTER_ALL_SIGS.match(text)) and _prefix_is_ds(flt, match.group(1)):
            node_set = node_set.without(_signatures_in(node_set))
        else:
            raise StructureError(f"XPath Filter 2.0 {mode} {text!r} is not allowed")
    return node_set


def _intersect_id(ctx: ReferenceContext, node_set: NodeSet, flt: etree._Element, match: re.Match) -> NodeSet:
    ident = match.group(1) if match.group(1) is not None else match.group(2)
    target = by_id(ctx.ids, ident)
    if target is None:
        raise NotFound(f"no element with Id {ident!r} in the document")
    for step in [s for s in (match.group(3) or "").split("/") if s]:
        prefix, local = step.split(":", 1)
        ns = flt.nsmap.get(prefix)
        if ns is None:
            raise StructureError(f"undeclared prefix {prefix!r} in XPath Filter 2.0")
        found = [ch for ch in target if isinstance(ch.tag, str) and ch.tag == q(ns, local)]
        if len(found) != 1:
            raise NotFound(f"XPath Filter 2.0 step {step!r} selects {len(found)} elements")
        target = found[0]
    children_only = bool(match.group(4))
    if not (node_set.contains(target) or (children_only and node_set.holds_content(target))):
        raise NotFound("XPath Filter 2.0 selects nothing of the referenced node-set")
    return NodeSet(node_set.tree, target, comments=node_set.comments, children_only=children_only,
                   excluded=tuple(x for x in node_set.excluded if any(a is target for a in x.iterancestors())))


def _classify(parts: SignatureParts, outcome: ReferenceOutcome) -> str:
    """What a reference covers; only 'data' and 'countersigned' references are signed data.
    Whether the element is where that kind belongs is ``xades_placement``'s question."""
    target = outcome.target
    ref_type = outcome.type
    if target is not None and parts.signed_properties is not None and target is parts.signed_properties:
        return "signed_properties"
    if ref_type == MANIFEST_TYPE or (target is not None and target.tag == q(DS, "Manifest")):
        return "manifest"
    if target is not None and parts.key_info is not None and target is parts.key_info:
        return "key_info"
    if ref_type == SIGNATURE_PROPERTIES_TYPE or (target is not None and target.tag == q(DS, "SignatureProperties")):
        return "properties"
    if ref_type in COUNTERSIGNED_TYPES or (target is not None and _parent_value(parts, target)):
        return "countersigned"
    if target is not None and namespace(target) == DS and local_name(target) in ("SignedInfo", "KeyInfo"):
        return "key_info" if local_name(target) == "KeyInfo" else "properties"
    return "data"


def _parent_value(parts: SignatureParts, target: etree._Element) -> bool:
    """Whether ``target`` is the SignatureValue of the signature this one counter-signs (DSS takes
    an untyped reference to it as the counter-signed one too)."""
    if target.tag != q(DS, "SignatureValue") or not is_counter_signature(parts.sig):
        return False
    return target.getparent() is enclosing_signature(parts.sig)


# -- the formats' entry point ---------------------------------------------------------------------

def signature_references(sig: etree._Element, resolve: Resolver, *, tee: Tee | None = None,
                         budget: Budget | None = None, max_xml_bytes: int | None = None,
                         ids: dict[str, list[etree._Element]] | None = None) -> list[ReferenceOutcome]:
    """Every ds:Reference of ``sig`` processed (the signer's and extenders' call): FormatError
    ``invalid_xades`` for a structure the processor refuses, ``document_too_complex`` when the
    canonicalization budget runs out. Outcomes still say which references were not found or do
    not match; :func:`require_intact` turns that into an error."""
    tree = sig.getroottree()
    try:
        ctx = ReferenceContext(parts=signature_parts(sig), tree=tree, ids=ids if ids is not None else id_index(tree),
                               resolve=resolve, budget=budget or work_budget(MAX_DOCUMENT_BYTES),
                               max_xml_bytes=max_xml_bytes or MAX_DOCUMENT_BYTES, tee=tee)
        return process_references(ctx)
    except StructureError as exc:
        raise FormatError("invalid_xades", f"the signature's references cannot be processed: {exc}") from None
    except BudgetExceeded as exc:
        raise FormatError("document_too_complex", f"the document needs too much processing ({exc})") from None


def require_intact(outcomes: list[ReferenceOutcome]) -> None:
    """FormatError unless every reference was found and matches its digest: ``missing_data_object``
    for detached content that was not supplied, ``digest_mismatch`` for changed data, and
    ``invalid_xades`` for a same-document reference that finds nothing or finds it moved
    (signature wrapping)."""
    for outcome in outcomes:
        if not outcome.found:
            code = "missing_data_object" if outcome.detached else "invalid_xades"
            raise FormatError(code, f"reference {outcome.uri!r}: {outcome.message or 'not found'}")
        if not outcome.intact:
            raise FormatError("digest_mismatch", f"reference {outcome.uri!r} does not match its digest")
