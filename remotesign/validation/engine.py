"""Entry point of validation: recognise what a file is and hand it to its format validator,
then decide each signature's eIDAS level. Wire APIs and the CLI call only this module."""

from __future__ import annotations

import logging
from pathlib import Path

from remotesign.validation.ddoc_xml import is_ddoc
from remotesign.validation.model import DocumentResult, ValidationInputError
from remotesign.validation.options import ValidationOptions

_SNIFF_BYTES = 1024

# pyHanko logs every failed path or revocation check as a warning with a traceback; for a
# validation service those are expected outcomes, reported in the result. Keep them out of the
# log unless the operator asked for these loggers explicitly.
for _name in ("pyhanko", "pyhanko_certvalidator"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.ERROR)


def sniff(head: bytes) -> str:
    """Classify a file by its first bytes: ``pdf``, ``zip``, ``xml``, ``cms`` or ``unknown``
    (a CMS that envelops a PDF starts with a DER SEQUENCE and a ZIP that stores one with a local
    file header, so those tests come first; a PDF may have bytes before its header)."""
    if head[:1] == b"\x30" and b"%PDF-" not in head[:8]:
        return "cms"
    if head.startswith(b"PK\x03\x04"):  # before the PDF test: a container may store a PDF uncompressed
        return "zip"
    if b"%PDF-" in head[:_SNIFF_BYTES]:
        return "pdf"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return "xml"
    if head[:1] == b"\x30":
        return "cms"
    if text.startswith(b"-----BEGIN PKCS7-----") or text.startswith(b"-----BEGIN CMS-----"):
        return "cms"
    return "unknown"


async def validate_path(path: Path, options: ValidationOptions, *, filename: str | None = None) -> DocumentResult:
    """Validate every signature in the file at ``path``.

    Raises :class:`ValidationInputError` when the file cannot carry a report at all
    (unsigned, unknown type); signatures that are merely broken get a report with
    TOTAL-FAILED / INDETERMINATE instead."""
    name = filename or path.name
    options = options.pinned()
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head:
        raise ValidationInputError("empty_document", "The document is empty.")
    kind = sniff(head)
    if kind == "pdf":
        from remotesign.validation.pades import validate_pdf
        result = await validate_pdf(path, options, filename=name)
    elif kind == "zip":
        if _office_signatures(path):
            raise ValidationInputError(
                "unsupported_signature_format",
                "The document is an Office Open XML package (docx, xlsx, pptx) with package signatures; this "
                "service signs those but does not validate them yet (LibreOffice and Microsoft Office show them).")
        from remotesign.validation.asic import validate_container
        result = await validate_container(path, options, filename=name)
    elif kind == "xml" and is_ddoc(head):
        from remotesign.validation.ddoc import validate_ddoc_file
        result = await validate_ddoc_file(path, options, filename=name)
    elif kind == "xml":
        from remotesign.validation.xades import validate_xml_file
        result = await validate_xml_file(path, options, filename=name)
    elif kind == "cms":
        from remotesign.validation.cades import validate_cms_file
        result = await validate_cms_file(path, options, filename=name)
    else:
        raise ValidationInputError("unsupported_format",
                                   "The document is not a PDF, XML, CMS/PKCS#7 or ASiC file.")
    if not result.signatures and not result.timestamps:
        raise ValidationInputError("not_signed", "The document contains no signatures.")
    from remotesign.validation.qualification import assess
    for signature in result.signatures:
        assess(signature, options)
    return result


def _office_signatures(path: Path) -> bool:
    """Whether ``path`` is an OPC package (Office document) holding package signatures."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return "[Content_Types].xml" in names and any(
        n.startswith("_xmlsignatures/sig") and n.endswith(".xml") for n in names)
