"""Where things are in a ds:Signature, for every XAdES version met in the wild (TS 101 903
1.1.1 / 1.2.2 / 1.3.2 and EN 319 132-1 with its 1.4.1 additions). The one structural reader of
signing, extension and validation: the writers create only 1.3.2 / 1.4.1 elements, but they
extend, and the validator judges, what others wrote, so the lookups here take any of the
namespaces and refuse ambiguous structures instead of picking one (a second QualifyingProperties
or SignedInfo is how wrapping attacks start)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from remotesign.formats.xades.constants import DS, XADES111, XADES122, XADES141, XML_NS, q  # noqa: F401 - re-exported
from remotesign.formats.xades.constants import XADES as XADES132

#: Namespaces a xades:QualifyingProperties may be written in (newest first).
XADES_VERSIONS = (XADES132, XADES122, XADES111)
ALL_XADES = (*XADES_VERSIONS, XADES141)

SIGNED_PROPERTIES_TYPES = frozenset({
    "http://uri.etsi.org/01903#SignedProperties",
    "http://uri.etsi.org/01903/v1.1.1#SignedProperties",
    "http://uri.etsi.org/01903/v1.2.2#SignedProperties",
})
COUNTERSIGNED_TYPES = frozenset({
    "http://uri.etsi.org/01903#CountersignedSignature",
    "http://uri.etsi.org/01903/v1.1.1#CountersignedSignature",
    "http://uri.etsi.org/01903/v1.2.2#CountersignedSignature",
})
MANIFEST_TYPE = DS + "Manifest"
SIGNATURE_PROPERTIES_TYPE = DS + "SignatureProperties"
#: An attribute acts as an XML ID for same-document references when its local name is "id" in
#: any letter case and any namespace: XAdES writes Id, others ID, id, xml:id or wsu:Id, and EU DSS
#: (Santuario) registers every such attribute. A validator that knew fewer names would resolve a
#: reference to one element while another engine picks a forged twin it never saw.
ID_LOCAL_NAME = "id"


class StructureError(Exception):
    """The signature's XML structure is not one a validator may interpret (FORMAT_FAILURE)."""


def is_element(node: object) -> bool:
    return isinstance(node, etree._Element) and isinstance(node.tag, str)


def local_name(el: etree._Element) -> str:
    return etree.QName(el).localname


def namespace(el: etree._Element) -> str | None:
    return etree.QName(el).namespace


def children(parent: etree._Element | None, ns: str | tuple[str, ...], *names: str) -> list[etree._Element]:
    """Element children of ``parent`` named ``names`` (any, if none given) in namespace(s) ``ns``."""
    if parent is None:
        return []
    spaces = (ns,) if isinstance(ns, str) else ns
    return [c for c in parent if is_element(c) and namespace(c) in spaces and (not names or local_name(c) in names)]


def single(parent: etree._Element | None, ns: str | tuple[str, ...], name: str, *,
           required: bool = False) -> etree._Element | None:
    found = children(parent, ns, name)
    if len(found) > 1:
        raise StructureError(f"{name} appears {len(found)} times")
    if not found:
        if required:
            where = local_name(parent) if parent is not None else "the signature"
            raise StructureError(f"{where} has no {name}")
        return None
    return found[0]


def text_of(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    text = "".join(el.itertext()).strip()
    return text or None


@dataclass
class SignatureParts:
    """The parts of one ds:Signature, located once and structurally checked."""

    sig: etree._Element
    signed_info: etree._Element
    signature_value: etree._Element
    key_info: etree._Element | None
    qualifying_properties: etree._Element | None
    xades: str | None                                # namespace of QualifyingProperties
    signed_properties: etree._Element | None
    signed_signature_properties: etree._Element | None
    signed_data_object_properties: etree._Element | None
    unsigned_signature_properties: etree._Element | None
    warnings: list[str] = field(default_factory=list)

    @property
    def id(self) -> str | None:
        return self.sig.get("Id")

    def ns(self) -> tuple[str, ...]:
        """Namespaces qualifying properties of this signature may use."""
        return (self.xades, XADES141) if self.xades else ALL_XADES

    def signed(self, name: str) -> list[etree._Element]:
        """Signed signature properties called ``name``."""
        return children(self.signed_signature_properties, self.ns(), name)

    def data_object_properties(self, name: str) -> list[etree._Element]:
        return children(self.signed_data_object_properties, self.ns(), name)

    def unsigned(self) -> list[etree._Element]:
        """Unsigned signature properties in document order (element children only)."""
        usp = self.unsigned_signature_properties
        return [] if usp is None else [c for c in usp if is_element(c)]

    def unsigned_named(self, *names: str) -> list[etree._Element]:
        return [p for p in self.unsigned() if namespace(p) in ALL_XADES and local_name(p) in names]


def _qualifying_properties(sig: etree._Element, warnings: list[str]) -> etree._Element | None:
    found = [qp for obj in children(sig, DS, "Object") for qp in children(obj, XADES_VERSIONS, "QualifyingProperties")]
    if len(found) > 1:
        raise StructureError("the signature holds more than one xades:QualifyingProperties")
    if not found:
        return None
    qp = found[0]
    target = qp.get("Target")
    sig_id = sig.get("Id")
    if target is not None and sig_id is not None and target != f"#{sig_id}":
        # Structurally it still belongs to this signature (a child of its own ds:Object); some
        # producers get the Target wrong (e.g. in letter case), EU DSS accepts them too.
        warnings.append(f"QualifyingProperties Target {target!r} does not point at this signature (#{sig_id})")
    return qp


def signature_parts(sig: etree._Element) -> SignatureParts:
    """Locate the parts of ``sig``; StructureError when XMLDSig/XAdES structure is broken."""
    signed_info = single(sig, DS, "SignedInfo", required=True)
    signature_value = single(sig, DS, "SignatureValue", required=True)
    key_info = single(sig, DS, "KeyInfo")
    warnings: list[str] = []
    qp = _qualifying_properties(sig, warnings)
    xades = namespace(qp) if qp is not None else None
    sp = ssp = sdop = usp = None
    if qp is not None:
        sp = single(qp, xades, "SignedProperties")
        ssp = single(sp, xades, "SignedSignatureProperties")
        sdop = single(sp, xades, "SignedDataObjectProperties")
        up = single(qp, xades, "UnsignedProperties")
        usp = single(up, xades, "UnsignedSignatureProperties")
    return SignatureParts(sig=sig, signed_info=signed_info, signature_value=signature_value, key_info=key_info,
                          qualifying_properties=qp, xades=xades, signed_properties=sp,
                          signed_signature_properties=ssp, signed_data_object_properties=sdop,
                          unsigned_signature_properties=usp, warnings=warnings)


def is_id_attribute(name: str) -> bool:
    """Whether the attribute called ``name`` (Clark notation) is ID-like (see ID_LOCAL_NAME)."""
    return name.rpartition("}")[2].lower() == ID_LOCAL_NAME


def id_index(tree: etree._ElementTree) -> dict[str, list[etree._Element]]:
    """Every ID-like attribute value in the document with the elements carrying it."""
    index: dict[str, list[etree._Element]] = {}
    for el in tree.iter():
        if not is_element(el):
            continue
        for name, value in el.attrib.items():
            if is_id_attribute(name):
                holders = index.setdefault(value, [])
                if not any(h is el for h in holders):
                    holders.append(el)
    return index


def is_counter_signature(sig: etree._Element) -> bool:
    parent = sig.getparent()
    return parent is not None and namespace(parent) in XADES_VERSIONS and local_name(parent) == "CounterSignature"


def enclosing_signature(el: etree._Element) -> etree._Element | None:
    """The nearest ds:Signature ancestor of ``el`` (not ``el`` itself)."""
    for ancestor in el.iterancestors():
        if ancestor.tag == q(DS, "Signature"):
            return ancestor
    return None
