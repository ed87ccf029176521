"""META-INF/manifest.xml (OpenDocument manifest 1.2) as ASiC-E uses it: parsed as hostile XML,
written with one file-entry per data object."""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from ..base import FormatError
from .names import MIMETYPE

NS = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
_MANIFEST = f"{{{NS}}}manifest"
_FILE_ENTRY = f"{{{NS}}}file-entry"
_FULL_PATH = f"{{{NS}}}full-path"
_MEDIA_TYPE = f"{{{NS}}}media-type"
_VERSION = f"{{{NS}}}version"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=True
    )


def _bad(message: str) -> FormatError:
    return FormatError("invalid_manifest", f"META-INF/manifest.xml: {message}")


def parse_manifest(data: bytes) -> list[tuple[str, str]]:
    """``(full-path, media-type)`` pairs in document order, the ``/`` root entry excluded.
    Rejects malformed XML, any DOCTYPE (hence entity tricks), a foreign root element and
    entries without a full-path or listed twice."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise _bad("DOCTYPE declarations are not allowed")
    try:
        root = etree.fromstring(data, _parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise _bad(f"not well-formed XML ({exc})") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _bad("DOCTYPE declarations are not allowed")  # e.g. a UTF-16 document
    if root.tag != _MANIFEST:
        raise _bad(f"root element is {root.tag!r}, expected manifest:manifest")
    entries: list[tuple[str, str]] = []
    seen: set[str] = set()
    for node in root.iter():
        if node.tag is etree.Entity:
            raise _bad("entity references are not allowed")
        if node.tag != _FILE_ENTRY:
            continue
        path = node.get(_FULL_PATH)
        if not path:
            raise _bad("file-entry without manifest:full-path")
        if path in seen:
            raise _bad(f"{path!r} listed twice")
        seen.add(path)
        if path != "/":
            entries.append((path, node.get(_MEDIA_TYPE) or ""))
    return entries


def build_manifest(entries: Iterable[tuple[str, str]]) -> bytes:
    root = etree.Element(_MANIFEST, nsmap={"manifest": NS})
    root.set(_VERSION, "1.2")
    for path, media_type in [("/", MIMETYPE), *entries]:
        entry = etree.SubElement(root, _FILE_ENTRY)
        entry.set(_FULL_PATH, path)
        entry.set(_MEDIA_TYPE, media_type)
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + etree.tostring(
        root, encoding="UTF-8", xml_declaration=False, pretty_print=True
    )
