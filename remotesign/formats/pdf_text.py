"""Where a piece of text stands on a PDF page: the anchor a visible signature is placed by
(``POSITIONIDENTIFIER``-style placement).

pdfminer.six does the reading: it decodes the fonts' encodings and ToUnicode maps (Vietnamese text
included) and gives every glyph its box, which is what finding an anchor takes; pyHanko reads and
writes PDFs but does not extract text. The search is bounded (pages scanned, time per document)
and any failure to read the page is "not found", never an exception from the parser.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

MAX_PAGES = 500
MAX_SECONDS = 20.0


@dataclass(frozen=True)
class Found:
    page: int  # 1-based
    x0: float
    y0: float
    x1: float
    y1: float


def _norm(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _chars(item: Any) -> Iterator[Any]:
    from pdfminer.layout import LTChar, LTContainer

    if isinstance(item, LTChar):
        yield item
    elif isinstance(item, LTContainer):
        for child in item:
            yield from _chars(child)


def _lines(item: Any) -> Iterator[Any]:
    from pdfminer.layout import LTContainer, LTTextLine

    if isinstance(item, LTTextLine):
        yield item
    elif isinstance(item, LTContainer):
        for child in item:
            yield from _lines(child)


def find_text(source: BinaryIO, needle: str, pages: Iterable[int] | None = None) -> Found | None:
    """The first place ``needle`` appears on the given 1-based ``pages`` (all when None, up to
    MAX_PAGES), as the box of its glyphs in PDF points; None when it is not there or the pages
    cannot be read."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams

    wanted = _norm(needle).strip()
    if not wanted:
        return None
    numbers = None if pages is None else sorted({p - 1 for p in pages if 1 <= p <= MAX_PAGES})
    deadline = time.monotonic() + MAX_SECONDS
    source.seek(0)
    try:
        for index, page in enumerate(extract_pages(source, page_numbers=numbers, maxpages=MAX_PAGES,
                                                   laparams=LAParams())):
            page_number = (numbers[index] if numbers is not None else index) + 1
            for line in _lines(page):
                chars = [c for c in _chars(line)]
                text = _norm("".join(c.get_text() for c in chars))
                at = text.find(wanted)
                if at < 0:
                    continue
                # map the match back to glyphs (NFC may merge marks: fall back to the line's box)
                hit = chars[at:at + len(wanted)] if len(text) == len(chars) else chars
                return Found(page_number, min(c.x0 for c in hit), min(c.y0 for c in hit),
                             max(c.x1 for c in hit), max(c.y1 for c in hit))
            if time.monotonic() > deadline:
                return None
    except Exception:  # noqa: BLE001 - pdfminer raises many kinds on a hostile page: it is "not found"
        return None
    return None
