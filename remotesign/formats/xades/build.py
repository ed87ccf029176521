"""The ds:Signature skeleton every XAdES signature of this package starts from (ASiC-E detached
signatures and standalone XML signatures alike): SignedInfo with the data references and the
SignedProperties reference, an empty SignatureValue, KeyInfo with the signer's certificates,
optional ds:Objects holding enveloped content, and the ds:Object with QualifyingProperties.

Digests of same-document parts are left empty here: they are computed on the document as it will
be stored (serialized and parsed back) by the one reference processor, so inherited namespaces
are exactly those a verifier will see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from remotesign.formats.base import DIGEST_SIZES, FormatError, SignerSpec
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.certs import is_self_signed, key_facts, load_certificate
from remotesign.formats.xades.signed_properties import PolicyId, build_qualifying_properties
from remotesign.formats.xades.xmlio import b64

OBJECT_TYPE = c.DS + "Object"
XPATH_FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"


@dataclass(frozen=True)
class RefSpec:
    """One data reference of SignedInfo. ``digest`` None leaves DigestValue empty for the
    reference processor to fill; ``mime_type`` (and ``encoding``) make its DataObjectFormat."""

    id: str
    uri: str
    digest_algorithm: str
    mime_type: str
    digest: bytes | None = None
    transforms: tuple[str, ...] = ()
    type: str | None = None
    encoding: str | None = None
    #: XPath Filter 2.0 steps (filter, expression) applied first, e.g. ("intersect", "id('data')")
    xpath_filters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ContentObject:
    """A ds:Object of an enveloping signature: XML content (an element, moved in) or the base64
    text of non-XML content."""

    id: str
    mime_type: str
    element: etree._Element | None = None
    base64_text: str | None = None
    encoding: str | None = None


@dataclass(frozen=True)
class PropertyOptions:
    """Signed properties besides the signing certificate and the data object formats."""

    signing_time: datetime
    claimed_role: str | None = None
    claimed_roles: tuple[str, ...] = ()
    production_place: dict[str, str] | None = None
    policy: PolicyId | None = None


def check_signer(signer: SignerSpec) -> None:
    if signer.digest_algorithm not in DIGEST_SIZES:
        raise FormatError("unsupported_algorithm", f"digest algorithm {signer.digest_algorithm!r} is not supported")
    if (signer.mechanism, signer.digest_algorithm) not in c.SIGNATURE_URIS:
        raise FormatError("unsupported_algorithm", f"signature mechanism {signer.mechanism!r} is not supported")
    facts = key_facts(signer.certificate)
    if facts.mechanism != signer.mechanism:
        raise FormatError("invalid_argument",
                          f"mechanism {signer.mechanism!r} does not match the certificate's {facts.mechanism} key")
    for der in signer.chain:
        load_certificate(der)


def _sub(parent: etree._Element, local: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, c.q(c.DS, local), attrs)
    if text is not None:
        el.text = text
    return el


def _transforms(parent: etree._Element, algorithms: Sequence[str],
                xpath_filters: Sequence[tuple[str, str]] = ()) -> None:
    if algorithms or xpath_filters:
        transforms = _sub(parent, "Transforms")
        if xpath_filters:
            holder = _sub(transforms, "Transform", Algorithm=XPATH_FILTER2)
            for mode, expression in xpath_filters:
                etree.SubElement(holder, f"{{{XPATH_FILTER2}}}XPath", {"Filter": mode},
                                 nsmap={"dsig-xpath": XPATH_FILTER2}).text = expression
        for algorithm in algorithms:
            _sub(transforms, "Transform", Algorithm=algorithm)


@dataclass(frozen=True)
class TimeProperty:
    """A signed ds:Object ``Id="SigningTime"`` with ds:SignatureProperties/ds:SignatureProperty
    (``Target`` the signature) holding ``<SigningTime>text</SigningTime>``: where the Vietnamese
    TAX-211120 forms (e-invoices, tax declarations) read the signing time."""

    object_id: str
    property_id: str
    text: str


def signature_element(sid: str, signer: SignerSpec, refs: Sequence[RefSpec], properties: PropertyOptions, *,
                      signed_info_c14n: str = c.SIGNED_INFO_C14N,
                      signed_properties_c14n: str = c.SIGNED_INFO_C14N,
                      objects: Sequence[ContentObject] = (), parent: etree._Element | None = None,
                      qualifying: bool = True, default_namespace: bool = False,
                      time_property: TimeProperty | None = None) -> etree._Element:
    """A new ds:Signature (appended to ``parent`` when given) with an empty SignatureValue and
    an empty SignedProperties digest. ``qualifying`` False: plain XMLDSig, no XAdES properties."""
    nsmap: dict[str | None, str] = {None: c.DS} if default_namespace else {"ds": c.DS}
    if parent is None:
        sig = etree.Element(c.q(c.DS, "Signature"), {"Id": sid}, nsmap=nsmap)
    else:
        sig = etree.SubElement(parent, c.q(c.DS, "Signature"), {"Id": sid}, nsmap=nsmap)
    signed_info = _sub(sig, "SignedInfo")
    _sub(signed_info, "CanonicalizationMethod", Algorithm=signed_info_c14n)
    _sub(signed_info, "SignatureMethod", Algorithm=c.SIGNATURE_URIS[(signer.mechanism, signer.digest_algorithm)])

    for spec in refs:
        attrs = {"Id": spec.id}
        if spec.type is not None:
            attrs["Type"] = spec.type
        attrs["URI"] = spec.uri
        ref = _sub(signed_info, "Reference", **attrs)
        _transforms(ref, spec.transforms, spec.xpath_filters)
        _sub(ref, "DigestMethod", Algorithm=c.DIGEST_URIS[spec.digest_algorithm])
        _sub(ref, "DigestValue", b64(spec.digest) if spec.digest is not None else "")

    if time_property is not None:
        tp_ref = _sub(signed_info, "Reference", Id=f"{sid}-ref-signingtime",
                      Type="http://www.w3.org/2000/09/xmldsig#SignatureProperties", URI=f"#{time_property.property_id}")
        _transforms(tp_ref, [signed_properties_c14n])
        _sub(tp_ref, "DigestMethod", Algorithm=c.DIGEST_URIS[signer.digest_algorithm])
        _sub(tp_ref, "DigestValue", "")
    sp_id = f"{sid}-signedprops"
    if qualifying:
        sp_ref = _sub(signed_info, "Reference", Id=f"{sid}-ref-signedprops", Type=c.SIGNED_PROPERTIES_TYPE,
                      URI=f"#{sp_id}")
        _transforms(sp_ref, [signed_properties_c14n])
        _sub(sp_ref, "DigestMethod", Algorithm=c.DIGEST_URIS[signer.digest_algorithm])
        _sub(sp_ref, "DigestValue", "")  # filled once the document is final

    _sub(sig, "SignatureValue", "", Id=f"{sid}-sigvalue")
    key_info = _sub(sig, "KeyInfo", Id=f"{sid}-keyinfo")
    x509_data = _sub(key_info, "X509Data")
    _sub(x509_data, "X509Certificate", b64(signer.certificate))
    for der in signer.chain:
        if not is_self_signed(der):  # trust anchors come from the verifier, not from the signature
            _sub(x509_data, "X509Certificate", b64(der))

    for content in objects:
        attrs = {"Id": content.id, "MimeType": content.mime_type}
        if content.encoding:
            attrs["Encoding"] = content.encoding
        obj = _sub(sig, "Object", **attrs)
        if content.element is not None:
            obj.append(content.element)
        else:
            obj.text = content.base64_text

    if time_property is not None:
        props = _sub(_sub(sig, "Object", Id=time_property.object_id), "SignatureProperties")
        prop = _sub(props, "SignatureProperty", Id=time_property.property_id, Target=f"#{sid}")
        # in the signature's namespace, as the forms' own producers write it (readers match local names)
        _sub(prop, "SigningTime", time_property.text)
    if not qualifying:
        return sig
    obj_el = _sub(sig, "Object")
    build_qualifying_properties(parent=obj_el, signature_id=sid, signed_properties_id=sp_id,
                                signing_time=properties.signing_time, certificate=signer.certificate,
                                data_objects=[(r.id, r.mime_type, r.encoding) for r in refs],
                                claimed_role=properties.claimed_role, production_place=properties.production_place,
                                claimed_roles=properties.claimed_roles, policy=properties.policy)
    return sig
