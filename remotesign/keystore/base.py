"""The small interface every key backend implements: generate (or import) a key, sign a
pre-computed digest.

Signing a digest (not a message) is the common denominator of every signing flow the service
offers: CalculateDigest/finalize, raw hash signing, CMS signed attributes, TBS structures of the
built-in PKI. Backends return RSA PKCS#1 v1.5 / PSS signatures and DER-encoded ECDSA signatures.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, TypeAlias, runtime_checkable

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes


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


class EncryptionPadding(str, Enum):
    """RSA encryption paddings a transport key decrypts: what clients encrypt e-seal passwords with
    (the vendor's sample uses PKCS#1 v1.5; its text ("SHA1 padding") and PHP's
    OPENSSL_PKCS1_OAEP_PADDING mean OAEP with SHA-1, the only OAEP hash SoftHSM2 decrypts)."""

    PKCS1V15 = "pkcs1v15"
    OAEP_SHA1 = "oaep-sha1"


ImportableKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
"""Private keys a backend can take in: the same families and sizes it can generate."""

_RSA_SIZES = {2048: KeyAlgorithm.RSA_2048, 3072: KeyAlgorithm.RSA_3072, 4096: KeyAlgorithm.RSA_4096}
_EC_CURVES = {"secp256r1": KeyAlgorithm.EC_P256, "secp384r1": KeyAlgorithm.EC_P384}


def algorithm_of(private_key: PrivateKeyTypes) -> KeyAlgorithm:
    """The ``KeyAlgorithm`` of a key brought in from outside (e.g. a user's PKCS#12).

    Imported keys must fit the same short list as generated ones, so every signing flow, profile
    and hash choice that works for generated keys works for them too; anything else is refused
    here, before a backend stores it.
    """
    if isinstance(private_key, rsa.RSAPrivateKey):
        bits = private_key.key_size
        found = _RSA_SIZES.get(bits)
        if found is None:
            raise KeyStoreError(f"RSA-{bits} keys are not accepted (only RSA-2048, RSA-3072 and RSA-4096)")
        return found
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        curve = private_key.curve.name
        found = _EC_CURVES.get(curve)
        if found is None:
            raise KeyStoreError(f"EC keys on curve {curve} are not accepted (only P-256 and P-384)")
        return found
    kind = type(private_key).__name__.removeprefix("_").removesuffix("PrivateKey") or type(private_key).__name__
    raise KeyStoreError(f"{kind} keys are not accepted (only RSA-2048/3072/4096 and EC P-256/P-384)")


HASH_SIZES = {"sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64}


@dataclass(frozen=True)
class GeneratedKey:
    """What a backend hands back: an opaque handle to find the key again, and the public key."""

    handle: bytes
    public_key_der: bytes


class KeyBackend(abc.ABC):
    """A place where private keys live. Implementations must be thread-safe."""

    name: str
    #: whether the backend is also a :class:`KeyReleaser` (software keys); an HSM's keys never
    #: leave it, and its backend has no method that could return one
    releases_keys: bool = False

    @abc.abstractmethod
    def generate(self, algorithm: KeyAlgorithm, label: str, *, decrypt: bool = False) -> GeneratedKey:
        """Create a new key pair; the private half stays inside the backend. ``decrypt`` makes an
        RSA key for decryption only (a transport key), never for signing."""

    @abc.abstractmethod
    def decrypt(self, handle: bytes, algorithm: KeyAlgorithm, ciphertext: bytes,
                padding_kind: EncryptionPadding = EncryptionPadding.PKCS1V15) -> bytes:
        """RSA decryption (RSAES-PKCS1-v1_5 or RSAES-OAEP with SHA-1 and MGF1-SHA1) with a key
        generated with ``decrypt=True``; KeyStoreError when the ciphertext does not decrypt."""

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

    def sign_digests(self, handle: bytes, algorithm: KeyAlgorithm,
                     items: Sequence[tuple[bytes, str, SignatureScheme]]) -> list[bytes]:
        """``sign_digest`` of each (digest, hash name, scheme), in order: a batch with one key.
        Backends may do better than this loop (find the key once)."""
        return [self.sign_digest(handle, algorithm, digest, hash_name, scheme) for digest, hash_name, scheme in items]

    def import_private_key(self, private_key: ImportableKey, label: str) -> GeneratedKey:
        """Take in an existing private key (a user's PKCS#12) so that it becomes a key of this
        backend, used exactly like a generated one; returns the handle and the public key.

        Optional: backends that cannot hold foreign key material refuse.
        """
        raise KeyStoreError("this key backend cannot import keys")

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


@runtime_checkable
class KeyReleaser(Protocol):
    """A backend whose keys can be handed out in clear, for the one use that needs it outside the
    backend: a TLS client key given to Python's ssl (``KeyStore.tls_client_key``). Only the
    software backend is one; PKCS#11 backends deliberately have no such method."""

    def export_private_key(self, handle: bytes) -> ImportableKey: ...
