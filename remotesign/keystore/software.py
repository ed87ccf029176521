"""Software keys: PKCS#8 DER encrypted with AES-256-GCM under a master key kept outside the
database (a file in ``REMOTESIGN_HOME`` by default, or an environment variable).

Decrypted keys are cached as pyca objects: parsing an RSA key costs ~50 ms (OpenSSL 3 key check),
far more than the signature itself.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from remotesign.keystore.base import (
    EncryptionPadding,
    GeneratedKey,
    ImportableKey,
    KeyAlgorithm,
    KeyBackend,
    KeyStoreError,
    SignatureScheme,
    algorithm_of,
    check_digest,
    check_scheme,
)

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_FORMAT_V1 = b"RSK1"
_AAD = b"remotesign software key v1"


def load_or_create_master_key(path: Path, b64_value: str | None) -> bytes:
    """The 32-byte master key: from the environment if given, else from (or into) ``path``."""
    if b64_value:
        key = base64.b64decode(b64_value)
        if len(key) != 32:
            raise KeyStoreError("REMOTESIGN_MASTER_KEY must be 32 bytes, base64-encoded")
        return key
    if path.exists():
        key = base64.b64decode(path.read_text().strip())
        if len(key) != 32:
            raise KeyStoreError(f"master key file {path} does not hold 32 bytes")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(key).decode() + "\n")
    return key


def pyca_hash(hash_name: str) -> hashes.HashAlgorithm:
    try:
        return _HASHES[hash_name]()
    except KeyError as exc:
        raise KeyStoreError(f"unsupported hash algorithm {hash_name!r}") from exc


class SoftwareKeyBackend(KeyBackend):
    name = "software"
    releases_keys = True

    def __init__(self, master_key: bytes, cache_size: int = 1024) -> None:
        self._aead = AESGCM(master_key)
        self._cache: OrderedDict[bytes, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def generate(self, algorithm: KeyAlgorithm, label: str, *, decrypt: bool = False) -> GeneratedKey:
        private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        if algorithm.is_rsa:
            private = rsa.generate_private_key(public_exponent=65537, key_size=algorithm.rsa_bits)
        else:
            curve = ec.SECP256R1() if algorithm is KeyAlgorithm.EC_P256 else ec.SECP384R1()
            private = ec.generate_private_key(curve)
        return self._seal(private)

    def import_private_key(self, private_key: ImportableKey, label: str) -> GeneratedKey:
        """Seal a user's key exactly like a generated one, so nothing downstream can tell them apart."""
        algorithm_of(private_key)  # refuses sizes/curves the service does not sign with
        return self._seal(private_key)

    def _seal(self, private: ImportableKey) -> GeneratedKey:
        """The handle: PKCS#8 DER under AES-256-GCM with the master key; the clear DER is not kept."""
        pkcs8 = private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        nonce = secrets.token_bytes(12)
        handle = _FORMAT_V1 + nonce + self._aead.encrypt(nonce, pkcs8, _AAD)
        public_der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return GeneratedKey(handle=handle, public_key_der=public_der)

    def _private_key(self, handle: bytes) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
        with self._lock:
            cached = self._cache.get(handle)
            if cached is not None:
                self._cache.move_to_end(handle)
                return cached
        if not handle.startswith(_FORMAT_V1) or len(handle) < 4 + 12 + 16:
            raise KeyStoreError("not a software key handle")
        nonce, sealed = handle[4:16], handle[16:]
        try:
            pkcs8 = self._aead.decrypt(nonce, sealed, _AAD)
        except InvalidTag as exc:
            raise KeyStoreError("software key cannot be decrypted: wrong master key?") from exc
        key = serialization.load_der_private_key(pkcs8, password=None)
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise KeyStoreError("unsupported key type")
        with self._lock:
            self._cache[handle] = key
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return key

    def sign_digest(
        self,
        handle: bytes,
        algorithm: KeyAlgorithm,
        digest: bytes,
        hash_name: str,
        scheme: SignatureScheme,
    ) -> bytes:
        check_digest(digest, hash_name)
        check_scheme(algorithm, scheme)
        key = self._private_key(handle)
        prehashed = utils.Prehashed(pyca_hash(hash_name))
        if isinstance(key, rsa.RSAPrivateKey):
            pad: padding.AsymmetricPadding
            if scheme is SignatureScheme.RSA_PSS:
                pad = padding.PSS(mgf=padding.MGF1(pyca_hash(hash_name)), salt_length=len(digest))
            else:
                pad = padding.PKCS1v15()
            return key.sign(digest, pad, prehashed)
        return key.sign(digest, ec.ECDSA(prehashed))

    def sign_digests(self, handle: bytes, algorithm: KeyAlgorithm,
                     items: Sequence[tuple[bytes, str, SignatureScheme]]) -> list[bytes]:
        """A batch: every item is checked first, the key is found once, and the padding and hash
        objects are made once per (hash, scheme)."""
        checked = set()
        for digest, hash_name, scheme in items:
            if (len(digest), hash_name, scheme) not in checked:
                check_digest(digest, hash_name)
                check_scheme(algorithm, scheme)
                checked.add((len(digest), hash_name, scheme))
        key = self._private_key(handle)
        params: dict[tuple[str, SignatureScheme, int], tuple[Any, ...]] = {}
        out = []
        if isinstance(key, rsa.RSAPrivateKey):
            rsa_sign = key.sign
            for digest, hash_name, scheme in items:
                p = params.get((hash_name, scheme, len(digest)))
                if p is None:
                    prehashed = utils.Prehashed(pyca_hash(hash_name))
                    pad: padding.AsymmetricPadding = (
                        padding.PSS(mgf=padding.MGF1(pyca_hash(hash_name)), salt_length=len(digest))
                        if scheme is SignatureScheme.RSA_PSS else padding.PKCS1v15())
                    p = params[(hash_name, scheme, len(digest))] = (pad, prehashed)
                out.append(rsa_sign(digest, *p))
            return out
        ec_sign = key.sign
        for digest, hash_name, scheme in items:
            p = params.get((hash_name, scheme, 0))
            if p is None:
                p = params[(hash_name, scheme, 0)] = (ec.ECDSA(utils.Prehashed(pyca_hash(hash_name))),)
            out.append(ec_sign(digest, *p))
        return out

    def decrypt(self, handle: bytes, algorithm: KeyAlgorithm, ciphertext: bytes,
                padding_kind: EncryptionPadding = EncryptionPadding.PKCS1V15) -> bytes:
        key = self._private_key(handle)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyStoreError("decryption needs an RSA key")
        pad: padding.AsymmetricPadding = padding.PKCS1v15()
        if padding_kind is not EncryptionPadding.PKCS1V15:
            pad = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
        try:
            return key.decrypt(ciphertext, pad)
        except ValueError as exc:
            raise KeyStoreError("decryption failed") from exc

    def export_private_key(self, handle: bytes) -> ImportableKey:
        return self._private_key(handle)

    def delete(self, handle: bytes) -> None:
        with self._lock:
            self._cache.pop(handle, None)
