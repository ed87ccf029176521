"""KeyStore: key records in the database, private-key operations in one backend.

Keys carry the owning tenant (``None`` for the operator's PKI keys) and their usage
(``usage.KeyUsage``). Lookups that take a ``tenant_id`` never return another tenant's key, so
facades cannot leak keys across tenants; ``get``/``list``/``sign_digest`` serve only the relying
parties' and the operator's own keys, so a relying party can never reach its end users' identity
keys. Those are created, found and used only through the ``*identity*`` methods, and an identity
key signs only under a named, checked authorization that the store writes to the audit log.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable, Sequence
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from sqlalchemy import select
from sqlalchemy.orm import Session

from remotesign.keystore import authorization
from remotesign.keystore.base import (
    EncryptionPadding,
    GeneratedKey,
    KeyAlgorithm,
    KeyBackend,
    KeyReleaser,
    KeyStoreError,
    SignatureScheme,
    algorithm_of,
)
from remotesign.keystore.usage import AuthorizationRefused, KeyUsage, KeyUseAuthorization
from remotesign.storage.audit import AuditLog, PendingAppends
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
    usage: KeyUsage = KeyUsage.TENANT

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
        usage=KeyUsage(rec.usage),
    )


def _own_usage(tenant_id: str | None) -> KeyUsage:
    """The usage of the keys ``create``/``get``/``list`` serve: the operator's or a relying party's own."""
    return KeyUsage.OPERATOR if tenant_id is None else KeyUsage.TENANT


class KeyStore:
    def __init__(self, db: Database, backend: KeyBackend, audit: AuditLog | None = None) -> None:
        self.db = db
        self.backend = backend
        self.audit = audit
        self._handles: OrderedDict[str, tuple[bytes, KeyAlgorithm, KeyUsage]] = OrderedDict()  # LRU, bounded

    def create(self, algorithm: KeyAlgorithm, label: str, tenant_id: str | None, *,
               decrypt: bool = False) -> StoredKey:
        """A relying party's own key (``tenant_id``) or an operator key (``None``)."""
        generated = self.backend.generate(algorithm, label, decrypt=decrypt)
        return self._record(generated, algorithm, label, tenant_id, "key.created", _own_usage(tenant_id))

    def create_identity_key(self, algorithm: KeyAlgorithm, label: str, tenant_id: str | None) -> StoredKey:
        """An end user's sign-identity key (``tenant_id``: the user's relying party, None for
        service-wide users); reachable only through the identity methods below."""
        generated = self.backend.generate(algorithm, label)
        return self._record(generated, algorithm, label, tenant_id, "key.created", KeyUsage.IDENTITY)

    def import_identity_key(self, private_key: PrivateKeyTypes, label: str, tenant_id: str | None) -> StoredKey:
        """``import_key`` for an end user's own key (their PKCS#12): it becomes an identity key."""
        return self._import(private_key, label, tenant_id, KeyUsage.IDENTITY)

    def import_key(self, private_key: PrivateKeyTypes, label: str, tenant_id: str | None) -> StoredKey:
        """Make an existing private key a relying party's (or, with None, the operator's) key of this store."""
        return self._import(private_key, label, tenant_id, _own_usage(tenant_id))

    def import_tls_client_key(self, private_key: PrivateKeyTypes, label: str) -> StoredKey:
        """An operator's TLS client key (a TSA client certificate's): sealed like every key, never
        signs through this store, and only ``tls_client_key`` gives it back, to Python's ssl."""
        if not self.backend.releases_keys:
            raise KeyStoreError(f"the {self.backend.name} key backend keeps keys inside, where Python's TLS "
                                f"cannot use them; TLS client keys need the software backend")
        return self._import(private_key, label, None, KeyUsage.TLS_CLIENT)

    def tls_client_key(self, key_id: str) -> PrivateKeyTypes:
        """The clear TLS client key ``key_id`` (usage tls-client only), for an SSLContext."""
        handle, _ = self._usable(key_id, (KeyUsage.TLS_CLIENT,))
        if not isinstance(self.backend, KeyReleaser):
            raise KeyStoreError(f"keys of the {self.backend.name} key backend cannot leave it")
        return self.backend.export_private_key(handle)

    def _import(self, private_key: PrivateKeyTypes, label: str, tenant_id: str | None, usage: KeyUsage) -> StoredKey:
        """Make a private key (e.g. a user's, from an uploaded PKCS#12) a key of this store.

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
        return self._record(generated, algorithm, label, tenant_id, "key.imported", usage)

    def _record(self, generated: GeneratedKey, algorithm: KeyAlgorithm, label: str, tenant_id: str | None,
                event: str, usage: KeyUsage) -> StoredKey:
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
            usage=usage.value,
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
                              details={"algorithm": algorithm.value, "backend": self.backend.name, "label": label,
                                       **({"usage": usage.value} if usage is KeyUsage.IDENTITY else {})})
        return _stored(rec)

    def _find(self, key_id: str, tenant_id: str | None, usage: KeyUsage, session: Session | None = None) -> StoredKey:
        q = select(KeyRecord).where(KeyRecord.id == key_id, KeyRecord.usage == usage.value,
                                    owned_by(KeyRecord.tenant_id, tenant_id))
        if session is not None:
            rec = session.scalar(q)
        else:
            with self.db.session() as s:
                rec = s.scalar(q)
        if rec is None:
            raise KeyStoreError(f"no key {key_id}")  # the same answer whether it is absent or of another usage
        return _stored(rec)

    def get(self, key_id: str, tenant_id: str | None) -> StoredKey:
        """The key ``key_id`` if it is ``tenant_id``'s own key (``None``: an operator key); never an
        identity key."""
        return self._find(key_id, tenant_id, _own_usage(tenant_id))

    def identity_key(self, key_id: str, tenant_id: str | None, *, session: Session | None = None) -> StoredKey:
        """The sign-identity key ``key_id`` of a user of ``tenant_id`` (None: a service-wide user),
        for the identity services only; read in ``session`` when given (the caller's transaction)."""
        return self._find(key_id, tenant_id, KeyUsage.IDENTITY, session)

    def list(self, tenant_id: str) -> list[StoredKey]:
        """A relying party's own keys (never its users' identity keys)."""
        with self.db.session() as s:
            rows = s.scalars(select(KeyRecord).where(KeyRecord.tenant_id == tenant_id,
                                                     KeyRecord.usage == KeyUsage.TENANT.value)
                             .order_by(KeyRecord.created_at))
            return [_stored(r) for r in rows]

    def _handle(self, key_id: str, session: Session | None = None) -> tuple[bytes, KeyAlgorithm, KeyUsage]:
        """The key's backend handle, from the cache or read in ``session`` when given: a caller
        inside a transaction must not wait for a second pooled connection, least of all under a
        lock that other connection holders wait for (the raw fast path's write lock: with the pool
        exhausted by them, that was a deadlock broken only by the pool's 30 s timeout)."""
        cached = self._handles.get(key_id)
        if cached is not None:
            self._handles.move_to_end(key_id)
            return cached
        with contextlib.nullcontext(session) if session is not None else self.db.session() as s:
            rec = s.get(KeyRecord, key_id)
            if rec is None:
                raise KeyStoreError(f"no key {key_id}")
            if rec.backend != self.backend.name:
                raise KeyStoreError(f"key {key_id} lives in backend {rec.backend!r}, not {self.backend.name!r}")
            if not rec.handle:
                raise KeyStoreError(f"key {key_id} has been destroyed")
            value = (rec.handle, KeyAlgorithm(rec.algorithm), KeyUsage(rec.usage))
        self._handles[key_id] = value
        while len(self._handles) > HANDLE_CACHE_SIZE:
            self._handles.popitem(last=False)
        return value

    def destroy(self, key: StoredKey, actor: str = "keystore") -> None:
        """Destroy the private key for good (the backend deletes it; the record keeps only the
        public half, for the certificates and the audit trail that refer to it)."""
        handle, _, _ = self._handle(key.id)
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
        """Sign ``digest`` with a relying party's or the operator's ``key`` (obtained through
        ``get``/``create``, so ownership was checked). Identity keys are refused whatever the
        caller holds: they sign only through ``sign_with_identity_key``."""
        handle, algorithm = self._usable(key.id, (KeyUsage.TENANT, KeyUsage.OPERATOR))
        return self.backend.sign_digest(handle, algorithm, digest, hash_name, scheme or key.default_scheme)

    def sign_with_identity_key(self, key: StoredKey, digests: Sequence[tuple[bytes, str, SignatureScheme]],
                               auth: KeyUseAuthorization, *, session: Session | None = None) -> list[bytes]:
        """Sign ``digests`` (digest, hash name, scheme; in order) with an end user's identity key,
        under the authorization ``auth`` names. The store checks that the authorization exists and
        covers this key and these digests, then writes ``identity_key.used`` naming it; a refusal
        is audited as ``identity_key.refused``. No other method signs with an identity key (but
        ``sign_with_identity_key_pending``, the same for a transaction run with Core statements).

        With ``session`` (the caller's transaction, in which the authorization was just recorded)
        the check reads that transaction, the event is appended to it, and the store commits it
        before the key is used: the authorization, the use and everything the caller wrote become
        durable together, in one commit, or not at all."""
        handle, algorithm = self._usable(key.id, (KeyUsage.IDENTITY,), session)
        typed = [(hash_name, digest) for digest, hash_name, _ in digests]
        if session is not None:
            self._authorize_in(session, key, auth, typed)
            return self.backend.sign_digests(handle, algorithm, digests)
        try:
            if not typed:
                raise AuthorizationRefused("nothing to sign")
            with self.db.session() as s:
                authorization.check(s, auth, key.id, typed)
        except AuthorizationRefused as exc:
            self._audit_use("identity_key.refused", key, auth, typed, reason=str(exc))
            raise
        # Written before the key is used: a signature without its audit event cannot exist.
        self._audit_use("identity_key.used", key, auth, typed)
        return self.backend.sign_digests(handle, algorithm, digests)

    def sign_with_identity_key_pending(self, s: Session, pending: PendingAppends, key: StoredKey,
                                       digests: Sequence[tuple[bytes, str, SignatureScheme]],
                                       auth: KeyUseAuthorization,
                                       committed: Callable[[], None] | None = None) -> list[bytes]:
        """``sign_with_identity_key`` for a caller that works with SQLAlchemy Core statements on
        ``s.connection()`` and appends its audit events to ``pending`` (``AuditLog.pending_in``)
        of this store's audit log, the SCAL2 authorization among them. The store checks on that
        connection that the identity holds the key and that the authorization, appended in this
        very transaction, covers these digests; it appends ``identity_key.used`` (or
        ``identity_key.refused``), writes the events and commits ``s`` before the key is used.
        ``committed`` is called right after that commit (the caller's lock on its write section)."""
        handle, algorithm = self._usable(key.id, (KeyUsage.IDENTITY,), s)
        if self.audit is None or pending.log is not self.audit:
            raise KeyStoreError("identity keys sign only with the store's audit log")
        typed = [(hash_name, digest) for digest, hash_name, _ in digests]
        try:
            if not typed:
                raise AuthorizationRefused("nothing to sign")
            authorization.check_pending(s.connection(), pending, auth, key.id, typed)
        except AuthorizationRefused as exc:
            pending.append("identity_key.refused", actor=auth.actor, tenant_id=auth.tenant_id,
                           subject=auth.identity_id, details=self._use_details(key, auth, typed, reason=str(exc)))
            pending.write()
            s.commit()
            pending.committed()
            if committed is not None:
                committed()
            raise
        pending.append("identity_key.used", actor=auth.actor, tenant_id=auth.tenant_id, subject=auth.identity_id,
                       details=self._use_details(key, auth, typed))
        # Committed before the key is used: a signature without its audit event cannot exist.
        pending.write()
        s.commit()
        pending.committed()
        if committed is not None:
            committed()
        return self.backend.sign_digests(handle, algorithm, digests)

    def _authorize_in(self, s: Session, key: StoredKey, auth: KeyUseAuthorization,
                      typed: Sequence[tuple[str, bytes]]) -> None:
        """``sign_with_identity_key``'s check and audit inside the caller's transaction ``s``,
        committed here (a refusal too, then raised)."""
        if self.audit is None:
            raise KeyStoreError("identity keys sign only with an audit log")
        try:
            if not typed:
                raise AuthorizationRefused("nothing to sign")
            s.flush()  # the authorization recorded in this transaction is then read from the session, not re-selected
            authorization.check(s, auth, key.id, typed)
        except AuthorizationRefused as exc:
            self._audit_use("identity_key.refused", key, auth, typed, reason=str(exc), session=s)
            s.commit()
            raise
        # Committed before the key is used: a signature without its audit event cannot exist.
        self._audit_use("identity_key.used", key, auth, typed, session=s)
        s.commit()

    def _audit_use(self, event: str, key: StoredKey, auth: KeyUseAuthorization,
                   typed: Sequence[tuple[str, bytes]], *, session: Session | None = None, **extra: str) -> None:
        if self.audit is None:
            raise KeyStoreError("identity keys sign only with an audit log")
        details = self._use_details(key, auth, typed, **extra)
        if session is not None:
            self.audit.append_in(session, event, actor=auth.actor, tenant_id=auth.tenant_id, subject=auth.identity_id,
                                 details=details)
        else:
            self.audit.append(event, actor=auth.actor, tenant_id=auth.tenant_id, subject=auth.identity_id,
                              details=details)

    @staticmethod
    def _use_details(key: StoredKey, auth: KeyUseAuthorization, typed: Sequence[tuple[str, bytes]],
                     **extra: str) -> dict[str, object]:
        concatenated = hashlib.sha256(b"".join(d for _, d in typed)).hexdigest()
        return {"authorization": auth.reference, "key_id": key.id, "digests": len(typed),
                "hash_algorithms": sorted({h for h, _ in typed}), "digests_sha256": concatenated, **extra}

    def _usable(self, key_id: str, usages: tuple[KeyUsage, ...],
                session: Session | None = None) -> tuple[bytes, KeyAlgorithm]:
        """The backend handle of ``key_id`` if its recorded usage is one of ``usages`` (read in
        ``session`` when given and not cached)."""
        handle, algorithm, usage = self._handle(key_id, session)
        if usage not in usages:
            raise KeyStoreError(f"no key {key_id}")
        return handle, algorithm

    def decrypt(self, key: StoredKey, ciphertext: bytes,
                padding_kind: EncryptionPadding = EncryptionPadding.PKCS1V15) -> bytes:
        """RSA decryption with a transport key (created with ``decrypt=True``)."""
        handle, algorithm = self._usable(key.id, (KeyUsage.TENANT, KeyUsage.OPERATOR))
        return self.backend.decrypt(handle, algorithm, ciphertext, padding_kind)

    def close(self) -> None:
        self.backend.close()
