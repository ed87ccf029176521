"""Office Open XML package signatures (ECMA-376 Part 2 clause 13, OPC digital signatures) with
their XAdES properties, as Word, Excel and PowerPoint make and show them: docx, xlsx, pptx.

The signature part ``/_xmlsignatures/sigN.xml`` holds an XMLDSig ``Signature`` (default namespace)
whose SignedInfo references three of its own objects:

* ``idPackageObject``: a ds:Manifest with one Reference per package part, ``/part?ContentType=...``,
  each the part's digest (relationship parts through the OPC RelationshipTransform, which keeps only
  the listed relationships, sorted, so later relationships such as the signature origin's do not
  change it), and the signing time as the ``mdssi:SignatureTime`` property;
* ``idOfficeObject``: the Office ``SignatureInfoV1`` property;
* ``idSignedProperties``: the XAdES SignedProperties (signing time, signing certificate).

[Content_Types].xml and the signature parts are not signed (OPC). The package gets the origin part
``/_xmlsignatures/origin.sigs`` (related from the package root), the signature relationship from it,
and the two content types. Two steps like every format: the SignedInfo is prepared and its digest
signed by the key holder; the value is then embedded (verified first) and the new package written.
"""

from __future__ import annotations

import hashlib
import posixpath
import uuid
import zipfile
from collections.abc import Sequence
from datetime import timezone
from typing import BinaryIO

from lxml import etree

from remotesign.formats.base import FormatError, SignerSpec
from remotesign.formats.interface import (DataToSign, Document, ExtensionContext, Level, SignatureFormat,
                                          SignParameters)
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.build import check_signer
from remotesign.formats.xades.c14n import canonicalize
from remotesign.formats.xades.certs import is_self_signed
from remotesign.formats.xades.signature_value import embed_value
from remotesign.formats.xades.signed_properties import build_qualifying_properties
from remotesign.formats.xades.xmlio import b64, parse_xml, serialize

CT = "http://schemas.openxmlformats.org/package/2006/content-types"
REL = "http://schemas.openxmlformats.org/package/2006/relationships"
MDSSI = "http://schemas.openxmlformats.org/package/2006/digital-signature"
DIGSIG = "http://schemas.microsoft.com/office/2006/digsig"
RELATIONSHIP_TRANSFORM = "http://schemas.openxmlformats.org/package/2006/RelationshipTransform"
ORIGIN_TYPE = "http://schemas.openxmlformats.org/package/2006/relationships/digital-signature/origin"
SIGNATURE_TYPE = "http://schemas.openxmlformats.org/package/2006/relationships/digital-signature/signature"
ORIGIN_CONTENT_TYPE = "application/vnd.openxmlformats-package.digital-signature-origin"
SIGNATURE_CONTENT_TYPE = "application/vnd.openxmlformats-package.digital-signature-xmlsignature+xml"
RELS_CONTENT_TYPE = "application/vnd.openxmlformats-package.relationships+xml"
OBJECT_TYPE = "http://www.w3.org/2000/09/xmldsig#Object"
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"
ORIGIN = "_xmlsignatures/origin.sigs"
ORIGIN_RELS = "_xmlsignatures/_rels/origin.sigs.rels"
MAX_PARTS = 10_000
MAX_PART_BYTES = 256 << 20
MAX_TOTAL_BYTES = 512 << 20  # all parts, uncompressed: what a ZIP bomb would blow up
MAX_XML_BYTES = 64 << 20
MEDIA_TYPES = ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "application/vnd.openxmlformats-officedocument.presentationml.presentation")


def _bad(message: str) -> FormatError:
    return FormatError("invalid_document", message)


class Package:
    """The parts of an OPC package (a ZIP), read with limits: names, sizes and count are checked
    before anything is decompressed, and XML parts are parsed with the safe parser."""

    def __init__(self, source: BinaryIO) -> None:
        source.seek(0)
        try:
            self.zip = zipfile.ZipFile(source)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise _bad(f"not an Office document (ZIP): {exc}") from None
        if len(infos) > MAX_PARTS:
            raise _bad(f"more than {MAX_PARTS} parts")
        self.infos = [i for i in infos if not i.is_dir()]
        names = [i.filename for i in self.infos]
        for name in names:
            if name.startswith("/") or "\\" in name or ".." in name.split("/") or not name:
                raise _bad(f"unsafe part name {name!r}")
            if self.zip.getinfo(name).file_size > MAX_PART_BYTES:
                raise _bad(f"part {name!r} is too large")
        if sum(i.file_size for i in self.infos) > MAX_TOTAL_BYTES:
            raise _bad(f"the parts hold more than {MAX_TOTAL_BYTES} bytes uncompressed")
        if len(set(n.lower() for n in names)) != len(names):
            raise _bad("two parts have the same name")
        if "[Content_Types].xml" not in names:
            raise _bad("not an Office document: no [Content_Types].xml")
        self.names = names
        self.content_types = self._content_types()

    def read(self, name: str) -> bytes:
        try:
            return self.zip.read(name)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
            raise _bad(f"part {name!r} cannot be read: {exc}") from None

    def digest(self, name: str, hash_name: str) -> bytes:
        """The part's digest, read in chunks (a large part is never held whole)."""
        h = hashlib.new(hash_name)
        try:
            with self.zip.open(name) as part:
                for chunk in iter(lambda: part.read(1 << 20), b""):
                    h.update(chunk)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
            raise _bad(f"part {name!r} cannot be read: {exc}") from None
        return h.digest()

    def xml(self, name: str) -> etree._ElementTree:
        return parse_xml(self.read(name), MAX_XML_BYTES)

    def _content_types(self) -> tuple[dict[str, str], dict[str, str]]:
        root = self.xml("[Content_Types].xml").getroot()
        defaults = {el.get("Extension", "").lower(): el.get("ContentType", "")
                    for el in root.iter(f"{{{CT}}}Default")}
        overrides = {el.get("PartName", "").lower(): el.get("ContentType", "")
                     for el in root.iter(f"{{{CT}}}Override")}
        return defaults, overrides

    def content_type(self, name: str) -> str:
        defaults, overrides = self.content_types
        base = posixpath.basename(name)
        extension = base.rsplit(".", 1)[1].lower() if "." in base else ""  # "_rels/.rels" has the extension rels
        found = overrides.get("/" + name.lower()) or defaults.get(extension)
        if not found:
            raise _bad(f"part {name!r} has no content type")
        return found


def relationships_octets(data: bytes, source_ids: Sequence[str]) -> bytes:
    """The OPC RelationshipTransform (ECMA-376-2 13.2.4.24) of a relationships part, then C14N:
    only the relationships ``source_ids`` names, sorted by Id, TargetMode made explicit."""
    root = parse_xml(data, MAX_XML_BYTES).getroot()
    wanted = set(source_ids)
    kept = sorted((el for el in root if el.tag == f"{{{REL}}}Relationship" and el.get("Id") in wanted),
                  key=lambda el: el.get("Id") or "")
    out = etree.Element(f"{{{REL}}}Relationships", nsmap={None: REL})
    for el in kept:
        attrs = {k: v for k, v in el.attrib.items()}
        attrs.setdefault("TargetMode", "Internal")
        etree.SubElement(out, f"{{{REL}}}Relationship", attrs)
    return canonicalize(out, c.C14N_10)


def _signed_relationship_ids(data: bytes) -> list[str]:
    root = parse_xml(data, MAX_XML_BYTES).getroot()
    return [el.get("Id") or "" for el in root.iter(f"{{{REL}}}Relationship")
            if el.get("Type") not in (ORIGIN_TYPE, SIGNATURE_TYPE)]


def _ds(parent: etree._Element, local: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{c.DS}}}{local}", attrs)
    if text is not None:
        el.text = text
    return el


def _reference(parent: etree._Element, uri: str, hash_name: str, digest: bytes | None, *,
               transforms: Sequence[etree._Element | str] = (), type_: str | None = None) -> None:
    attrs = {"URI": uri} if type_ is None else {"Type": type_, "URI": uri}
    ref = _ds(parent, "Reference", **attrs)
    if transforms:
        holder = _ds(ref, "Transforms")
        for t in transforms:
            if isinstance(t, str):
                _ds(holder, "Transform", Algorithm=t)
            else:
                holder.append(t)
    _ds(ref, "DigestMethod", Algorithm=c.DIGEST_URIS[hash_name])
    _ds(ref, "DigestValue", b64(digest) if digest is not None else "")


def _relationship_transform(ids: Sequence[str]) -> etree._Element:
    transform = etree.Element(f"{{{c.DS}}}Transform", {"Algorithm": RELATIONSHIP_TRANSFORM})
    for ident in sorted(ids):
        etree.SubElement(transform, f"{{{MDSSI}}}RelationshipReference", {"SourceId": ident},
                         nsmap={"mdssi": MDSSI})
    return transform


def _manifest(package: Package, manifest: etree._Element, hash_name: str) -> None:
    for name in sorted(package.names):
        if name == "[Content_Types].xml" or name.startswith("_xmlsignatures/"):
            continue
        uri = f"/{name}?ContentType={package.content_type(name)}"
        if name.endswith(".rels"):
            data = package.read(name)
            ids = _signed_relationship_ids(data)
            octets = relationships_octets(data, ids)
            _reference(manifest, uri, hash_name, hashlib.new(hash_name, octets).digest(),
                       transforms=[_relationship_transform(ids), c.C14N_10])
        else:
            _reference(manifest, uri, hash_name, package.digest(name, hash_name))


def _office_object(sig: etree._Element, sid: str) -> None:
    obj = _ds(sig, "Object", Id="idOfficeObject")
    prop = _ds(_ds(obj, "SignatureProperties"), "SignatureProperty", Id="idOfficeV1Details", Target=f"#{sid}")
    info = etree.SubElement(prop, f"{{{DIGSIG}}}SignatureInfoV1", nsmap={None: DIGSIG})
    for local, text in (("SetupID", ""), ("SignatureText", ""), ("SignatureImage", ""), ("SignatureComments", ""),
                        ("WindowsVersion", "10.0"), ("OfficeVersion", "16.0"), ("ApplicationVersion", "16.0"),
                        ("Monitors", "1"), ("HorizontalResolution", "1920"), ("VerticalResolution", "1080"),
                        ("ColorDepth", "32"), ("SignatureProviderId", "{00000000-0000-0000-0000-000000000000}"),
                        ("SignatureProviderUrl", ""), ("SignatureProviderDetails", "9"), ("SignatureType", "1")):
        etree.SubElement(info, f"{{{DIGSIG}}}{local}").text = text


def prepare_signature(package: Package, signer: SignerSpec, parameters: SignParameters) -> tuple[bytes, str, bytes]:
    """The signature part with an empty SignatureValue, its Id, and the canonical SignedInfo."""
    check_signer(signer)
    hash_name = signer.digest_algorithm
    sid = f"idPackageSignature-{uuid.uuid4().hex[:12]}"
    sig = etree.Element(f"{{{c.DS}}}Signature", {"Id": sid}, nsmap={None: c.DS})
    signed_info = _ds(sig, "SignedInfo")
    _ds(signed_info, "CanonicalizationMethod", Algorithm=c.C14N_10)
    _ds(signed_info, "SignatureMethod", Algorithm=c.SIGNATURE_URIS[(signer.mechanism, hash_name)])
    for uri, type_, transforms in (("#idPackageObject", OBJECT_TYPE, ()), ("#idOfficeObject", OBJECT_TYPE, ()),
                                   ("#idSignedProperties", SIGNED_PROPERTIES_TYPE, (c.C14N_10,))):
        _reference(signed_info, uri, hash_name, None, transforms=transforms, type_=type_)
    _ds(sig, "SignatureValue", "")
    x509_data = _ds(_ds(sig, "KeyInfo"), "X509Data")
    _ds(x509_data, "X509Certificate", b64(signer.certificate))
    for der in signer.chain:
        if not is_self_signed(der):
            _ds(x509_data, "X509Certificate", b64(der))
    package_object = _ds(sig, "Object", Id="idPackageObject")
    _manifest(package, _ds(package_object, "Manifest"), hash_name)
    time_prop = _ds(_ds(package_object, "SignatureProperties"), "SignatureProperty", Id="idSignatureTime",
                    Target=f"#{sid}")
    signature_time = etree.SubElement(time_prop, f"{{{MDSSI}}}SignatureTime", nsmap={"mdssi": MDSSI})
    etree.SubElement(signature_time, f"{{{MDSSI}}}Format").text = "YYYY-MM-DDThh:mm:ssTZD"
    etree.SubElement(signature_time, f"{{{MDSSI}}}Value").text = \
        parameters.signing_time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    _office_object(sig, sid)
    build_qualifying_properties(parent=_ds(sig, "Object"), signature_id=sid, signed_properties_id="idSignedProperties",
                                signing_time=parameters.signing_time, certificate=signer.certificate,
                                data_objects=[], claimed_role=None, production_place=None,
                                claimed_roles=tuple(parameters.claimed_roles), policy=None)
    # the digests of the three objects, on the signature as it will be stored
    tree = parse_xml(serialize(etree.ElementTree(sig)), MAX_XML_BYTES)
    root = tree.getroot()
    by_id = {el.get("Id"): el for el in root.iter() if isinstance(el.tag, str) and el.get("Id")}
    for ref in root.find(f"{{{c.DS}}}SignedInfo").iter(f"{{{c.DS}}}Reference"):
        target = by_id.get((ref.get("URI") or "").lstrip("#"))
        if target is None:
            raise _bad(f"the signature's reference {ref.get('URI')!r} finds nothing")
        ref.find(f"{{{c.DS}}}DigestValue").text = b64(hashlib.new(hash_name, canonicalize(target, c.C14N_10)).digest())
    octets = canonicalize(root.find(f"{{{c.DS}}}SignedInfo"), c.C14N_10)
    return serialize(tree), sid, octets


def _next_signature_name(package: Package) -> str:
    n = 1
    while f"_xmlsignatures/sig{n}.xml" in package.names:
        n += 1
    return f"_xmlsignatures/sig{n}.xml"


def _with_relationship(data: bytes | None, rel_type: str, target: str) -> bytes:
    if data is None:
        root = etree.Element(f"{{{REL}}}Relationships", nsmap={None: REL})
    else:
        root = parse_xml(data, MAX_XML_BYTES).getroot()
    if any(el.get("Type") == rel_type and el.get("Target") == target for el in root):
        return serialize(etree.ElementTree(root))
    taken = {el.get("Id") for el in root}
    n = 1
    while f"rIdSig{n}" in taken:
        n += 1
    etree.SubElement(root, f"{{{REL}}}Relationship", {"Id": f"rIdSig{n}", "Type": rel_type, "Target": target})
    return serialize(etree.ElementTree(root))


def _with_content_types(data: bytes, signature_name: str) -> bytes:
    root = parse_xml(data, MAX_XML_BYTES).getroot()
    if not any(el.get("Extension", "").lower() == "sigs" for el in root.iter(f"{{{CT}}}Default")):
        etree.SubElement(root, f"{{{CT}}}Default", {"Extension": "sigs", "ContentType": ORIGIN_CONTENT_TYPE})
    etree.SubElement(root, f"{{{CT}}}Override", {"PartName": f"/{signature_name}",
                                                 "ContentType": SIGNATURE_CONTENT_TYPE})
    return serialize(etree.ElementTree(root))


def write_signed(package: Package, signature_name: str, signature_xml: bytes, output: BinaryIO) -> None:
    """The package with the signature part, its origin and relationships, and content types."""
    replaced = {"[Content_Types].xml": _with_content_types(package.read("[Content_Types].xml"), signature_name),
                "_rels/.rels": _with_relationship(package.read("_rels/.rels") if "_rels/.rels" in package.names
                                                  else None, ORIGIN_TYPE, ORIGIN),
                ORIGIN_RELS: _with_relationship(package.read(ORIGIN_RELS) if ORIGIN_RELS in package.names else None,
                                                SIGNATURE_TYPE, posixpath.basename(signature_name)),
                signature_name: signature_xml}
    if ORIGIN not in package.names:
        replaced[ORIGIN] = b""
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as out:
        for info in package.infos:
            if info.filename in replaced:
                out.writestr(info.filename, replaced.pop(info.filename), zipfile.ZIP_DEFLATED)
            else:
                with package.zip.open(info) as src, out.open(zipfile.ZipInfo(info.filename, info.date_time),
                                                            "w") as dst:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        dst.write(chunk)
        for name, data in replaced.items():
            out.writestr(name, data, zipfile.ZIP_DEFLATED)


class OoxmlFormat(SignatureFormat):
    """docx, xlsx, pptx: OPC package signatures (B level; no time-stamps in this format yet)."""

    name = "ooxml"

    def recognizes(self, source: BinaryIO) -> bool:
        try:
            source.seek(0)
            if source.read(4) != b"PK\x03\x04":
                return False
            names = set(Package(source).names)
            return bool(names & {"word/document.xml", "xl/workbook.xml", "ppt/presentation.xml"})
        except (FormatError, KeyError, ValueError):
            return False
        finally:
            source.seek(0)

    @staticmethod
    def _one(documents: Sequence[Document]) -> Document:
        if len(documents) != 1:
            raise FormatError("one_document_per_signature", "an Office signature signs exactly one document")
        return documents[0]

    async def data_to_sign(self, documents: Sequence[Document], parameters: SignParameters,
                           scratch: BinaryIO) -> DataToSign:
        with self._one(documents).content() as src:
            package = Package(src)
            xml, sid, octets = prepare_signature(package, parameters.signer, parameters)
            name = _next_signature_name(package)
        scratch.seek(0)
        scratch.truncate()
        scratch.write(xml)
        return DataToSign(hashlib.new(parameters.signer.digest_algorithm, octets).digest(),
                          {"signature_id": sid, "part": name, "xml_sha256": hashlib.sha256(xml).hexdigest()})

    async def sign(self, documents: Sequence[Document], parameters: SignParameters, prepared: DataToSign,
                   signature_value: bytes, scratch: BinaryIO, output: BinaryIO) -> None:
        scratch.seek(0)
        xml = scratch.read(MAX_XML_BYTES + 1)
        if hashlib.sha256(xml).hexdigest() != prepared.state.get("xml_sha256"):
            raise FormatError("invalid_state", "the prepared signature changed between the two steps")
        tree = parse_xml(xml, MAX_XML_BYTES)
        embed_value(tree.getroot(), signature_value)
        with self._one(documents).content() as src:
            write_signed(Package(src), prepared.state["part"], serialize(tree), output)

    async def extend(self, source: BinaryIO, output: BinaryIO, level: Level, context: ExtensionContext,
                     detached: Sequence[Document] = ()) -> None:
        raise FormatError("unsupported_level", "Office signatures are made at level B here")

    async def timestamp(self, source: BinaryIO, output: BinaryIO, context: ExtensionContext,
                        detached: Sequence[Document] = ()) -> None:
        raise FormatError("unsupported_level", "Office signatures are made at level B here")

    def signature_levels(self, source: BinaryIO) -> list[Level]:
        try:
            package = Package(source)
        except FormatError:
            return []
        return [Level.B for n in package.names if n.startswith("_xmlsignatures/sig") and n.endswith(".xml")]

