"""RSASSA-PKCS1-v1_5 verification that also takes a DigestInfo without the NULL parameters.

RFC 8017 §9.2 note 2: the AlgorithmIdentifier of the DigestInfo "should" carry NULL parameters,
yet some signers (older smart-card middleware, some Latvian eID software) leave them out, and
EU DSS (BouncyCastle), the JDK and digidoc4j accept both forms. OpenSSL accepts only the NULL
form. Nothing is parsed leniently here: the whole expected encoded message is rebuilt, once per
form, and compared byte for byte with the one the signature opens to, so no other encoding
(garbage after the digest, short padding, another digest) can pass."""

from __future__ import annotations

import hashlib
import hmac

from asn1crypto import algos, core
from cryptography.hazmat.primitives.asymmetric import rsa

_MIN_PADDING = 8


def digest_infos(digest_algorithm: str, digest: bytes) -> list[bytes]:
    """The DigestInfo of ``digest`` with NULL parameters, then with the parameters absent (built
    by hand: asn1crypto would add the NULL)."""
    oid = algos.DigestAlgorithmId(digest_algorithm).dump()
    octets = core.OctetString(digest).dump()
    return [tlv(0x30, tlv(0x30, oid + parameters) + octets) for parameters in (b"\x05\x00", b"")]


def pkcs1v15_verifies(key: rsa.RSAPublicKey, signature: bytes, digest_algorithm: str, message: bytes, *,
                      prehashed: bool = False) -> bool:
    """Whether ``signature`` is ``key``'s PKCS#1 v1.5 signature of ``message`` (or of the digest
    ``message`` when ``prehashed``), with either DigestInfo form."""
    digest = message if prehashed else hashlib.new(digest_algorithm, message).digest()
    numbers = key.public_numbers()
    size = (numbers.n.bit_length() + 7) // 8
    value = int.from_bytes(signature, "big")
    if len(signature) != size or value >= numbers.n:
        return False
    encoded = pow(value, numbers.e, numbers.n).to_bytes(size, "big")
    for digest_info in digest_infos(digest_algorithm, digest):
        padding = size - 3 - len(digest_info)
        if padding >= _MIN_PADDING and hmac.compare_digest(b"\x00\x01" + b"\xff" * padding + b"\x00" + digest_info,
                                                           encoded):
            return True
    return False


def tlv(tag: int, body: bytes) -> bytes:
    """A DER TLV with a one-octet tag."""
    length = len(body)
    if length < 0x80:
        return bytes([tag, length]) + body
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(encoded)]) + encoded + body


__all__ = ["digest_infos", "pkcs1v15_verifies", "tlv"]
