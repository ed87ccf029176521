"""Untrusted strings as a person sees them: control, format and bidi characters made visible,
length bounded.

Document names, client names, identity descriptions, labels and user names come from relying
parties or users. Shown raw, ``"invoice\\u202Efdp.exe"`` reads as ``invoiceexe.pdf`` (a right-to-left
override reverses what follows), zero-width and line-separator characters hide or fake text, and a
10,000-character name pushes the rest of the page away. Every page shows such strings through
``visible`` (``html_pages.shown`` adds HTML escaping), so a consent page always shows what will
really be signed and by whom.
"""

from __future__ import annotations

import unicodedata

MAX_CHARS = 120
ELLIPSIS = "…"
# Cc controls, Cf format characters (bidi embeddings, overrides and isolates, LRM/RLM/ALM,
# zero-width space/joiners, BOM, soft hyphen, invisible operators), Zl/Zp line and paragraph
# separators, Co private use, Cs lone surrogates, Cn unassigned code points.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})


def escape_char(ch: str) -> str:
    """``⟨U+202E⟩`` for a character that would be invisible or reorder the text; the character otherwise."""
    if unicodedata.category(ch) in _INVISIBLE_CATEGORIES or unicodedata.bidirectional(ch) in (
            "LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"):
        return f"⟨U+{ord(ch):04X}⟩"
    return ch


def visible(value: object, limit: int = MAX_CHARS) -> str:
    """``value`` as text with every invisible or reordering character shown as ``⟨U+<code point>⟩ (e.g. ⟨U+202E⟩)``, cut
    to at most ``limit`` characters (escapes included) with an ellipsis. Not HTML-escaped."""
    text = "" if value is None else str(value)
    out: list[str] = []
    length = 0
    for ch in text:
        piece = escape_char(ch)
        if length + len(piece) > limit:
            return "".join(out) + ELLIPSIS
        out.append(piece)
        length += len(piece)
    return "".join(out)
