"""JSON Web Tokens (RFC 7519) signed by an operator key in the key store (ES256, RFC 7518 §3.4).

Used where an API hands its clients a JWT instead of an opaque token: the claims say who the
client is and until when. The key is created at first use, like the audit key, and found again
through a system setting; the private half never leaves the key store (a software key or the
HSM), so nobody with the database alone can mint a token. Verification accepts exactly ES256
with this key: ``alg: none`` or HS256 tricks are refused before any signature check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from remotesign.keystore import KeyAlgorithm, KeyStore, StoredKey
from remotesign.keystore.service_keys import service_key
from remotesign.storage.db import Database

KEY_SETTING = "jwt_key_id"
MAX_TOKEN_CHARS = 4096


class JwtError(Exception):
    """A token that is malformed, not ours, or expired (``reason``: malformed | signature | expired)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text):
        raise JwtError("malformed", "the token is not a JWT")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JwtError("malformed", "the token is not a JWT") from exc


class JwtIssuer:
    def __init__(self, db: Database, keystore: KeyStore, issuer: str) -> None:
        self.db = db
        self.keystore = keystore
        self.issuer = issuer
        self._key: StoredKey | None = None
        self._public: ec.EllipticCurvePublicKey | None = None

    def _ensure(self) -> StoredKey:
        if self._key is None:
            key = service_key(self.db, self.keystore, KEY_SETTING,
                              lambda: self.keystore.create(KeyAlgorithm.EC_P256, "jwt", tenant_id=None))
            public = serialization.load_der_public_key(key.public_key_der)
            assert isinstance(public, ec.EllipticCurvePublicKey)
            self._key, self._public = key, public
        return self._key

    @property
    def key_id(self) -> str:
        return self._ensure().id

    def issue(self, subject: str, claims: dict[str, Any], ttl_seconds: int) -> str:
        key = self._ensure()
        now = int(time.time())
        header = {"alg": "ES256", "typ": "JWT", "kid": key.id}
        payload = {"iss": self.issuer, "sub": subject, "iat": now, "nbf": now, "exp": now + ttl_seconds, **claims}
        signing_input = f"{_b64(json.dumps(header, separators=(',', ':')).encode())}." \
                        f"{_b64(json.dumps(payload, separators=(',', ':')).encode())}"
        der = self.keystore.sign_digest(key, hashlib.sha256(signing_input.encode()).digest(), "sha256")
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def verify(self, token: str, *, leeway_seconds: int = 5) -> dict[str, Any]:
        """The claims of a token this issuer signed and that is valid now; raises JwtError."""
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise JwtError("malformed", "the token is not a JWT")
        head, body, signature = token.split(".")
        try:
            header = json.loads(_unb64(head))
            payload = json.loads(_unb64(body))
        except (ValueError, UnicodeDecodeError) as exc:
            raise JwtError("malformed", "the token is not a JWT") from exc
        if not isinstance(header, dict) or not isinstance(payload, dict):
            raise JwtError("malformed", "the token is not a JWT")
        key = self._ensure()
        if header.get("alg") != "ES256" or header.get("kid") != key.id:
            raise JwtError("signature", "the token was not issued by this service")
        raw = _unb64(signature)
        if len(raw) != 64:
            raise JwtError("signature", "the token's signature is not valid")
        assert self._public is not None
        try:
            self._public.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                                f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            raise JwtError("signature", "the token's signature is not valid") from exc
        if payload.get("iss") != self.issuer:
            raise JwtError("signature", "the token was not issued by this service")
        now = time.time()
        exp, nbf = payload.get("exp"), payload.get("nbf", 0)
        if not isinstance(exp, (int, float)) or not isinstance(nbf, (int, float)):
            raise JwtError("malformed", "the token has no valid expiry")
        if now > exp + leeway_seconds:
            raise JwtError("expired", "the token has expired")
        if now + leeway_seconds < nbf:
            raise JwtError("malformed", "the token is not valid yet")
        return payload
