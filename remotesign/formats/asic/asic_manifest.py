"""META-INF/ASiCManifest*.xml (EN 319 162-1 §A.4): what a CAdES signature of an ASiC-E container
signs. Written with one DataObjectReference (URI, digest) per data object; read only for the
signature file its SigReference names, parsed as hostile XML."""

from __future__ import annotations

import base64
from collections.abc import Iterable

from lxml import etree

from ..base import FormatError
from .names import check_name


def name_to_uri(name: str) -> str:
    """A container entry name as a relative URI (UTF-8 percent-encoding, '/' kept)."""
    from urllib.parse import quote

    check_name(name)
    return quote(name, safe="/")

ASIC_NS = "http://uri.etsi.org/02918/v1.2.1#"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
MANIFEST_PREFIX = "META-INF/ASiCManifest"
CADES_MEDIA_TYPE = "application/pkcs7-signature"
DIGEST_URIS = {
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha384": "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "sha512": "http://www.w3.org/2001/04/xmlenc#sha512",
}


def build(signature_name: str, entries: Iterable[tuple[str, str, bytes]], hash_name: str) -> bytes:
    """An ASiCManifest for ``signature_name`` over ``(name, media type, digest)`` entries."""
    if hash_name not in DIGEST_URIS:
        raise FormatError("unsupported_digest", f"digest algorithm {hash_name!r} is not supported")
    root = etree.Element(f"{{{ASIC_NS}}}ASiCManifest", nsmap={"asic": ASIC_NS, "ds": DS_NS})
    ref = etree.SubElement(root, f"{{{ASIC_NS}}}SigReference")
    ref.set("URI", name_to_uri(signature_name))
    ref.set("MimeType", CADES_MEDIA_TYPE)
    for name, media_type, digest in entries:
        item = etree.SubElement(root, f"{{{ASIC_NS}}}DataObjectReference")
        item.set("URI", name_to_uri(name))
        if media_type:
            item.set("MimeType", media_type)
        etree.SubElement(item, f"{{{DS_NS}}}DigestMethod").set("Algorithm", DIGEST_URIS[hash_name])
        etree.SubElement(item, f"{{{DS_NS}}}DigestValue").text = base64.b64encode(digest).decode("ascii")
    return b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + etree.tostring(
        root, encoding="UTF-8", xml_declaration=False, pretty_print=True)


def signature_reference(data: bytes) -> str | None:
    """The container entry the manifest's SigReference names, or None for an unreadable manifest."""
    from urllib.parse import unquote

    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root.tag != f"{{{ASIC_NS}}}ASiCManifest":
        return None
    ref = root.find(f"{{{ASIC_NS}}}SigReference")
    uri = ref.get("URI") if ref is not None else None
    return unquote(uri) if uri else None
