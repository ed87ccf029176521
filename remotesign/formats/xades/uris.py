"""File names <-> ds:Reference URIs. ASiC-E references files by relative URI; names may contain
spaces and non-ASCII letters, so they are percent-encoded as UTF-8 (RFC 3986), '/' kept."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

from remotesign.formats.base import FormatError


def check_name(name: str) -> str:
    """A container entry name we are willing to reference."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
        raise FormatError("invalid_argument", f"invalid data object name {name!r}")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise FormatError("invalid_argument", f"control character in data object name {name!r}")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise FormatError("invalid_argument", f"data object name {name!r} has an empty or relative segment")
    return name


def name_to_uri(name: str) -> str:
    # quote() encodes everything outside the unreserved set as UTF-8 octets: ' ' -> %20, 'ā' -> %C4%81.
    return quote(check_name(name), safe="/")


def uri_to_name(uri: str) -> str | None:
    """The container name a reference points at, or None for a same-document reference."""
    if uri.startswith("#"):
        return None
    if not uri:
        raise FormatError("invalid_xades", "a reference to the whole document is not supported")
    parts = urlsplit(uri)
    if parts.scheme or parts.netloc or parts.query or parts.fragment:
        raise FormatError("invalid_xades", f"reference URI {uri!r} does not name a container file")
    try:
        name = unquote(uri, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise FormatError("invalid_xades", f"reference URI {uri!r} is not UTF-8") from None
    # An absolute path ("/file.txt") names the file from the package root (RFC 3986 §5.2 with
    # the container as the base), as libdigidocpp reads it.
    return name[1:] if name.startswith("/") and len(name) > 1 else name
