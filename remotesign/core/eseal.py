"""E-seals from a PFX that the relying party sends with the request: the PFX password arrives
RSA-encrypted (PKCS#1 v1.5) under the service's transport key, the key is used for the sessions of
this one request and then dropped; neither the PFX nor the password is stored or logged."""

from __future__ import annotations

import hashlib

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import pkcs12
from asn1crypto import x509

from remotesign.storage.audit import AuditLog
from remotesign.core.signing import Outcome, SigningError, SigningService
from remotesign.core.signature_values import HASHES
from remotesign.keystore import EncryptionPadding, KeyAlgorithm, KeyStore, StoredKey
from remotesign.keystore.base import KeyStoreError
from remotesign.storage.db import Database
from remotesign.keystore.service_keys import service_key

TRANSPORT_KEY_SETTING = "transport_key_id"
MAX_PFX_BYTES = 64 * 1024


class TransportKey:
    """The RSA key whose public half relying parties encrypt e-seal passwords with."""

    def __init__(self, db: Database, keystore: KeyStore) -> None:
        self.db = db
        self.keystore = keystore
        self._key: StoredKey | None = None

    def key(self) -> StoredKey:
        if self._key is None:
            self._key = service_key(self.db, self.keystore, TRANSPORT_KEY_SETTING, lambda: self.keystore.create(
                KeyAlgorithm.RSA_2048, "signapi-transport", None, decrypt=True))
        return self._key

    def public_pem(self) -> str:
        public = serialization.load_der_public_key(self.key().public_key_der)
        return public.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def decrypt(self, ciphertext: bytes) -> bytes:
        """The password, whichever padding the client chose. OAEP is tried first: its check makes a
        false success negligible, whereas PKCS#1 v1.5 accepts about one random block in 2^16."""
        for kind in (EncryptionPadding.OAEP_SHA1, EncryptionPadding.PKCS1V15):
            try:
                return self.keystore.decrypt(self.key(), ciphertext, kind)
            except KeyStoreError:
                continue
        raise SigningError("invalid_password_encryption",
                           "signKeyPassword cannot be decrypted with the service's public key "
                           "(RSA PKCS#1 v1.5 or OAEP with SHA-1)")


def _sign(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, digest: bytes, hash_name: str) -> bytes:
    prehashed = utils.Prehashed(HASHES[hash_name]())
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, padding.PKCS1v15(), prehashed)
    return key.sign(digest, ec.ECDSA(prehashed))


class SealService:
    def __init__(self, signing: SigningService, transport: TransportKey, audit: AuditLog) -> None:
        self.signing = signing
        self.transport = transport
        self.audit = audit

    def open_pfx(self, pfx: bytes, encrypted_password: bytes) -> tuple[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
                                                                         cx509.Certificate, list[cx509.Certificate]]:
        if len(pfx) > MAX_PFX_BYTES:
            raise SigningError("invalid_pfx", f"signKey is larger than {MAX_PFX_BYTES} bytes")
        password = self.transport.decrypt(encrypted_password)
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(pfx, password)
        except (ValueError, TypeError) as exc:  # cryptography 50 raises TypeError for some bad passwords
            raise SigningError("invalid_pfx", "signKey is not a PKCS#12 file or the password is wrong") from exc
        if key is None or cert is None or not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise SigningError("invalid_pfx", "signKey holds no RSA or EC private key with its certificate")
        if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
            raise SigningError("invalid_pfx", "the PFX key does not match its certificate")
        return key, cert, list(extra)

    async def seal(self, tenant_id: str, session_ids: list[str], pfx: bytes, encrypted_password: bytes, *,
                   sign_as_pdf: bool, create_new_container: bool) -> list[Outcome]:
        key, cert, extra = self.open_pfx(pfx, encrypted_password)
        signer = self.signing.check_signer(cert, extra=[x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
                                                        for c in extra])
        prepared = await self.signing.prepare(tenant_id, session_ids, signer, sign_as_pdf=sign_as_pdf,
                                              create_new_container=create_new_container)
        values = [(o.session_id, _sign(key, o.digest, signer.algorithm.digest_algorithm))
                  for o in prepared if o.digest is not None]
        finalized = {o.session_id: o for o in await self.signing.finalize(tenant_id, values)}
        self.audit.append("eseal.created", actor="signing", tenant_id=tenant_id,
                          subject=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
                          details={"sessions": session_ids, "subject": cert.subject.rfc4514_string()})
        return [finalized.get(o.session_id, o) for o in prepared]
