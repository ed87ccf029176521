"""The small interface every key backend implements: generate a key, sign a pre-computed digest.

Signing a digest (not a message) is the common denominator of every signing flow the service
offers: CalculateDigest/finalize, raw hash signing, CMS signed attributes, TBS structures of the
built-in PKI. Backends return RSA PKCS#1 v1.5 / PSS signatures and DER-encoded ECDSA signatures.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from enum import Enum


class KeyStoreError(Exception):
    """A key operation failed (unknown key, unsupported algorithm, backend failure)."""


class KeyAlgorithm(str, Enum):
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"

    @property
    def is_rsa(self) -> bool:
        return self.value.startswith("rsa")

    @property
    def rsa_bits(self) -> int:
        return int(self.value.split("-")[1])

    @property
    def curve_name(self) -> str:
        return {"ec-p256": "secp256r1", "ec-p384": "secp384r1"}[self.value]

    @property
    def default_hash(self) -> str:
        """Hash that matches the key's strength (ECDSA P-384 pairs with SHA-384)."""
        return "sha384" if self is KeyAlgorithm.EC_P384 else "sha256"


class SignatureScheme(str, Enum):
    RSA_PKCS1V15 = "rsa-pkcs1v15"
    RSA_PSS = "rsa-pss"
    ECDSA = "ecdsa"


HASH_SIZES = {"sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64}


@dataclass(frozen=True)
class GeneratedKey:
    """What a backend hands back: an opaque handle to find the key again, and the public key."""

    handle: bytes
    public_key_der: bytes


class KeyBackend(abc.ABC):
    """A place where private keys live. Implementations must be thread-safe."""

    name: str

    @abc.abstractmethod
    def generate(self, algorithm: KeyAlgorithm, label: str, *, decrypt: bool = False) -> GeneratedKey:
        """Create a new key pair; the private half stays inside the backend. ``decrypt`` makes an
        RSA key for decryption only (a transport key), never for signing."""

    @abc.abstractmethod
    def decrypt_pkcs1v15(self, handle: bytes, algorithm: KeyAlgorithm, ciphertext: bytes) -> bytes:
        """RSAES-PKCS1-v1_5 decryption with a key generated with ``decrypt=True``."""

    @abc.abstractmethod
    def sign_digest(
        self,
        handle: bytes,
        algorithm: KeyAlgorithm,
        digest: bytes,
        hash_name: str,
        scheme: SignatureScheme,
    ) -> bytes:
        """Sign an already computed ``digest`` of ``hash_name``; ECDSA output is DER."""

    def delete(self, handle: bytes) -> None:  # noqa: B027 - optional for backends
        """Destroy the private key (backends that cannot destroy keys keep this no-op)."""

    def close(self) -> None:  # noqa: B027 - optional for backends
        """Release sessions and other resources."""


def check_digest(digest: bytes, hash_name: str) -> None:
    size = HASH_SIZES.get(hash_name)
    if size is None:
        raise KeyStoreError(f"unsupported hash algorithm {hash_name!r}")
    if len(digest) != size:
        raise KeyStoreError(f"a {hash_name} digest has {size} bytes, got {len(digest)}")


def check_scheme(algorithm: KeyAlgorithm, scheme: SignatureScheme) -> None:
    if algorithm.is_rsa and scheme is SignatureScheme.ECDSA:
        raise KeyStoreError("ECDSA needs an EC key")
    if not algorithm.is_rsa and scheme is not SignatureScheme.ECDSA:
        raise KeyStoreError(f"{scheme.value} needs an RSA key")
