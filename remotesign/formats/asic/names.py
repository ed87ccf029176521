"""Entry-name rules and media types shared by the ASiC-E reader and writer.

Names come from untrusted containers (and from relying parties when writing), so the same rules
apply in both directions: one canonical spelling per entry, nothing that escapes an extraction
directory, nothing that two file systems would map to the same file."""

from __future__ import annotations

import mimetypes
import re
import unicodedata

from ..base import FormatError

MIMETYPE = "application/vnd.etsi.asic-e+zip"
MIMETYPE_NAME = "mimetype"
META_INF = "META-INF/"
MANIFEST_NAME = "META-INF/manifest.xml"
MAX_NAME_BYTES = 512
MAX_MEDIA_TYPE_CHARS = 255

_DRIVE = re.compile(r"^[A-Za-z]:")
_NONCHARACTERS = frozenset("\ufffe\uffff")

#: Extension -> media type; checked before :mod:`mimetypes` so results do not depend on the host.
_MEDIA_TYPES = {
    "pdf": "application/pdf",
    "xml": "application/xml",
    "txt": "text/plain",
    "csv": "text/csv",
    "html": "text/html",
    "htm": "text/html",
    "json": "application/json",
    "rtf": "application/rtf",
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "zip": "application/zip",
    "gz": "application/gzip",
    "tgz": "application/gzip",
    "bz2": "application/x-bzip2",
    "xz": "application/x-xz",
    "7z": "application/x-7z-compressed",
    "p7s": "application/pkcs7-signature",
    "edoc": MIMETYPE,
    "asice": MIMETYPE,
    "sce": MIMETYPE,
    "bdoc": MIMETYPE,
    "asics": "application/vnd.etsi.asic-s+zip",
    "scs": "application/vnd.etsi.asic-s+zip",
}

#: Media types whose content is already compressed: written STORED, deflating them wastes CPU.
_PRECOMPRESSED = frozenset(
    {
        MIMETYPE,
        "application/vnd.etsi.asic-s+zip",
        "application/zip",
        "application/gzip",
        "application/x-bzip2",
        "application/x-xz",
        "application/x-7z-compressed",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "audio/mpeg",
        "video/mp4",
        "video/mpeg",
        "video/webm",
        _MEDIA_TYPES["docx"],
        _MEDIA_TYPES["xlsx"],
        _MEDIA_TYPES["pptx"],
        _MEDIA_TYPES["odt"],
        _MEDIA_TYPES["ods"],
        _MEDIA_TYPES["odp"],
    }
)


def _extension(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and stem else ""


def guess_mime_type(name: str) -> str:
    """Media type from the file extension: the built-in table, then :mod:`mimetypes`, else
    ``application/octet-stream``."""
    ext = _extension(name)
    if not ext:
        return "application/octet-stream"
    if ext in _MEDIA_TYPES:
        return _MEDIA_TYPES[ext]
    guessed, encoding = mimetypes.guess_type("file." + ext, strict=False)
    if guessed and encoding is None:
        return guessed
    return "application/octet-stream"


def is_precompressed(name: str, media_type: str) -> bool:
    return media_type.lower() in _PRECOMPRESSED or guess_mime_type(name) in _PRECOMPRESSED


def _unsafe(name: str, why: str) -> FormatError:
    return FormatError("unsafe_entry_name", f"unsafe entry name {name!r}: {why}")


def check_name(name: str) -> None:
    """Raise ``unsafe_entry_name`` unless ``name`` is a relative, canonical, portable ZIP path
    (a trailing ``/`` marks a directory)."""
    if not name:
        raise _unsafe(name, "empty")
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in _NONCHARACTERS:
            raise _unsafe(name, f"control or invalid character U+{ord(ch):04X}")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise _unsafe(name[:64] + "...", f"longer than {MAX_NAME_BYTES} bytes")
    if "\\" in name:
        raise _unsafe(name, "backslash")
    if name.startswith("/"):
        raise _unsafe(name, "absolute path")
    if _DRIVE.match(name):
        raise _unsafe(name, "drive letter")
    body = name[:-1] if name.endswith("/") else name
    for segment in body.split("/"):
        if segment in ("", ".", ".."):
            raise _unsafe(name, "empty, '.' or '..' path segment")


def name_key(name: str) -> str:
    """Identity of a name on case-insensitive, normalising file systems: NFC + case folding,
    without a directory's trailing slash. Two entries with the same key are duplicates."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())
    return folded[:-1] if folded.endswith("/") else folded


def check_media_type(name: str, media_type: str) -> None:
    """A media type the manifest can carry (printable, XML-compatible, bounded)."""
    if (
        not media_type
        or len(media_type) > MAX_MEDIA_TYPE_CHARS
        or any(unicodedata.category(ch) in ("Cc", "Cs") or ch in _NONCHARACTERS for ch in media_type)
    ):
        raise FormatError("invalid_manifest", f"unusable media type {media_type[:64]!r} for {name!r}")
