"""pyHanko's PDF hex-string reader, with a bulk fast path.

pyHanko 0.38 reads a hex string ``<...>`` one byte per call (``read_non_whitespace`` then a set
test per digit). A signature's ``/Contents`` is a hex string of tens of thousands of digits,
read whenever a signed PDF is opened: about 60 % of validating a PAdES B-LTA and most of opening
a prepared document went there. Here the string is found in 64 KiB reads; when it holds nothing
but hex digits and PDF whitespace (every real signature), it is decoded in one call and the
stream left just past the ``>``, exactly where pyHanko leaves it. Anything else (a comment, a
stray byte, no closing ``>``) is handed back, from the same position, to pyHanko's own reader,
so its result or its error is unchanged. tests/test_pdf_hexfix.py compares both on hostile
inputs. :func:`install` runs when ``remotesign`` is imported.
"""

from __future__ import annotations

import binascii
from typing import Any, BinaryIO

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PDF_WHITESPACE

_INSTALLED = "_remotesign_hexfix"
_CHUNK = 1 << 16
_ALLOWED = generic.HEX_DIGITS + PDF_WHITESPACE


def read_hex_string(stream: BinaryIO, _original: Any = None) -> Any:
    """``generic.read_hex_string_from_stream`` with the fast path (stream at the ``<``)."""
    original = _original or getattr(generic, "_remotesign_original_hex_reader")
    start = stream.tell()
    stream.read(1)
    parts: list[bytes] = []
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break  # no closing '>': pyHanko raises its own error
        end = chunk.find(b">")
        if end < 0:
            parts.append(chunk)
            continue
        parts.append(chunk[:end])
        body = b"".join(parts)
        if body.translate(None, _ALLOWED):
            break  # a comment or a byte pyHanko refuses: its reader decides
        digits = body.translate(None, PDF_WHITESPACE)
        stream.seek(start + 1 + len(body) + 1)
        return generic.pdf_string(binascii.unhexlify(digits + (b"0" if len(digits) % 2 else b"")))
    stream.seek(start)
    return original(stream)


def install() -> None:
    """Patch pyHanko once per process (idempotent)."""
    if getattr(generic, _INSTALLED, False):
        return
    generic._remotesign_original_hex_reader = generic.read_hex_string_from_stream  # type: ignore[attr-defined]
    generic.read_hex_string_from_stream = read_hex_string  # type: ignore[assignment]
    setattr(generic, _INSTALLED, True)
