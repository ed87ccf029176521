"""Slow, memory-hard hashing of human secrets (passwords, signing PINs).

A PIN has a tiny search space, so its hash must cost memory as well as time to compute: scrypt
(RFC 7914, in the standard library) with N=2^16, r=8 (64 MiB) by default. The parameters are
stored with each hash, so raising them later does not invalidate existing hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

DEFAULT_LOG2_N = 16
_R = 8
_P = 1
_LEN = 32


def _scrypt(secret: str, salt: bytes, log2_n: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=_R, p=_P, dklen=_LEN,
                          maxmem=2 * 128 * _R * n + (1 << 20))


def hash_secret(secret: str, log2_n: int = DEFAULT_LOG2_N) -> str:
    """``scrypt$<log2 N>$<r>$<p>$<salt b64>$<hash b64>``."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, log2_n)
    return "$".join(("scrypt", str(log2_n), str(_R), str(_P), base64.b64encode(salt).decode(),
                     base64.b64encode(digest).decode()))


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, log2_n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt" or int(r) != _R or int(p) != _P:
            return False
        expected = base64.b64decode(digest_b64)
        actual = _scrypt(secret, base64.b64decode(salt_b64), int(log2_n))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, actual)


def dummy_verify(log2_n: int = DEFAULT_LOG2_N) -> None:
    """Spend the same work as a real check, so unknown user names take as long as known ones."""
    _scrypt("", b"\0" * 16, log2_n)
