"""Minimal, valid PDF files for tests and benchmarks, written directly (no PDF library), streaming:
``pages`` pages of text plus optional incompressible padding so files of any size can be made
without holding them in memory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


def write_pdf(out: BinaryIO, pages: int = 1, text: str = "remotesign test document",
              padding_bytes: int = 0) -> None:
    offsets: list[int] = []
    pos = 0

    def emit(data: bytes) -> None:
        nonlocal pos
        out.write(data)
        pos += len(data)

    def obj(num: int, body: bytes) -> None:
        offsets.append(pos)
        emit(b"%d 0 obj\n" % num + body + b"\nendobj\n")

    emit(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    page_ids = [4 + 2 * i for i in range(pages)]
    obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = b" ".join(b"%d 0 R" % p for p in page_ids)
    obj(2, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages))
    obj(3, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, pid in enumerate(page_ids):
        content = b"BT /F1 18 Tf 72 720 Td (%s - page %d) Tj ET" % (text.encode("latin-1", "replace"), i + 1)
        obj(pid, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >>"
                 b" /Contents %d 0 R >>" % (pid + 1))
        obj(pid + 1, b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    count = 4 + 2 * pages
    if padding_bytes:
        offsets.append(pos)
        emit(b"%d 0 obj\n<< /Length %d >>\nstream\n" % (count, padding_bytes))
        left = padding_bytes
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            emit(chunk)
            left -= len(chunk)
        emit(b"\nendstream\nendobj\n")
        count += 1
    xref = pos
    emit(b"xref\n0 %d\n0000000000 65535 f \n" % count)
    for off in offsets:
        emit(b"%010d 00000 n \n" % off)
    emit(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (count, xref))


def make_pdf(path: Path, **kwargs: object) -> Path:
    with open(path, "wb") as fh:
        write_pdf(fh, **kwargs)  # type: ignore[arg-type]
    return path


def pdf_bytes(**kwargs: object) -> bytes:
    import io

    buf = io.BytesIO()
    write_pdf(buf, **kwargs)  # type: ignore[arg-type]
    return buf.getvalue()
