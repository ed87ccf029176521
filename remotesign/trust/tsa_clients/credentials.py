"""TLS client certificates held by the service for TSAs that demand one.

The operator registers a certificate, its key and optionally the chain under a code
(``remotesign tsa-credential add``). The key becomes a key-store key of usage ``tls-client``: sealed
under the master key like every software key, never able to sign, and given back in clear only to
build an ``ssl.SSLContext``. Python's ssl loads keys from files only, so the key is written, itself
encrypted under a one-time random password, to an anonymous in-memory file (``memfd_create``; a
0600 file in a private 0700 temporary directory where that does not exist) that is closed as soon
as the context holds the key. Contexts are cached per credential. A key in an HSM (PKCS#11) cannot
be used by Python's ssl: such credentials are refused when added and when used.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import ssl
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import or_, select

from remotesign.keystore.kdf import DEFAULT_LOG2_N, hash_secret, verify_secret
from remotesign.keystore.base import KeyStoreError
from remotesign.keystore.store import KeyStore, StoredKey
from remotesign.storage.audit import AuditLog
from remotesign.storage.db import Database
from remotesign.storage.models import KeyRecord, TsaCredential as TsaCredentialRow
from remotesign.trust.tsa_clients.errors import TsaError

CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
CONTEXT_CACHE_SIZE = 64


class CredentialError(ValueError):
    """An operator's registration that cannot be taken (CLI errors)."""


@dataclass(frozen=True)
class TsaCredential:
    """Public facts of a registered credential; no key material."""

    code: str
    tenant_id: str | None
    subject: str
    issuer: str
    serial_hex: str
    not_after: datetime
    key_id: str
    key_backend: str
    has_password: bool
    created_at: datetime
    chain_length: int


def _certificates(pem: bytes, what: str) -> list[x509.Certificate]:
    try:
        if b"-----BEGIN" in pem:
            return x509.load_pem_x509_certificates(pem)
        return [x509.load_der_x509_certificate(pem)]
    except ValueError as exc:
        raise CredentialError(f"{what} is not a PEM or DER certificate: {exc}") from exc


def _public_der(key: object) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                            serialization.PublicFormat.SubjectPublicKeyInfo)


class TsaCredentialStore:
    def __init__(self, db: Database, keystore: KeyStore, audit: AuditLog | None = None, *,
                 kdf_log2_n: int = DEFAULT_LOG2_N, tls_ca_file: Path | None = None) -> None:
        self.db = db
        self.keystore = keystore
        self.audit = audit
        self.kdf_log2_n = kdf_log2_n
        self.tls_ca_file = tls_ca_file
        self._contexts: OrderedDict[tuple[str, str], ssl.SSLContext] = OrderedDict()
        self._lock = threading.Lock()

    # --- operator side -----------------------------------------------------------------------------
    def add(self, code: str, certificate: bytes, private_key: bytes, chain: bytes = b"", *,
            key_password: bytes | None = None, password: str | None = None,
            tenant_id: str | None = None, actor: str = "operator") -> TsaCredential:
        """Register ``certificate`` (PEM/DER; a PEM may carry its chain after it) with its
        ``private_key`` (PEM/DER, PKCS#8 or traditional; ``key_password`` if encrypted)."""
        if not CODE_PATTERN.fullmatch(code):
            raise CredentialError("a code is 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
        if not self.keystore.backend.releases_keys:
            raise CredentialError(f"the key backend is {self.keystore.backend.name}: a TLS client key kept in the HSM "
                                  f"cannot be used by Python's TLS; TSA client certificates need the software "
                                  f"key backend")
        certs = _certificates(certificate, "the certificate")
        leaf, extra = certs[0], certs[1:] + (_certificates(chain, "the chain") if chain.strip() else [])
        try:
            loader = (serialization.load_pem_private_key if b"-----BEGIN" in private_key
                      else serialization.load_der_private_key)
            key = loader(private_key, password=key_password)
        except (ValueError, TypeError) as exc:
            raise CredentialError(f"the private key cannot be read: {exc}") from exc
        if _public_der(key.public_key()) != _public_der(leaf.public_key()):
            raise CredentialError("the private key does not belong to the certificate")
        try:
            eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            if ExtendedKeyUsageOID.CLIENT_AUTH not in eku and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
                raise CredentialError("the certificate's extended key usage does not allow TLS client authentication")
        except x509.ExtensionNotFound:
            pass
        with self.db.session() as s:
            if s.get(TsaCredentialRow, code) is not None:
                raise CredentialError(f"a TSA credential {code} exists already; remove it first")
        try:
            stored = self.keystore.import_tls_client_key(key, f"tsa-credential:{code}")
        except KeyStoreError as exc:
            raise CredentialError(str(exc)) from exc
        chain_pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in extra)
        row = TsaCredentialRow(code=code, tenant_id=tenant_id, key_id=stored.id,
                               certificate_der=leaf.public_bytes(serialization.Encoding.DER), chain_pem=chain_pem,
                               password_hash=hash_secret(password, self.kdf_log2_n) if password else None,
                               created_at=datetime.now(timezone.utc))
        try:
            with self.db.session() as s:
                s.add(row)
        except Exception:
            self.keystore.destroy(stored, actor=actor)
            raise
        if self.audit is not None:
            self.audit.append("tsa_credential.added", actor=actor, tenant_id=tenant_id, subject=code,
                              details={"key_id": stored.id, "subject": leaf.subject.rfc4514_string(),
                                       "serial": format(leaf.serial_number, "x"), "password": bool(password)})
        return self._public(row, stored.backend)

    def list(self) -> list[TsaCredential]:
        with self.db.session() as s:
            rows = s.execute(select(TsaCredentialRow, KeyRecord.backend)
                             .join(KeyRecord, KeyRecord.id == TsaCredentialRow.key_id)
                             .order_by(TsaCredentialRow.code)).all()
            return [self._public(row, backend) for row, backend in rows]

    def remove(self, code: str, actor: str = "operator") -> bool:
        """Forget the credential and destroy its key; False when there is none."""
        with self.db.session() as s:
            row = s.get(TsaCredentialRow, code)
            if row is None:
                return False
            key_id = row.key_id
            s.delete(row)
        with contextlib.suppress(KeyStoreError):
            rec = self.stored_key(key_id)
            if rec is not None:
                self.keystore.destroy(rec, actor=actor)
        with self._lock:
            for cache_key in [k for k in self._contexts if k[0] == code]:
                del self._contexts[cache_key]
        if self.audit is not None:
            self.audit.append("tsa_credential.removed", actor=actor, subject=code, details={"key_id": key_id})
        return True

    def stored_key(self, key_id: str) -> StoredKey | None:
        """The key-store record of a credential's key (public facts only)."""
        from remotesign.keystore.store import _stored

        with self.db.session() as s:
            rec = s.get(KeyRecord, key_id)
            return _stored(rec) if rec is not None else None

    @staticmethod
    def _public(row: TsaCredentialRow, backend: str) -> TsaCredential:
        from remotesign.storage.times import aware

        cert = x509.load_der_x509_certificate(row.certificate_der)
        return TsaCredential(code=row.code, tenant_id=row.tenant_id, subject=cert.subject.rfc4514_string(),
                             issuer=cert.issuer.rfc4514_string(), serial_hex=format(cert.serial_number, "x"),
                             not_after=cert.not_valid_after_utc, key_id=row.key_id, key_backend=backend,
                             has_password=row.password_hash is not None, created_at=aware(row.created_at),
                             chain_length=row.chain_pem.count("-----BEGIN CERTIFICATE-----"))

    # --- request side ------------------------------------------------------------------------------
    def ssl_context(self, code: str, tenant_id: str | None, password: str | None) -> ssl.SSLContext:
        """The client-side SSLContext presenting credential ``code`` (blocking: run in a thread).
        ``tsa_credential_unknown`` when ``tenant_id`` may not name such a credential or the password
        it was registered with does not match; ``tsa_credential_unusable`` when its key is in an HSM."""
        with self.db.session() as s:
            found = s.execute(select(TsaCredentialRow, KeyRecord.backend)
                              .join(KeyRecord, KeyRecord.id == TsaCredentialRow.key_id)
                              .where(TsaCredentialRow.code == code,
                                     or_(TsaCredentialRow.tenant_id.is_(None),
                                         TsaCredentialRow.tenant_id == tenant_id))).first()
            row, backend = (found[0], found[1]) if found is not None else (None, None)
            if row is not None:
                s.expunge(row)
        if row is None:
            raise TsaError("tsa_credential_unknown", f"no TSA client certificate {code!r}")
        if row.password_hash is not None:
            if not password or not verify_secret(password, row.password_hash):
                raise TsaError("tsa_credential_unknown", f"no TSA client certificate {code!r} with this password")
        if backend != self.keystore.backend.name or not self.keystore.backend.releases_keys:
            raise TsaError("tsa_credential_unusable",
                           f"the key of TSA client certificate {code!r} is held by the {backend} key backend, "
                           f"which Python's TLS cannot use; register it with software keys")
        cache_key = (row.code, row.key_id)
        with self._lock:
            cached = self._contexts.get(cache_key)
            if cached is not None:
                self._contexts.move_to_end(cache_key)
                return cached
        context = self._build(row)
        with self._lock:
            self._contexts[cache_key] = context
            while len(self._contexts) > CONTEXT_CACHE_SIZE:
                self._contexts.popitem(last=False)
        return context

    def _build(self, row: TsaCredentialRow) -> ssl.SSLContext:
        context = client_context(self.tls_ca_file)
        try:
            key = self.keystore.tls_client_key(row.key_id)
        except KeyStoreError as exc:
            raise TsaError("tsa_credential_unusable", f"the key of TSA client certificate {row.code!r}: {exc}") from exc
        one_time = secrets.token_urlsafe(32).encode()
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.BestAvailableEncryption(one_time))
        cert_pem = x509.load_der_x509_certificate(row.certificate_der).public_bytes(serialization.Encoding.PEM)
        with _transient_file(cert_pem + row.chain_pem.encode()) as cert_path, _transient_file(key_pem) as key_path:
            context.load_cert_chain(cert_path, key_path, password=one_time)
        return context


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A TLS client context verifying the server against the system trust store (OpenSSL's
    default paths, so SSL_CERT_FILE / SSL_CERT_DIR apply) plus ``ca_file``; TLS 1.2 at least."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


@contextlib.contextmanager
def _transient_file(data: bytes) -> Iterator[str]:
    """A path whose file holds ``data`` only while the block runs: an anonymous memory file where
    the kernel has them, else a 0600 file in a fresh 0700 directory, deleted on exit."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("remotesign-tls", os.MFD_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    directory = tempfile.mkdtemp(prefix="remotesign-tls-")  # mode 0700
    try:
        path = os.path.join(directory, "f.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)
