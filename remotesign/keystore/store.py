"""KeyStore: key records in the database, private-key operations in one backend.

Keys carry the owning tenant (``None`` for the operator's PKI keys). Lookups that take a
``tenant_id`` never return another tenant's key, so facades cannot leak keys across tenants.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from sqlalchemy import select

from remotesign.storage.audit import AuditLog
from remotesign.keystore.base import (
    GeneratedKey,
    KeyAlgorithm,
    KeyBackend,
    KeyStoreError,
    SignatureScheme,
    algorithm_of,
)
from remotesign.storage.db import Database
from remotesign.storage.models import KeyRecord
from remotesign.storage.tenancy import owned_by

HANDLE_CACHE_SIZE = 10_000  # key handles kept in memory (an LRU); each is a few hundred bytes


@dataclass(frozen=True)
class StoredKey:
    """Public facts about a stored key; deliberately has no private material."""

    id: str
    tenant_id: str | None
    label: str
    backend: str
    algorithm: KeyAlgorithm
    public_key_der: bytes
    created_at: datetime

    def public_key(self) -> PublicKeyTypes:
        return serialization.load_der_public_key(self.public_key_der)

    @property
    def default_scheme(self) -> SignatureScheme:
        return SignatureScheme.RSA_PKCS1V15 if self.algorithm.is_rsa else SignatureScheme.ECDSA


def _stored(rec: KeyRecord) -> StoredKey:
    return StoredKey(
        id=rec.id,
        tenant_id=rec.tenant_id,
        label=rec.label,
        backend=rec.backend,
        algorithm=KeyAlgorithm(rec.algorithm),
        public_key_der=rec.public_key_der,
        created_at=rec.created_at,
    )


class KeyStore:
    def __init__(self, db: Database, backend: KeyBackend, audit: AuditLog | None = None) -> None:
        self.db = db
        self.backend = backend
        self.audit = audit
        self._handles: OrderedDict[str, tuple[bytes, KeyAlgorithm]] = OrderedDict()  # LRU, bounded

    def create(self, algorithm: KeyAlgorithm, label: str, tenant_id: str | None, *,
               decrypt: bool = False) -> StoredKey:
        generated = self.backend.generate(algorithm, label, decrypt=decrypt)
        return self._record(generated, algorithm, label, tenant_id, "key.created")

    def import_key(self, private_key: PrivateKeyTypes, label: str, tenant_id: str | None) -> StoredKey:
        """Make a user's own private key (e.g. from an uploaded PKCS#12) a key of this store.

        The key is refused unless it is one of the algorithms the service generates; it is then
        handed to the backend (sealed or written to the token) and used like any created key.
        The caller should drop its reference to ``private_key`` afterwards. The audit event names
        the algorithm, backend and label only, never key material.
        """
        algorithm = algorithm_of(private_key)
        if not isinstance(private_key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):  # pragma: no cover
            raise KeyStoreError("only RSA and EC keys can be imported")  # algorithm_of already refused
        generated = self.backend.import_private_key(private_key, label)
        expected = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if generated.public_key_der != expected:  # a backend bug must not bind a wrong key to a user
            self.backend.delete(generated.handle)
            raise KeyStoreError("the backend stored a key whose public key differs from the imported one")
        return self._record(generated, algorithm, label, tenant_id, "key.imported")

    def _record(self, generated: GeneratedKey, algorithm: KeyAlgorithm, label: str, tenant_id: str | None,
                event: str) -> StoredKey:
        """The KeyRecord row for a key the backend now holds, plus its audit event."""
        rec = KeyRecord(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            label=label,
            backend=self.backend.name,
            algorithm=algorithm.value,
            public_key_der=generated.public_key_der,
            handle=generated.handle,
            created_at=datetime.now(timezone.utc),
        )
        try:
            with self.db.session() as s:
                s.add(rec)
        except Exception:
            # No row points at the key: destroy it rather than leave an orphan on the token.
            with contextlib.suppress(KeyStoreError):
                self.backend.delete(generated.handle)
            raise
        if self.audit is not None:
            self.audit.append(event, actor="keystore", tenant_id=tenant_id, subject=rec.id,
                              details={"algorithm": algorithm.value, "backend": self.backend.name, "label": label})
        return _stored(rec)

    def get(self, key_id: str, tenant_id: str | None) -> StoredKey:
        """The key ``key_id`` if it belongs to ``tenant_id`` (``None``: the operator)."""
        with self.db.session() as s:
            rec = s.scalar(select(KeyRecord).where(KeyRecord.id == key_id, owned_by(KeyRecord.tenant_id, tenant_id)))
        if rec is None:
            raise KeyStoreError(f"no key {key_id}")
        return _stored(rec)

    def list(self, tenant_id: str) -> list[StoredKey]:
        with self.db.session() as s:
            rows = s.scalars(select(KeyRecord).where(KeyRecord.tenant_id == tenant_id).order_by(KeyRecord.created_at))
            return [_stored(r) for r in rows]

    def _handle(self, key_id: str) -> tuple[bytes, KeyAlgorithm]:
        cached = self._handles.get(key_id)
        if cached is not None:
            self._handles.move_to_end(key_id)
            return cached
        with self.db.session() as s:
            rec = s.get(KeyRecord, key_id)
            if rec is None:
                raise KeyStoreError(f"no key {key_id}")
            if rec.backend != self.backend.name:
                raise KeyStoreError(f"key {key_id} lives in backend {rec.backend!r}, not {self.backend.name!r}")
            if not rec.handle:
                raise KeyStoreError(f"key {key_id} has been destroyed")
            value = (rec.handle, KeyAlgorithm(rec.algorithm))
        self._handles[key_id] = value
        while len(self._handles) > HANDLE_CACHE_SIZE:
            self._handles.popitem(last=False)
        return value

    def destroy(self, key: StoredKey, actor: str = "keystore") -> None:
        """Destroy the private key for good (the backend deletes it; the record keeps only the
        public half, for the certificates and the audit trail that refer to it)."""
        handle, _ = self._handle(key.id)
        self.backend.delete(handle)
        with self.db.session() as s:
            rec = s.get(KeyRecord, key.id)
            if rec is not None:
                rec.handle = b""
        self._handles.pop(key.id, None)
        if self.audit is not None:
            self.audit.append("key.destroyed", actor=actor, tenant_id=key.tenant_id, subject=key.id)

    def sign_digest(
        self,
        key: StoredKey,
        digest: bytes,
        hash_name: str,
        scheme: SignatureScheme | None = None,
    ) -> bytes:
        """Sign ``digest`` with ``key`` (obtained through ``get``/``create``, so ownership was checked)."""
        handle, algorithm = self._handle(key.id)
        return self.backend.sign_digest(handle, algorithm, digest, hash_name, scheme or key.default_scheme)

    def decrypt(self, key: StoredKey, ciphertext: bytes) -> bytes:
        """RSAES-PKCS1-v1_5 decryption with a transport key (created with ``decrypt=True``)."""
        handle, algorithm = self._handle(key.id)
        return self.backend.decrypt_pkcs1v15(handle, algorithm, ciphertext)

    def close(self) -> None:
        self.backend.close()
