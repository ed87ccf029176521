"""Two asn1crypto 1.5.1 defects that made dump() take seconds to minutes, fixed in place.

Both bite when a structure that was *parsed* (a time-stamp token, a certificate) is embedded in one
that is being *built* (the CMS of a signature, a document time-stamp) and the whole is serialised:

1. A definite length whose last byte is 0x80 is taken for BER's indefinite length. ``dump()``
   tests ``self._header[-1:] == b'\\x80'``; the long form of e.g. 8832 (0x2280) is ``82 22 80`` and
   matches. The value is then re-encoded with ``force=True``: its whole subtree is parsed and
   rebuilt instead of its cached bytes being reused (upstream: wbond/asn1crypto#249, open).
2. Parsing a SEQUENCE whose DEFAULT field is absent (DER forbids encoding a default) creates the
   default value as a freshly *constructed* object, flagged mutated. asn1crypto never clears that
   flag, and every ancestor of a mutated value re-encodes its children each time its contents are
   read, which ``dump()`` does two or three times per level: the cost doubles with every level
   above it. Our TSA's ESSCertIDv2 omits hashAlgorithm (SHA-256 is its DEFAULT), so reading it, or
   the forced parse of (1), puts such a value 17 levels deep in a signature CMS: 2^17 re-encodings.

Together they stalled a PAdES finalize for 20-35 s whenever the CMS's SignedData came out 128
bytes past a multiple of 256, which an ECDSA value (70-72 bytes) hits for some signatures and not
others. The fixes keep every byte the same; :func:`install` runs when ``remotesign`` is imported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from asn1crypto import core

_INSTALLED = "_remotesign_asn1fix"


def definite_der_header(header: bytes) -> bool:
    """True when ``header`` (identifier and length octets, explicit tags first) uses only definite,
    minimally encoded lengths, i.e. rebuilding it from the value gives the same bytes."""
    i, n = 0, len(header)
    while i < n:
        first = header[i]
        i += 1
        if first & 0x1F == 0x1F:  # high tag number: base-128 octets, the last without bit 8
            while i < n and header[i] & 0x80:
                i += 1
            i += 1
        if i >= n:
            return False
        length = header[i]
        i += 1
        if length == 0x80:
            return False  # indefinite (BER)
        if length > 0x80:
            count = length & 0x7F
            octets = header[i:i + count]
            if count == 0x7F or len(octets) != count or octets[0] == 0 or (count == 1 and octets[0] < 0x80):
                return False  # reserved, truncated or not minimal (BER)
            i += count
    return i == n


def _no_false_indefinite(dump: Callable[..., bytes]) -> Callable[..., bytes]:
    @functools.wraps(dump)
    def wrapper(self: Any, force: bool = False) -> bytes:
        header = self._header
        if not force and header is not None and header[-1:] == b"\x80" and definite_der_header(header):
            # asn1crypto would read the last byte as "indefinite" and rebuild the whole subtree; a
            # header that is plain DER is rebuilt to the same bytes from the (cached) contents.
            self._header = None
        return dump(self, force)

    return wrapper


def _defaults_unmutated(parse: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(parse)
    def wrapper(self: Any, recurse: bool = False) -> None:
        parse(self, recurse)
        if not self.children:
            return
        for (_, _, params), child in zip(self._fields, self.children):
            if params and "default" in params and getattr(child, "_mutated", False):
                # an absent DEFAULT value made up by the parser: not a change of the parsed
                # structure. Encode it once (so its cached bytes exist), then unflag it.
                child.dump()
                child._mutated = False

    return wrapper


def install() -> None:
    """Patch asn1crypto once per process (idempotent)."""
    if getattr(core, _INSTALLED, False):
        return
    for cls in (core.Asn1Value, core.Choice, core.Primitive, core.Sequence, core.SequenceOf):
        cls.dump = _no_false_indefinite(cls.__dict__["dump"])  # type: ignore[method-assign]
    for cls in (core.Sequence, core.Set):
        cls._parse_children = _defaults_unmutated(cls.__dict__["_parse_children"])  # type: ignore[attr-defined]
    setattr(core, _INSTALLED, True)
