"""Step 1 of signing standalone XML signatures (XAdES baseline B in the three XMLDSig
packagings), around the shared skeleton of ``build``:

- enveloped: the signature goes into the signed XML document. By default it signs the whole
  document (``URI=""`` with the enveloped-signature transform and a C14N transform) and is
  appended to the root element. ``reference_uri`` signs the element with that Id instead
  (``URI="#id"``) and puts the signature into it; ``xpath`` selects the element the signature
  goes into (and, when that element carries an Id and no ``reference_uri`` is given, signs it);
- enveloping: the content goes into ds:Object elements of the signature, referenced by Id: XML
  content as XML (C14N transform), anything else as base64 text (base64 transform);
- detached: the documents are referenced by name, as in ASiC-E, in a standalone
  ``ds:Signature`` document.

Every DigestValue is computed by the one reference processor on the document as it will be
stored (serialized and parsed back), so what is signed is exactly what a verifier recomputes;
then SignedInfo is canonicalized and hashed for the key holder."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lxml import etree

from remotesign.formats.base import FormatError, SignerSpec
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.build import (OBJECT_TYPE, ContentObject, PropertyOptions, RefSpec, TimeProperty,
                                           check_signer, signature_element)
from remotesign.formats.xades.c14n import canonicalize, inclusive_namespaces, is_c14n
from remotesign.formats.xades.document import check_still_intact, intact_references, signature_by_id
from remotesign.formats.xades.dom import enclosing_signature, id_index, is_id_attribute
from remotesign.formats.xades.placement import contains
from remotesign.formats.xades.references import BASE64, ENVELOPED, Resolver, signature_references
from remotesign.formats.xades.uris import name_to_uri
from remotesign.formats.xades.xmlio import MAX_DOCUMENT_BYTES, b64, check_id, child, parse_xml, serialize

#: libxml2 refuses a text node longer than this without ``huge_tree`` (which stays off), so
#: enveloped base64 content must fit, or nobody could read the signature back.
MAX_BASE64_TEXT = 10_000_000
XML_MIME_SUFFIXES = ("/xml", "+xml")


@dataclass(frozen=True)
class XmlChoices:
    """The caller's XML options (``interface.XmlOptions``), checked."""

    signed_info_c14n: str = c.SIGNED_INFO_C14N
    signed_properties_c14n: str = c.SIGNED_INFO_C14N
    transforms: tuple[str, ...] = ()
    xpath: str | None = None
    reference_uri: str | None = None
    plain: bool = False
    default_namespace: bool = False
    signature_id: str | None = None
    signing_time_format: str | None = None
    signing_time_zone: str = "UTC"
    more_reference_uris: tuple[str, ...] = ()
    xpath_filter_id: str | None = None

    @classmethod
    def of(cls, signed_info_c14n: str | None, signed_properties_c14n: str | None, transforms: Sequence[str],
           xpath: str | None, reference_uri: str | None, *, plain: bool = False, default_namespace: bool = False,
           signature_id: str | None = None, signing_time_format: str | None = None,
           signing_time_zone: str = "UTC", more_reference_uris: Sequence[str] = (),
           xpath_filter_id: str | None = None) -> "XmlChoices":
        for algorithm in (signed_info_c14n, signed_properties_c14n):
            if algorithm is not None and not is_c14n(algorithm):
                raise FormatError("unsupported_algorithm", f"canonicalization {algorithm!r} is not supported")
        for algorithm in transforms:
            if algorithm != ENVELOPED and not is_c14n(algorithm):
                raise FormatError("unsupported_algorithm", f"transform {algorithm!r} is not supported "
                                                           "(enveloped-signature and the C14N family are)")
        if signature_id is not None:
            check_id(signature_id)
        if signing_time_format is not None and (not 1 <= len(signing_time_format) <= 40
                                                or not set(re.findall(r"%(.)", signing_time_format)) <= set("YmdHMSz%")):
            raise FormatError("invalid_argument", "the signing time format uses %Y %m %d %H %M %S %z only")
        try:
            ZoneInfo(signing_time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise FormatError("invalid_argument", f"unknown time zone {signing_time_zone!r}") from exc
        return cls(signed_info_c14n or c.SIGNED_INFO_C14N, signed_properties_c14n or c.SIGNED_INFO_C14N,
                   tuple(transforms), xpath, reference_uri, plain, default_namespace, signature_id,
                   signing_time_format, signing_time_zone, tuple(more_reference_uris),
                   check_id(xpath_filter_id) if xpath_filter_id is not None else None)

    def c14n_transforms(self) -> list[str]:
        return [t for t in self.transforms if t != ENVELOPED]


@dataclass(frozen=True)
class Content:
    """One document to sign: name, MIME type, an opener (None: known only by ``sha256``)."""

    name: str
    mime_type: str
    open: Callable[[], BinaryIO] | None
    sha256: bytes | None = None


@dataclass(frozen=True)
class PreparedXml:
    """The document with an empty SignatureValue, the canonical SignedInfo and its digest."""

    xml: bytes
    signature_id: str
    data_to_be_signed: bytes
    digest: bytes


def is_xml_mime(mime_type: str) -> bool:
    return mime_type.split(";", 1)[0].strip().lower().endswith(XML_MIME_SUFFIXES)


def read_limited(content: Content, limit: int) -> bytes:
    if content.open is None:
        raise FormatError("content_required", f"{content.name} is known only by its digest")
    with content.open() as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise FormatError("document_too_large", f"{content.name} is larger than {limit} bytes")
    return data


def _new_id(taken: set[str]) -> str:
    while True:
        sid = f"id-{uuid.uuid4().hex}"
        if sid not in taken:
            return sid


# -- enveloped --------------------------------------------------------------------------------------

def _unique_by_id(tree: etree._ElementTree, ident: str) -> etree._Element:
    found = id_index(tree).get(ident, [])
    if len(found) != 1:
        raise FormatError("invalid_argument", f"{len(found)} elements carry the Id {ident!r}; the signed element "
                                              "must be named by a unique Id")
    return found[0]


def _select(tree: etree._ElementTree, expression: str) -> etree._Element:
    """The one element ``expression`` selects: XPath 1.0 over the document, with the prefixes the
    document declares (the first declaration of each, in document order) and ``ds`` / ``xades``
    where the document does not bind them; a default namespace has no prefix in XPath 1.0, so
    elements in it are matched with ``*[local-name()='...']``."""
    namespaces: dict[str, str] = {}
    for el in tree.iter():
        if isinstance(el.tag, str):
            for prefix, uri in el.nsmap.items():
                if prefix:
                    namespaces.setdefault(prefix, uri)
    namespaces.setdefault("ds", c.DS)
    namespaces.setdefault("xades", c.XADES)
    try:
        found = tree.xpath(expression, namespaces=namespaces)
    except (etree.XPathError, ValueError, TypeError) as exc:
        raise FormatError("invalid_argument", f"the XPath {expression!r} cannot be evaluated: {exc}") from None
    elements = [n for n in found if isinstance(n, etree._Element) and isinstance(n.tag, str)] \
        if isinstance(found, list) else []
    if len(elements) != 1:
        raise FormatError("invalid_argument", f"the XPath {expression!r} selects {len(elements)} elements, not one")
    return elements[0]


def _element_id(el: etree._Element) -> str | None:
    return next((v for k, v in el.attrib.items() if is_id_attribute(k)), None)


def prepare_enveloped(content: Content, signer: SignerSpec, properties: PropertyOptions, choices: XmlChoices,
                      limit: int) -> PreparedXml:
    """An enveloped signature inside the XML document ``content``."""
    check_signer(signer)
    tree = parse_xml(read_limited(content, limit), limit)
    before = intact_references(tree)
    target: etree._Element | None = None
    ident: str | None = None
    if choices.reference_uri is not None:
        ident = choices.reference_uri.removeprefix("#")
        target = _unique_by_id(tree, ident)
    if choices.xpath is not None:
        place = _select(tree, choices.xpath)
    else:
        place = target if target is not None else tree.getroot()
    if choices.xpath is not None and target is None and (found := _element_id(place)) is not None:
        ident = found
        target = _unique_by_id(tree, ident)
    if place.tag == c.q(c.DS, "Signature") or enclosing_signature(place) is not None:
        raise FormatError("invalid_argument", "the signature cannot be put inside another signature")
    enveloped = target is None or contains(target, place)
    transforms = ([ENVELOPED] if enveloped else []) + (choices.c14n_transforms() or [c.C14N_10])
    taken = set(id_index(tree))
    if choices.signature_id is not None and choices.signature_id in taken:
        raise FormatError("invalid_argument", f"the Id {choices.signature_id!r} is taken in the document")
    sid = choices.signature_id or _new_id(taken)
    mime = content.mime_type if is_xml_mime(content.mime_type or "") else "text/xml"
    ref = RefSpec(id=f"{sid}-ref-1", uri="" if ident is None else f"#{ident}", digest_algorithm=signer.digest_algorithm,
                  mime_type=mime, transforms=tuple(transforms))
    if choices.xpath_filter_id is not None:  # the element by an XPath Filter 2.0 over the document
        selected = _unique_by_id(tree, choices.xpath_filter_id)
        ref = RefSpec(id=f"{sid}-ref-1", uri="", digest_algorithm=signer.digest_algorithm, mime_type=mime,
                      transforms=tuple(([ENVELOPED] if contains(selected, place) else [])
                                       + (choices.c14n_transforms() or [c.C14N_10])),
                      xpath_filters=(("intersect", f"id('{choices.xpath_filter_id}')"),))
    refs = [ref]
    for n, uri in enumerate(choices.more_reference_uris, start=2):
        other = _unique_by_id(tree, uri.removeprefix("#"))
        more = ([ENVELOPED] if contains(other, place) else []) + (choices.c14n_transforms() or [c.C14N_10])
        refs.append(RefSpec(id=f"{sid}-ref-{n}", uri=f"#{uri.removeprefix('#')}",
                            digest_algorithm=signer.digest_algorithm, mime_type=mime, transforms=tuple(more)))
    time_property = None
    if choices.signing_time_format is not None:
        local = properties.signing_time.astimezone(ZoneInfo(choices.signing_time_zone))
        time_property = TimeProperty("SigningTime", f"{sid}-signingtime",
                                     local.strftime(choices.signing_time_format))
    try:
        signature_element(sid, signer, refs, properties, signed_info_c14n=choices.signed_info_c14n,
                          signed_properties_c14n=choices.signed_properties_c14n, parent=place,
                          qualifying=not choices.plain, default_namespace=choices.default_namespace,
                          time_property=time_property)
    except ValueError as exc:
        raise FormatError("invalid_argument", str(exc)) from None
    prepared = _finish(tree, sid, signer, lambda _uri: None, choices.signed_info_c14n)
    # Adding this signature must leave every earlier one intact (one that signed the whole
    # document without excluding other signatures would break: refuse rather than do that).
    check_still_intact(before, "adding the signature")
    return prepared


# -- enveloping -------------------------------------------------------------------------------------

def prepare_enveloping(contents: Sequence[Content], signer: SignerSpec, properties: PropertyOptions,
                       choices: XmlChoices, limit: int) -> PreparedXml:
    """An enveloping signature: each document in a ds:Object of the signature."""
    check_signer(signer)
    if not contents:
        raise FormatError("invalid_argument", "nothing to sign: no documents")
    sid = _new_id(set())
    refs: list[RefSpec] = []
    objects: list[ContentObject] = []
    for index, content in enumerate(contents, start=1):
        data = read_limited(content, limit)
        obj_id = f"{sid}-object-{index}"
        mime = content.mime_type or "application/octet-stream"
        if is_xml_mime(mime):
            element = parse_xml(data, limit).getroot()
            objects.append(ContentObject(id=obj_id, mime_type=mime, element=element))
            transforms = tuple(choices.c14n_transforms() or [c.C14N_10])
            refs.append(RefSpec(id=f"{sid}-ref-{index}", uri=f"#{obj_id}", type=OBJECT_TYPE,
                                digest_algorithm=signer.digest_algorithm, mime_type=mime, transforms=transforms))
        else:
            if choices.c14n_transforms():
                raise FormatError("unsupported_algorithm", f"{content.name} is not XML: only the base64 transform "
                                                           "applies to it")
            text = base64.b64encode(data).decode("ascii")
            if len(text) > MAX_BASE64_TEXT:
                raise FormatError("document_too_large", f"{content.name} is too large to be enveloped in XML")
            objects.append(ContentObject(id=obj_id, mime_type=mime, base64_text=text, encoding=BASE64))
            refs.append(RefSpec(id=f"{sid}-ref-{index}", uri=f"#{obj_id}", type=OBJECT_TYPE,
                                digest_algorithm=signer.digest_algorithm, mime_type=mime, transforms=(BASE64,),
                                encoding=BASE64))
    try:
        sig = signature_element(sid, signer, refs, properties, signed_info_c14n=choices.signed_info_c14n,
                                signed_properties_c14n=choices.signed_properties_c14n, objects=objects)
    except ValueError as exc:
        raise FormatError("invalid_argument", str(exc)) from None
    return _finish(etree.ElementTree(sig), sid, signer, lambda _uri: None, choices.signed_info_c14n)


# -- detached ---------------------------------------------------------------------------------------

def prepare_detached(contents: Sequence[Content], signer: SignerSpec, properties: PropertyOptions,
                     choices: XmlChoices) -> PreparedXml:
    """A detached signature document referencing each document by its name."""
    check_signer(signer)
    if not contents:
        raise FormatError("invalid_argument", "nothing to sign: no documents")
    sid = _new_id(set())
    transforms = tuple(choices.c14n_transforms())
    refs: list[RefSpec] = []
    openers: dict[str, Callable[[], BinaryIO]] = {}
    for index, content in enumerate(contents, start=1):
        uri = name_to_uri(content.name)
        if uri in openers or any(r.uri == uri for r in refs):
            raise FormatError("invalid_argument", f"document {content.name!r} listed twice")
        digest = None
        if not transforms and signer.digest_algorithm == "sha256" and content.sha256 is not None:
            digest = content.sha256
        elif content.open is None:
            raise FormatError("content_required", f"{content.name} is known only by its SHA-256 digest")
        else:
            openers[uri] = content.open
        refs.append(RefSpec(id=f"{sid}-ref-{index}", uri=uri, digest_algorithm=signer.digest_algorithm,
                            mime_type=content.mime_type or "application/octet-stream", digest=digest,
                            transforms=transforms))
    try:
        sig = signature_element(sid, signer, refs, properties, signed_info_c14n=choices.signed_info_c14n,
                                signed_properties_c14n=choices.signed_properties_c14n)
    except ValueError as exc:
        raise FormatError("invalid_argument", str(exc)) from None
    return _finish(etree.ElementTree(sig), sid, signer, openers.get, choices.signed_info_c14n)


# -- common end -------------------------------------------------------------------------------------

def _finish(tree: etree._ElementTree, sid: str, signer: SignerSpec, resolve: Resolver,
            signed_info_c14n: str) -> PreparedXml:
    """Re-read the document as it will be stored, fill every empty DigestValue with what the
    reference processor computes, and canonicalize SignedInfo."""
    stored = parse_xml(serialize(tree), MAX_DOCUMENT_BYTES)
    sig = signature_by_id(stored, sid)
    signed_info = child(sig, c.DS, "SignedInfo")
    refs = signature_references(sig, resolve)
    for outcome in refs:
        value = child(outcome.element, c.DS, "DigestValue")
        if (value.text or "").strip():
            continue  # known in advance (a digest-only document)
        if not outcome.found or outcome.computed is None:
            raise FormatError("invalid_argument", f"the reference {outcome.uri!r} cannot be processed: "
                                                  f"{outcome.message or 'not found'}")
        value.text = b64(outcome.computed)
    method = child(signed_info, c.DS, "CanonicalizationMethod")
    octets = canonicalize(signed_info, signed_info_c14n, inclusive_namespaces(method))
    return PreparedXml(xml=serialize(stored), signature_id=sid, data_to_be_signed=octets,
                       digest=hashlib.new(signer.digest_algorithm, octets).digest())
