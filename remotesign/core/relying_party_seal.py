"""A relying party's own seal: the key of its own (``/v1/keys``) that the operator chose to
counter-sign its users' documents, with the built-in CA's certificate for it. It is the relying
party's key, used with the relying party's own authority, like an e-seal; a user's key is never
involved, and a relying party without a chosen seal counter-signs nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from asn1crypto import x509 as asn1_x509
from cryptography import x509

from remotesign.core.errors import CoreError
from remotesign.keystore import KeyStore, KeyStoreError, StoredKey
from remotesign.trust.ca import CertificateAuthority


class SealError(CoreError):
    """The relying party has no usable seal (none chosen, no valid certificate for it)."""


@dataclass(frozen=True)
class Seal:
    key: StoredKey
    certificate: x509.Certificate


class RelyingPartySeals:
    def __init__(self, keystore: KeyStore, ca: CertificateAuthority) -> None:
        self.keystore = keystore
        self.ca = ca

    def seal(self, tenant_id: str, key_id: str | None) -> Seal:
        """The seal of key ``key_id`` of ``tenant_id``: the key and its newest valid certificate."""
        if not key_id:
            raise SealError("no_seal", "this relying party has no counter-signing seal (remotesign client "
                            "counter-signer)", 409)
        try:
            key = self.keystore.get(key_id, tenant_id)
        except KeyStoreError as exc:
            raise SealError("no_seal", "the relying party's counter-signing key is gone", 409) from exc
        now = datetime.now(timezone.utc)
        issued = [c for c in self.ca.list(tenant_id) if c.key_id == key.id and c.revoked_at is None
                  and c.not_before <= now <= c.not_after]
        if not issued:
            raise SealError("no_seal", "the relying party's counter-signing key has no valid certificate", 409)
        return Seal(key, x509.load_der_x509_certificate(max(issued, key=lambda c: c.not_before).der))

    def sign(self, seal: Seal, digest: bytes, hash_name: str) -> bytes:
        return self.keystore.sign_digest(seal.key, digest, hash_name)

    @staticmethod
    def asn1(seal: Seal) -> asn1_x509.Certificate:
        from cryptography.hazmat.primitives.serialization import Encoding

        return asn1_x509.Certificate.load(seal.certificate.public_bytes(Encoding.DER))
