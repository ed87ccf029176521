"""RFC 5280 name equality, remembered.

asn1crypto's ``Name.__eq__`` prepares every attribute value (RFC 4518 string preparation) on each
call, ~1 ms per comparison; chain building, issuer matching and OCSP/CRL selection compare the
same few names again and again. The answer depends on the two encodings alone (nothing of a
document or a request), so it is kept, bounded, for the process's life.
"""

from __future__ import annotations

from asn1crypto import x509

_KNOWN: dict[tuple[bytes, bytes], bool] = {}
_MAX_KNOWN = 4096


def same_name(a: x509.Name, b: x509.Name) -> bool:
    """``a == b`` (asn1crypto's RFC 5280 equality), remembered by the names' DER; raises what
    ``==`` raises (an answer that raised is not remembered)."""
    key = (a.dump(), b.dump())
    known = _KNOWN.get(key)
    if known is not None:
        return known
    equal = bool(a == b)
    if len(_KNOWN) >= _MAX_KNOWN:
        _KNOWN.clear()
    _KNOWN[key] = equal
    return equal


__all__ = ["same_name"]
