"""Loading a signer's public key from its SubjectPublicKeyInfo, as leniently as the field needs.

Some real certificates carry an RSA modulus encoded as no strict DER reader takes it: with a
superfluous leading zero byte (a non-minimal INTEGER; Estonian ID cards of the 3.4 generation,
whose 2,047-bit keys made the card's software pad the modulus), or without the zero byte a
positive INTEGER needs when its top bit is set (so it reads as negative). OpenSSL-based readers
(and cryptography) refuse the first and misread the second, so every signature of such a card
looked broken; digidoc4j and EU DSS (BouncyCastle) accept both, reading the modulus unsigned. The key itself is
well defined, so it is rebuilt from its numbers: the modulus and exponent mean exactly what they
say, whatever their encoding. Nothing else is relaxed (EC points, parameters, other algorithms).
"""

from __future__ import annotations

from asn1crypto import keys
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes


def minimal_rsa_key_info(info: keys.PublicKeyInfo) -> keys.PublicKeyInfo | None:
    """``info`` re-encoded in DER (minimal integers) when it is an RSA key that needs it; else None."""
    if info.algorithm not in ("rsa", "rsassa_pss"):
        return None
    try:
        numbers = info["public_key"].parsed
        modulus, exponent = int(numbers["modulus"].native), int(numbers["public_exponent"].native)
        if modulus <= 0:  # the sign byte is missing: the octets are the unsigned modulus
            modulus = int.from_bytes(numbers["modulus"].contents, "big")
    except (ValueError, TypeError, KeyError):
        return None
    if modulus <= 0 or exponent <= 0:
        return None
    rebuilt = keys.PublicKeyInfo({"algorithm": {"algorithm": "rsa"},
                                  "public_key": keys.RSAPublicKey({"modulus": modulus, "public_exponent": exponent})})
    return rebuilt if rebuilt.dump() != info.dump() else None


def load_public_key(info: keys.PublicKeyInfo) -> PublicKeyTypes:
    """The key of ``info``; ValueError (or UnsupportedAlgorithm) when it cannot be used."""
    try:
        return serialization.load_der_public_key(info.dump())
    except (ValueError, UnsupportedAlgorithm):
        fixed = minimal_rsa_key_info(info)
        if fixed is None:
            raise
        key = serialization.load_der_public_key(fixed.dump())
        assert isinstance(key, rsa.RSAPublicKey)
        return key
