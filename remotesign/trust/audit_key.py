"""The audit key: an operator key in the key store that signs audit checkpoints.

Created at first start like the CA, TSA and OCSP keys (EC P-256: small, fast signatures) and found
again through a system setting. It implements the storage layer's ``CheckpointSigner`` so the
storage layer never imports the key store.
"""

from __future__ import annotations

import hashlib
import secrets

from remotesign.keystore import KeyAlgorithm, KeyStore, KeyStoreError, StoredKey
from remotesign.keystore.service_keys import service_key
from remotesign.storage.audit_seal import signature_valid
from remotesign.storage.audit_verify import AuditKeyFacts
from remotesign.storage.db import Database
from remotesign.storage.models import SystemSetting

AUDIT_KEY_SETTING = "audit_key_id"
AUDIT_KEY_LABEL = "audit"
HASH = "sha256"


class AuditKey:
    def __init__(self, db: Database, keystore: KeyStore) -> None:
        self.db = db
        self.keystore = keystore
        self._key: StoredKey | None = None

    def find(self) -> StoredKey | None:
        """The audit key, or None when it was never created (or its record is gone)."""
        if self._key is None:
            with self.db.session() as s:
                row = s.get(SystemSetting, AUDIT_KEY_SETTING)
                key_id = row.value if row else None
            if key_id is None:
                return None
            try:
                self._key = self.keystore.get(key_id, None)
            except KeyStoreError:
                return None
        return self._key

    def ensure(self) -> StoredKey:
        """Find the key, creating it at first start."""
        key = self.find()
        if key is None:
            key = service_key(self.db, self.keystore, AUDIT_KEY_SETTING,
                              lambda: self.keystore.create(KeyAlgorithm.EC_P256, AUDIT_KEY_LABEL, tenant_id=None))
            self._key = key
        return key

    # -- CheckpointSigner -------------------------------------------------------------------------
    @property
    def key_id(self) -> str:
        return self.ensure().id

    @property
    def public_key_der(self) -> bytes:
        return self.ensure().public_key_der

    def sign(self, data: bytes) -> bytes:
        return self.keystore.sign_digest(self.ensure(), hashlib.new(HASH, data).digest(), HASH)

    # -- verification ------------------------------------------------------------------------------
    def facts(self) -> AuditKeyFacts | None:
        """What the verifier needs; the possession check signs a fresh challenge, so a key record
        whose public key was swapped for an attacker's is caught even without the anchor file."""
        key = self.find()
        if key is None:
            return None

        def holds_private_key() -> bool:
            challenge = b"remotesign audit key possession check\n" + secrets.token_bytes(32)
            try:
                return signature_valid(key.public_key_der, challenge, self.sign(challenge))
            except (KeyStoreError, ValueError):
                return False

        return AuditKeyFacts(key.id, key.public_key_der, holds_private_key)
