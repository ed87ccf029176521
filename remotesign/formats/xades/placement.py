"""Where XMLDSig and XAdES put what a ds:Reference covers: the positional half of the defence
against XML signature wrapping (the other half, Ids carried by one element only, is
``references.by_id``).

A wrapping attack leaves the signed element intact but moves it to where a consumer no longer
looks and puts a forged element in its place. The digest still matches -- xmlsec1 or any XMLDSig
core validation says OK -- so only the position gives it away. The rules follow EU DSS
(``XAdESSignature.getReferenceValidations``): a SignedProperties reference must find this
signature's own xades:SignedProperties, an xmldsig#Object reference one of its own ds:Object
children, a Manifest reference a ds:Manifest in one of its own ds:Object (otherwise
INDETERMINATE/SIGNED_DATA_NOT_FOUND), and a counter-signature must cover its parent's
SignatureValue (otherwise TOTAL_FAILED/HASH_FAILURE).

Stricter than DSS, which passes these with a PARTIAL signature scope that remotesign's reports do
not carry: the enveloped-signature transform (and the XPath forms equal to it) over an element
that does not contain the signature -- the element was moved away from it -- and signed data
inside another ds:Signature, or inside a part of this one that holds no data objects
(SignedInfo, SignatureValue, KeyInfo, QualifyingProperties)."""

from __future__ import annotations

from typing import Protocol

from lxml import etree

from remotesign.formats.xades.dom import (
    ALL_XADES,
    DS,
    MANIFEST_TYPE,
    SIGNATURE_PROPERTIES_TYPE,
    SIGNED_PROPERTIES_TYPES,
    SignatureParts,
    enclosing_signature,
    is_counter_signature,
    is_id_attribute,
    local_name,
    namespace,
    q,
)

OBJECT_TYPE = DS + "Object"
_OBJECT = q(DS, "Object")
_SIGNATURE_VALUE = q(DS, "SignatureValue")


class Placed(Protocol):
    """What placement needs to know of a processed reference."""

    target: etree._Element | None
    type: str | None
    kind: str
    uri: str | None
    found: bool


def contains(outer: etree._Element, inner: etree._Element) -> bool:
    """Whether ``inner`` is ``outer`` or one of its descendants."""
    return inner is outer or any(a is outer for a in inner.iterancestors())


def enveloped_problem(apex: etree._Element | None, sig: etree._Element) -> str | None:
    """Why an enveloped-signature transform (or an XPath form of it) over the data rooted at
    ``apex`` (None: the whole document) cannot be trusted: the transform says the signature
    is inside the signed data, so data that no longer contains it was moved away from it."""
    if apex is None or contains(apex, sig):
        return None
    if apex.tag == _SIGNATURE_VALUE:
        # A counter-signed SignatureValue never holds a signature; real producers still put the
        # transform on counter-signature references (EU DSS's TEST_S1a_C1a_InTL_VALID.xml).
        return None
    return ("the reference removes the signature from data that does not contain it: the signed "
            "element was moved away from its enveloped signature (XML signature wrapping)")


def misplacement(parts: SignatureParts, ref: Placed) -> str | None:
    """Why the same-document element ``ref`` covers is not where its kind belongs, or None."""
    target, sig = ref.target, parts.sig
    if ref.type in SIGNED_PROPERTIES_TYPES or (target is not None and _is_signed_properties(target)):
        if target is not None and target is parts.signed_properties:
            return None
        return "the SignedProperties reference does not find this signature's own xades:SignedProperties"
    if target is None:  # the whole document, or a detached object
        return None
    if ref.kind == "countersigned" and (is_counter_signature(sig) or target.tag == _SIGNATURE_VALUE):
        # Inside a xades:CounterSignature the parent's value is judged by countersignature_problem
        # (HASH_FAILURE, as DSS); a countersignature outside one (XAdES lets the reference Type
        # mark it) may name any SignatureValue. Typed at anything else, it is an ordinary
        # reference, as in DSS (its XAdESWithCounterSignatureTypeTest).
        return None
    if ref.kind == "key_info":
        return None if target is parts.key_info else "the signed ds:KeyInfo is not this signature's KeyInfo"
    if contains(target, sig):
        return None  # enveloped: the signed element holds the signature
    if ref.type == OBJECT_TYPE or target.tag == _OBJECT:
        if target.tag == _OBJECT and target.getparent() is sig:
            return None
        return "the signed ds:Object is not a ds:Object of this signature"
    if ref.type == MANIFEST_TYPE or target.tag == q(DS, "Manifest"):
        if target.tag == q(DS, "Manifest") and _own_object_child(sig, target):
            return None
        return "the signed ds:Manifest is not a child of a ds:Object of this signature"
    if ref.type == SIGNATURE_PROPERTIES_TYPE or ref.kind == "properties":
        properties = target.getparent() if target.tag == q(DS, "SignatureProperty") else target
        if properties is not None and properties.tag == q(DS, "SignatureProperties") and _own_object_child(sig, properties):
            return None
        return "the signed ds:SignatureProperties is not a child of a ds:Object of this signature"
    return _data_place(parts, target)


def _own_object_child(sig: etree._Element, el: etree._Element) -> bool:
    """Whether ``el`` is a child of one of ``sig``'s own ds:Object elements (where XMLDSig puts a
    Manifest or SignatureProperties, and EU DSS looks for them)."""
    parent = el.getparent()
    return parent is not None and parent.tag == _OBJECT and parent.getparent() is sig


def _data_place(parts: SignatureParts, target: etree._Element) -> str | None:
    """Signed data is outside every signature (detached in the same document) or enveloped in
    one of this signature's ds:Object elements, never among its XAdES properties."""
    holder = enclosing_signature(target)
    if holder is None:
        return None
    if holder is not parts.sig:
        return "the signed data is inside another ds:Signature (XML signature wrapping)"
    if not _in_own_object(parts.sig, target):
        return "the signed data is inside this signature's own structure, where no data object belongs"
    qp = parts.qualifying_properties
    if qp is not None and contains(qp, target):
        return "the signed data is inside this signature's xades:QualifyingProperties, where no data object belongs"
    return None


def _in_own_object(sig: etree._Element, target: etree._Element) -> bool:
    """Whether ``target`` is inside one of ``sig``'s own ds:Object children (not in a nested
    signature of it)."""
    for ancestor in target.iterancestors():
        if ancestor.tag == _OBJECT and ancestor.getparent() is sig:
            return True
        if ancestor.tag == q(DS, "Signature"):
            return False
    return False


def _is_signed_properties(el: etree._Element) -> bool:
    return namespace(el) in ALL_XADES and local_name(el) == "SignedProperties"


def countersignature_problem(parts: SignatureParts, refs: list[Placed]) -> str | None:
    """A counter-signature covers the SignatureValue of the signature whose xades:CounterSignature
    property holds it: its counter-signed references must yield that value, and one must. Like
    EU DSS, the values are compared (a copy of the same value would do) and a mismatch is a
    HASH_FAILURE -- also for a counter-signature moved under another signature, whose reference
    still resolves (by Id) to the value it was made for."""
    if not is_counter_signature(parts.sig):
        return None
    parent = enclosing_signature(parts.sig)
    value = next((c for c in parent if c.tag == _SIGNATURE_VALUE), None) if parent is not None else None
    expected = _value_text(value)
    covered = False
    for ref in refs:
        if ref.kind != "countersigned" or ref.target is None:
            continue
        if not expected or _value_text(ref.target) != expected:
            return "the counter-signed SignatureValue is not the one of the signature this counter-signature belongs to"
        covered = True
    if not covered:
        return "the counter-signature does not cover the SignatureValue of the signature it belongs to"
    return None


def _value_text(el: etree._Element | None) -> str:
    if el is None or el.tag != _SIGNATURE_VALUE:
        return ""
    return "".join((el.text or "").split())


def partial_scope(parts: SignatureParts, refs: list[Placed]) -> list[str]:
    """The Ids of signed elements that are not the document, not around the signature and not
    one of its ds:Object elements (DSS's PARTIAL scope). Nothing tells such an element from one
    moved there from elsewhere, so the report names what the signature covers."""
    found = []
    for ref in refs:
        target = ref.target
        if ref.kind != "data" or not ref.found or target is None or target.getparent() is None:
            continue
        if contains(target, parts.sig) or (target.tag == _OBJECT and target.getparent() is parts.sig):
            continue
        ident = next((v for k, v in target.attrib.items() if is_id_attribute(k)), None)
        found.append(ident or ref.uri or "")
    return found
