"""The service's one DER writer: the few encoders needed where structures are assembled from
pre-encoded parts (RFC 3161 tokens, OCSP responses, PAdES signed attributes, CAdES extension).

The TSA and the OCSP responder answer hundreds of requests a second with structures that are
constant apart from a handful of fields. Building them with asn1crypto costs ~1 ms each (most of
it re-checking and re-serialising constant parts); concatenating pre-encoded parts around the
variable fields costs microseconds. Only definite-length DER is produced here; the tests compare
every assembled structure with asn1crypto's encoding of the same values, byte for byte.
"""

from __future__ import annotations

from datetime import datetime, timezone

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
OCTET_STRING = 0x04
OID = 0x06
ENUMERATED = 0x0A
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18


def length(n: int) -> bytes:
    """DER length octets: short form below 128, else the minimal long form."""
    if n < 0x80:
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def header(tag: int | bytes, size: int) -> bytes:
    """Identifier octet(s) ``tag`` and the length octets of ``size`` content bytes."""
    return (bytes((tag,)) if isinstance(tag, int) else tag) + length(size)


def tlv(tag: int | bytes, *contents: bytes) -> bytes:
    """One element: identifier ``tag``, then the length of and the contents."""
    body = b"".join(contents)
    return header(tag, len(body)) + body


def integer(value: int) -> bytes:
    """INTEGER in minimal two's complement (negative values too: a nonce may be one)."""
    size = (value + (value < 0)).bit_length() // 8 + 1
    return tlv(INTEGER, value.to_bytes(size, "big", signed=True))


def generalized_time(value: datetime) -> bytes:
    """GeneralizedTime in UTC; milliseconds when present, without trailing zeros (X.690 11.7)."""
    value = value.astimezone(timezone.utc)
    text = value.strftime("%Y%m%d%H%M%S")
    millis = value.microsecond // 1000
    if millis:
        text += "." + f"{millis:03d}".rstrip("0")
    return tlv(GENERALIZED_TIME, (text + "Z").encode("ascii"))


def utc_time(value: datetime) -> bytes:
    """UTCTime (whole seconds) for 1950-2049, as CMS signing-time requires in that range."""
    value = value.astimezone(timezone.utc)
    if not 1950 <= value.year < 2050:
        raise ValueError("UTCTime covers 1950-2049 only")
    return tlv(UTC_TIME, value.strftime("%y%m%d%H%M%SZ").encode("ascii"))


def retag(encoded: bytes, tag: int) -> bytes:
    """``encoded`` (one TLV with a one-octet tag) under another identifier octet: an IMPLICIT tag
    put on, or taken off, without touching length or contents."""
    return bytes((tag,)) + encoded[1:]


def set_of(*members: bytes) -> bytes:
    """SET OF with its members in DER order (ascending encodings, X.690 11.6)."""
    return tlv(SET, *sorted(members))


__all__ = ["generalized_time", "header", "integer", "length", "retag", "set_of", "tlv", "utc_time"]
