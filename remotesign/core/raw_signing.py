"""Raw hash signing with server-held sign identities (eSigP ``signatures/server/raw[/batch]``).

The caller supplies digests; the service returns RSA PKCS#1 v1.5 or DER ECDSA signature values.
Every request is parsed and checked before the sole-control credential is spent, so a malformed
request never burns the user's consent; once spent, the key store signs each digest.

One call is one database transaction: the identity and its key are read once, the token is spent
and ``scal2.authorized`` and ``identity_key.used`` are appended in it, and the key store commits
it before the key is used.

A call that succeeds takes the fast path: a handful of SQLAlchemy Core statements on the
session's connection (spend the token with its conditional UPDATE, read identity, user and key in
one joined SELECT under the lock that took, check the certificate's revocation, lock and read the
audit head with one ``UPDATE .. RETURNING``, write both events with one INSERT), then one batch of
signatures with the key found once. Anything the fast path does not accept (a refusal, an
unusable identity, a spent token, a key it cannot find) rolls its transaction back, having
written nothing, and the call is made again by the ORM path below, which answers and audits
every refusal as before: the fast path only ever signs what that path would sign.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from asn1crypto import algos
from cryptography import x509
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from remotesign.core.errors import CoreError
from remotesign.core.identities import IdentityError, IdentityInfo, IdentityService, Viewer
from remotesign.core.sole_control import SoleControl, TypedDigest
from remotesign.core.tenants import TokenInfo
from remotesign.keystore import KeyStore, KeyUseAuthorization, SignatureScheme
from remotesign.keystore.base import HASH_SIZES, KeyAlgorithm, KeyStoreError
from remotesign.keystore.store import StoredKey
from remotesign.keystore.usage import KeyUsage
from remotesign.storage.models import AccessToken, CertificateRecord, EndUser, KeyRecord, SignIdentity, Tenant
from remotesign.storage.times import aware

_BY_SIZE = {20: "sha1", 32: "sha256", 48: "sha384", 64: "sha512"}
_SIGNABLE_HASHES = ("sha1", "sha256", "sha384", "sha512")
MAX_BATCH = 1000


class RawSigningError(CoreError):
    """A raw signing request is malformed or does not fit the identity."""


class _NotFast(Exception):
    """The fast path does not take this call (its transaction rolls back; the ORM path answers)."""


_SI, _U, _K, _C = SignIdentity.__table__, EndUser.__table__, KeyRecord.__table__, CertificateRecord.__table__
_T, _TN = AccessToken.__table__, Tenant.__table__
# The token with its client (what ``TenantService.resolve`` reads), the identity as the token's user
# sees it (``IdentityService._query``: the user's own identities only), its user and its key.
_C0, _C1 = _C.alias("own_certificate"), _C.alias("revoked_certificate")
_CALL_ROW = (
    select(_T.c.tenant_id, _T.c.auth_server, _T.c.scope, _T.c.issued_at, _T.c.expires_at, _T.c.user_id,
           _T.c.sign_identity_id, _T.c.digests_summary, _T.c.digests_summary_algorithm, _T.c.digest_types,
           _T.c.consumed_at, _TN.c.client_id, _TN.c.enabled,
           _SI.c.status, _SI.c.certificate_der, _U.c.tenant_id, _U.c.enabled, _K.c.id, _K.c.tenant_id, _K.c.label,
           _K.c.backend, _K.c.algorithm, _K.c.public_key_der, _K.c.created_at, _K.c.usage,
           # the revocation check below, for the serial number of the identity's certificate record
           _C0.c.serial_hex,
           select(_C1.c.id).where(_C1.c.serial_hex == _C0.c.serial_hex, _C1.c.der == _SI.c.certificate_der,
                                  _C1.c.revoked_at.is_not(None)).exists().label("revoked"))
    .join_from(_T, _TN, _TN.c.id == _T.c.tenant_id)
    .join(_SI, (_SI.c.id == bindparam("identity_id")) & (_SI.c.user_id == _T.c.user_id))
    .join(_U, _U.c.id == _SI.c.user_id).join(_K, _K.c.id == _SI.c.key_id)
    .outerjoin(_C0, _C0.c.id == _SI.c.certificate_id)
    .where(_T.c.token_hash == bindparam("token_hash")))
# ``IdentityService.check_usable``: a certificate of this serial number and content that is revoked
_REVOKED = (select(_C.c.id)
            .where(_C.c.serial_hex == bindparam("serial_hex"), _C.c.der == bindparam("der"), _C.c.revoked_at.is_not(None))
            .limit(1))


@functools.lru_cache(maxsize=4096)
def _certificate_facts(der: bytes) -> tuple[datetime, datetime, str]:
    """(not before, not after, serial in hex) of a certificate: immutable facts of its DER."""
    cert = x509.load_der_x509_certificate(der)
    return cert.not_valid_before_utc, cert.not_valid_after_utc, format(cert.serial_number, "x")


@dataclass(frozen=True)
class RawRequest:
    """One digest to sign: ``hash_name`` names the digest's hash, ``scheme`` the padding."""

    digest: bytes
    hash_name: str
    scheme: SignatureScheme

    @property
    def algorithm_name(self) -> str:
        """TrustedX spelling: rsa-sha256, ecdsa-sha384, ..."""
        return f"{'ecdsa' if self.scheme is SignatureScheme.ECDSA else 'rsa'}-{self.hash_name}"


def parse_request(key_algorithm: KeyAlgorithm, signature_algorithm: str | None, *, digest: bytes | None = None,
                  digest_info: bytes | None = None, allow_sha1: bool = False) -> RawRequest:
    """Interpret one request of the eSigP wire format against the identity's key.

    ``signature_algorithm``: ``rsa-sha1|rsa-sha256|rsa-sha384|rsa-sha512`` (digest of that hash),
    ``rsa-pkcs1`` (``digest_info`` is a DER DigestInfo), ``ecdsa`` (hash told by the digest's
    length) or ``ecdsa-sha256|...``; absent means the key's own kind with the hash told by length.
    """
    if digest_info is not None:
        alg = (signature_algorithm or "").strip().lower()
        if alg not in ("", "rsa-pkcs1"):
            raise RawSigningError("invalid_request", "data (a DigestInfo) goes only with signature_algorithm rsa-pkcs1")
        try:
            info = algos.DigestInfo.load(digest_info, strict=True)
            hash_name = info["digest_algorithm"]["algorithm"].native
            digest = info["digest"].native
        except (ValueError, TypeError, KeyError) as exc:
            raise RawSigningError("invalid_digest_info", "data is not a DER DigestInfo") from exc
        hash_name, scheme = _interpret(key_algorithm, f"rsa-{hash_name}", len(digest), allow_sha1, signature_algorithm)
        return RawRequest(digest, hash_name, scheme)
    if digest is None:
        raise RawSigningError("invalid_request", "digest_value is required")
    hash_name, scheme = _interpret(key_algorithm, signature_algorithm, len(digest), allow_sha1, signature_algorithm)
    return RawRequest(digest, hash_name, scheme)


@functools.lru_cache(maxsize=1024)
def _interpret(key_algorithm: KeyAlgorithm, signature_algorithm: str | None, digest_size: int,
               allow_sha1: bool, given: str | None) -> tuple[str, SignatureScheme]:
    """(hash name, scheme) of ``parse_request``: a function of the algorithm names and the digest's
    size only, so a batch works it out once (refusals raise, and are not remembered). ``given``:
    the caller's own signature_algorithm, for the messages."""
    alg = (signature_algorithm or "").strip().lower()
    if alg in ("", "rsa", "ecdsa", "rsa-pkcs1"):
        kind = alg.split("-")[0] or ("rsa" if key_algorithm.is_rsa else "ecdsa")
        hash_name = _BY_SIZE.get(digest_size, "")
        if not hash_name:
            raise RawSigningError("invalid_digest", f"a digest of {digest_size} bytes matches no supported hash")
    else:
        kind, _, hash_name = alg.partition("-")
        if kind not in ("rsa", "ecdsa") or hash_name not in _SIGNABLE_HASHES:
            raise RawSigningError("unsupported_algorithm", f"unsupported signature_algorithm {given!r}")
        if digest_size != HASH_SIZES[hash_name]:
            raise RawSigningError("invalid_digest",
                                  f"a {hash_name} digest has {HASH_SIZES[hash_name]} bytes, got {digest_size}")
    if hash_name == "sha1" and not allow_sha1:
        raise RawSigningError("unsupported_algorithm", "SHA-1 signatures are not allowed by this service")
    if (kind == "rsa") != key_algorithm.is_rsa:
        raise RawSigningError("algorithm_mismatch",
                              f"the identity holds a {key_algorithm.value} key; it cannot make {kind} signatures")
    return hash_name, SignatureScheme.RSA_PKCS1V15 if kind == "rsa" else SignatureScheme.ECDSA


class RawSigningService:
    def __init__(self, identities: IdentityService, keystore: KeyStore, sole_control: SoleControl, *,
                 allow_sha1: bool = False) -> None:
        self.identities = identities
        self.keystore = keystore
        self.sole_control = sole_control
        self.allow_sha1 = allow_sha1
        # The fast path's write sections (spend .. commit) in this process take turns here: a
        # waiter wakes as soon as the other commits, where SQLite's busy handler would sleep 1 ms
        # or more. Nothing else takes this lock; the database still serialises other processes.
        self._write_lock = threading.Lock()

    def identity_for(self, token: TokenInfo, identity_id: str, *, session: Session | None = None) -> IdentityInfo:
        """The identity if the token's user (or client) may use it. A signing token naming
        another identity is a sole-control refusal (audited), not just a 404. ``session``: read
        in the caller's transaction (which must not have written yet: a refusal is appended)."""
        try:
            return self.identities.get(identity_id, Viewer.of(token), session=session)
        except IdentityError:
            if token.sign_identity_id is not None and token.sign_identity_id != identity_id:
                raise self.sole_control.refuse(token, "identity_mismatch",
                                               "the token was issued for another sign identity", identity_id) from None
            raise

    def key_algorithm(self, identity: IdentityInfo) -> KeyAlgorithm:
        return self.keystore.identity_key(identity.key_id, identity.user_tenant_id).algorithm

    def sign(self, token: TokenInfo, identity_id: str,
             requests: list[RawRequest] | Callable[[KeyAlgorithm], list[RawRequest]]) -> list[bytes]:
        """Spend the token's consent on exactly ``requests`` (in order) and sign them.

        ``requests`` may be a function of the identity key's algorithm that parses them (and
        raises on a malformed one): it runs after the identity and key are resolved and before
        the consent is spent, so the call reads them once."""
        try:
            return self._sign_fast(identity_id, requests, token.token_hash, token)
        except _NotFast:
            pass
        return self._sign(token, identity_id, requests)

    def sign_bearer(self, bearer: str | None, identity_id: str,
                    requests: list[RawRequest] | Callable[[KeyAlgorithm], list[RawRequest]],
                    resolve: Callable[[], TokenInfo]) -> list[bytes]:
        """``sign`` for a facade that holds the bearer token only: the fast path reads the token in
        its joined query; any other case calls ``resolve`` (the facade's own token check, which
        answers an unknown or expired token) and signs as ``sign`` does."""
        if bearer and len(bearer) <= 512:
            try:
                return self._sign_fast(identity_id, requests, hashlib.sha256(bearer.encode()).hexdigest())
            except _NotFast:
                pass
        return self._sign(resolve(), identity_id, requests)

    def _sign(self, token: TokenInfo, identity_id: str,
              requests: list[RawRequest] | Callable[[KeyAlgorithm], list[RawRequest]]) -> list[bytes]:
        """The ORM path: every refusal answered and audited."""
        with self.identities.db.session() as s:
            identity = self.identity_for(token, identity_id, session=s)
            key = self.keystore.identity_key(identity.key_id, identity.user_tenant_id, session=s)
            if callable(requests):
                requests = requests(key.algorithm)
            if not requests or len(requests) > MAX_BATCH:
                raise RawSigningError("invalid_request", f"a batch has 1 to {MAX_BATCH} requests")
            self.identities.check_usable(identity, session=s)
            reference = self.sole_control.authorize(token, identity_id,
                                                    [TypedDigest(r.hash_name, r.digest) for r in requests], session=s)
            try:
                auth = KeyUseAuthorization(reference, identity_id, actor=token.user_id or token.client_id,
                                           tenant_id=token.tenant_id)
                return self.keystore.sign_with_identity_key(
                    key, [(r.digest, r.hash_name, r.scheme) for r in requests], auth, session=s)
            except KeyStoreError as exc:
                raise RawSigningError("signing_failed", f"the key store could not sign: {exc}", 500) from exc

    def _sign_fast(self, identity_id: str, requests: list[RawRequest] | Callable[[KeyAlgorithm], list[RawRequest]],
                   token_hash: str, given: TokenInfo | None = None) -> list[bytes]:
        """``sign`` when everything is in order; raises _NotFast (having written nothing) otherwise.
        The token is the one whose SHA-256 is ``token_hash``: ``given`` when the caller resolved it."""
        sole = self.sole_control
        now = datetime.now(timezone.utc)
        if given is not None and (given.user_id is None or sole.refusal(given, identity_id, None, now=now)):
            raise _NotFast
        with self.identities.db.session() as s:
            conn = s.connection()
            if not conn.dialect.update_returning:
                raise _NotFast
            # reads first, outside the write lock (as the ORM path does); the spend below is conditional
            row = conn.execute(_CALL_ROW, {"token_hash": token_hash, "identity_id": identity_id}).first()
            if row is None:
                raise _NotFast
            (tenant_id, auth_server, scope, issued_at, expires_at, user_id, sign_identity_id, digests_summary,
             digests_summary_algorithm, digest_types, consumed_at, client_id, client_enabled,
             status, certificate_der, user_tenant_id, user_enabled, key_id, key_tenant_id, label, backend, algorithm,
             public_key_der, created_at, usage, record_serial_hex, revoked) = row
            # TenantService.resolve: a known token of an enabled client, unexpired
            if not client_enabled or consumed_at is not None or aware(expires_at) <= now:
                raise _NotFast
            token = given or TokenInfo(
                tenant_id=tenant_id, client_id=client_id, auth_server=auth_server, scopes=frozenset(scope.split()),
                issued_at=aware(issued_at), expires_at=aware(expires_at), user_id=user_id,
                sign_identity_id=sign_identity_id, digests_summary=digests_summary,
                digests_summary_algorithm=digests_summary_algorithm, token_hash=token_hash,
                digest_types=tuple(digest_types.split()) if digest_types else None)
            if token.user_id != user_id or token.user_id is None or sole.refusal(token, identity_id, None, now=now):
                raise _NotFast
            # IdentityService.check_usable and KeyStore.identity_key
            if (status != "enabled" or not user_enabled or usage != KeyUsage.IDENTITY.value
                    or key_tenant_id != user_tenant_id or backend != self.keystore.backend.name):
                raise _NotFast
            key = StoredKey(id=key_id, tenant_id=key_tenant_id, label=label, backend=backend,
                            algorithm=KeyAlgorithm(algorithm), public_key_der=public_key_der,
                            created_at=aware(created_at), usage=KeyUsage.IDENTITY)
            if callable(requests):
                requests = requests(key.algorithm)  # a malformed request raises: nothing was written
            if not requests or len(requests) > MAX_BATCH:
                raise RawSigningError("invalid_request", f"a batch has 1 to {MAX_BATCH} requests")
            try:
                not_before, not_after, serial_hex = _certificate_facts(certificate_der)
            except ValueError:
                raise _NotFast from None
            if not (not_before <= now <= not_after):
                raise _NotFast
            if record_serial_hex != serial_hex:  # no certificate record named, or another serial: ask by this one
                revoked = conn.execute(_REVOKED, {"serial_hex": serial_hex, "der": certificate_der}).first() is not None
            if revoked:
                raise _NotFast
            typed = [TypedDigest(r.hash_name, r.digest) for r in requests]
            if sole.refusal(token, identity_id, typed, now=now) is not None:
                raise _NotFast
            # the write transaction: spend, both audit events, commit; then the signatures
            lock = self._write_lock
            lock.acquire()
            held = [True]

            def release() -> None:
                if held[0]:
                    held[0] = False
                    lock.release()

            try:
                if not sole.spend_in(conn, token, now):
                    raise _NotFast  # spent meanwhile: the ORM path refuses and audits it
                pending = sole.audit.pending_in(conn)
                reference = sole.record_in(pending, token, identity_id, typed)
                auth = KeyUseAuthorization(reference, identity_id, actor=user_id, tenant_id=token.tenant_id)
                try:
                    return self.keystore.sign_with_identity_key_pending(
                        s, pending, key, [(r.digest, r.hash_name, r.scheme) for r in requests], auth, release)
                except KeyStoreError as exc:
                    raise RawSigningError("signing_failed", f"the key store could not sign: {exc}", 500) from exc
            finally:
                release()

    def sign_authorized(self, identity: IdentityInfo, request: RawRequest, *, process_id: str, actor: str,
                        tenant_id: str | None) -> bytes:
        """Sign after the user approved this very digest on their device: the pending process
        ``process_id`` (processes module) is the authorization the key store checks and audits."""
        self.identities.check_usable(identity)
        key = self.keystore.identity_key(identity.key_id, identity.user_tenant_id)
        auth = KeyUseAuthorization.device_process(process_id, identity.id, actor, tenant_id)
        [value] = self.keystore.sign_with_identity_key(key, [(request.digest, request.hash_name, request.scheme)], auth)
        return value
