"""A small BER/DER tag-length-value reader over seekable files and a DER writer of headers.

CAdES extension must never re-encode what is signed, and an attached signature may carry
100 MB of content: so a CMS is walked as TLVs with their byte offsets, the parts that change
(certificates, CRLs, signer infos) are read into memory, and everything else is copied as it
is. Works on DER and on BER (indefinite lengths, constructed strings); every length is checked
against the file, so garbage or a truncated file is a clear FormatError, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from remotesign import der as _der
from remotesign.formats.base import FormatError

#: Nesting deeper than this is not a signature but an attack on the reader.
MAX_DEPTH = 48
_HEADER_MAX = 2 + 8 + 8


def invalid(message: str) -> FormatError:
    return FormatError("invalid_cms", f"not a readable CMS signature: {message}")


@dataclass(frozen=True)
class Tlv:
    """One element: ``tag`` is the identifier octet(s) as bytes (e.g. b"\\x30"), ``start`` the
    offset of its first octet, ``body`` of its contents, ``end`` just past it (after the
    end-of-contents octets of an indefinite length)."""

    tag: bytes
    start: int
    body: int
    end: int
    indefinite: bool

    @property
    def constructed(self) -> bool:
        return bool(self.tag[0] & 0x20)

    @property
    def body_end(self) -> int:
        return self.end - 2 if self.indefinite else self.end

    @property
    def size(self) -> int:
        return self.end - self.start


class Reader:
    """Positional reads of one seekable binary file (or BytesIO)."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        try:
            self.size = fp.seek(0, 2)
        except (OSError, ValueError) as exc:
            raise invalid(f"the file cannot be read ({exc})") from exc

    def read(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise invalid("an element reaches past the end of the file")
        self.fp.seek(offset)
        data = self.fp.read(n)
        if len(data) != n:
            raise invalid("the file is truncated")
        return data

    def header(self, offset: int, limit: int) -> tuple[bytes, int, int | None]:
        """(tag octets, header length, content length or None for indefinite) at ``offset``;
        the element must lie before ``limit``."""
        head = self.fp_peek(offset, min(_HEADER_MAX, limit - offset))
        return parse_header(head, limit - offset)

    def fp_peek(self, offset: int, n: int) -> bytes:
        if offset < 0 or offset >= self.size or n <= 0:
            raise invalid("an element starts past the end of its container")
        self.fp.seek(offset)
        return self.fp.read(min(n, self.size - offset))

    def tlv(self, offset: int, limit: int | None = None, depth: int = 0) -> Tlv:
        """The element at ``offset``, which must end by ``limit`` (default: the file's end)."""
        limit = self.size if limit is None else limit
        tag, header_len, length = self.header(offset, limit)
        body = offset + header_len
        if length is not None:
            end = body + length
            if end > limit:
                raise invalid(f"an element of {length} bytes at offset {offset} does not fit its container")
            return Tlv(tag, offset, body, end, False)
        if not tag[0] & 0x20:
            raise invalid(f"a primitive element at offset {offset} has an indefinite length")
        if depth >= MAX_DEPTH:
            raise invalid("elements are nested too deeply")
        pos = body
        while True:
            if pos + 2 > limit:
                raise invalid("an indefinite-length element is not terminated")
            if self.read(pos, 2) == b"\x00\x00":
                return Tlv(tag, offset, body, pos + 2, True)
            pos = self.tlv(pos, limit, depth + 1).end

    def children(self, parent: Tlv, depth: int = 0) -> Iterator[Tlv]:
        if not parent.constructed:
            raise invalid(f"the element at offset {parent.start} has no children")
        pos, end = parent.body, parent.body_end
        while pos < end:
            child = self.tlv(pos, end, depth + 1)
            yield child
            pos = child.end

    def raw(self, element: Tlv) -> bytes:
        return self.read(element.start, element.size)

    def octets(self, element: Tlv, chunk: int = 1 << 20, depth: int = 0) -> Iterator[bytes]:
        """The value octets of an OCTET STRING, primitive or constructed (BER), in chunks."""
        if element.tag not in (b"\x04", b"\x24"):
            raise invalid(f"expected an OCTET STRING at offset {element.start}")
        if element.tag == b"\x04":
            pos = element.body
            while pos < element.end:
                n = min(chunk, element.end - pos)
                yield self.read(pos, n)
                pos += n
            return
        if depth >= MAX_DEPTH:
            raise invalid("constructed OCTET STRING nested too deeply")
        for child in self.children(element, depth):
            yield from self.octets(child, chunk, depth + 1)


def parse_header(head: bytes, available: int) -> tuple[bytes, int, int | None]:
    if len(head) < 2:
        raise invalid("truncated element header")
    i = 1
    if head[0] & 0x1F == 0x1F:  # high tag number
        while i < len(head) and head[i] & 0x80:
            i += 1
        i += 1
        if i > 4:
            raise invalid("tag number too large")
    tag = head[:i]
    if i >= len(head):
        raise invalid("truncated element header")
    first = head[i]
    i += 1
    if first < 0x80:
        length: int | None = first
    elif first == 0x80:
        length = None
    else:
        count = first & 0x7F
        if count > 8 or i + count > len(head):
            raise invalid("unsupported or truncated length")
        length = int.from_bytes(head[i:i + count], "big")
        i += count
    if i > available:
        raise invalid("element header runs past its container")
    return tag, i, length


# --- writing ------------------------------------------------------------------------------------

# One DER writer for the whole service (remotesign/der.py); re-exported for the CAdES modules.
header = _der.header
tlv = _der.tlv
retag = _der.retag


def split(data: bytes) -> list[bytes]:
    """The TLVs of a concatenation (the contents of a SET / SEQUENCE held in memory)."""
    import io

    reader = Reader(io.BytesIO(data))
    out, pos = [], 0
    while pos < len(data):
        element = reader.tlv(pos)
        out.append(data[element.start:element.end])
        pos = element.end
    return out


def children_of(encoded: bytes) -> list[bytes]:
    """The child TLVs of one constructed TLV held in memory (definite or indefinite length)."""
    import io

    reader = Reader(io.BytesIO(encoded))
    top = reader.tlv(0)
    if top.end != len(encoded):
        raise invalid("trailing bytes after an element")
    return [encoded[c.start:c.end] for c in reader.children(top)]


def octets_of(encoded: bytes) -> bytes:
    """The value of one OCTET STRING held in memory (primitive or constructed)."""
    import io

    reader = Reader(io.BytesIO(encoded))
    return b"".join(reader.octets(reader.tlv(0)))
