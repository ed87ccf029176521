"""Signature requests: documents a relying party asks to have signed with a server-held sign
identity, authorized once and executed once (vendor-neutral; the Fortress facade speaks it).

Life of a request::

    create ──> pending ──(the user's consent on the service's pages)──> authorized ──> executing ──> done
       │          └──(cancel, or the consent page expires)──> denied                        └──> failed
       └──> authorized (unattended e-seal: the client's own credentials authorize it)

Sole control (EN 419 241-1 SCAL2): the consent binds the typed list of the documents' digests
(each document hashed with its signature's hash) through the same digests-bound signing token as
every server signature (core/sole_control.py). Execution recomputes those digests from the stored
documents, spends the token once on exactly them, and the key store signs the data to be signed
computed from those very documents. A second execution answers the stored results and never signs
again; a request of another client is unknown (404), as if it did not exist.

Unattended requests name an e-seal identity (``certificateCode``) of a legal person of the same
client; a natural person's identity never signs without the person. The service issues and spends
a digests-bound token for the seal itself, so the audit trail and the key store's check are the
same as for a person's consent.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from asn1crypto import x509 as asn1_x509
from pyhanko.sign.timestamps import TimestampRequestError
from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID
from sqlalchemy import delete, select, update

from remotesign.core.callbacks import Callback, CallbackSchedule, due_now
from remotesign.core.document_signer import DocumentSigner, Prepared, SignatureSpec, document
from remotesign.core.errors import CoreError
from remotesign.core.identities import IdentityError, IdentityInfo, IdentityService, PinRefused, Viewer
from remotesign.core.operations import abandoned, crash_point, new_lease
from remotesign.core.scopes import USE_SERVER
from remotesign.core.sole_control import SoleControl, SoleControlRefused, TypedDigest, digests_summary
from remotesign.core.tenants import TenantService, TokenInfo, hash_of
from remotesign.core.users import UserError, UserInfo, UserService
from remotesign.formats.base import FormatError
from remotesign.keystore import KeyStore, KeyUseAuthorization
from remotesign.keystore.base import KeyStoreError
from remotesign.storage.audit import AuditLog
from remotesign.storage.blobs import BlobStore
from remotesign.storage.db import Database
from remotesign.storage.models import SignatureRequest
from remotesign.storage.times import aware
from remotesign.trust.tsa_clients import TsaAuth, TsaChoice, TsaError

MAX_DOCUMENTS = 40
SUMMARY_NAMES = {"sha256": "SHA256", "sha384": "SHA384", "sha512": "SHA512"}
CALLBACK_SOURCE = "signature_request"  # its callbacks' name (core/callbacks.py), the event of their webhooks
AUTH_SERVER = "fortress"  # the tokens this module issues answer to the signature request's API


class SignatureRequestError(CoreError):
    """A request that cannot be created, authorized or executed as asked; ``code`` is stable."""


@dataclass(frozen=True)
class NewDocument:
    """One document of a new request with the signature to make over it."""

    name: str
    content: bytes
    spec: SignatureSpec
    ref: str | None = None
    tsa: TsaChoice | None = None  # None: the service's own TSA


@dataclass(frozen=True)
class CertificateFilter:
    """Which of the user's certificates may sign: a given identity, and/or issuer / subject
    common names and certificate policy OIDs (any listed value of each given list matches)."""

    identity_id: str | None = None
    issuer_cn: tuple[str, ...] = ()
    subject_cn: tuple[str, ...] = ()
    policy_oids: tuple[str, ...] = ()

    def matches(self, identity: IdentityInfo) -> bool:
        if self.identity_id is not None and identity.id != self.identity_id:
            return False
        cert = identity.certificate()
        if self.issuer_cn and not set(_common_names(cert.issuer)) & set(self.issuer_cn):
            return False
        if self.subject_cn and not set(_common_names(cert.subject)) & set(self.subject_cn):
            return False
        return not self.policy_oids or bool(set(_policy_oids(cert)) & set(self.policy_oids))


@dataclass(frozen=True)
class RequestInfo:
    id: str
    auth_code: str
    tenant_id: str
    user_id: str | None
    mode: str
    status: str
    sign_identity_id: str | None
    candidates: tuple[str, ...]
    documents: tuple[str, ...]
    refs: tuple[str, ...]
    digests_summary: str
    digests_summary_algorithm: str
    digest_types: tuple[str, ...] | None
    error_code: str | None
    error_message: str | None
    run_async: bool
    multifactor: bool
    callback_url: str | None
    callback_status: str
    callback_attempts: int
    callback_error: str | None
    created_at: datetime
    expires_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class SignedDocument:
    ref: str
    name: str
    content: bytes


def _common_names(name: x509.Name) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _policy_oids(cert: x509.Certificate) -> list[str]:
    try:
        policies = cert.extensions.get_extension_for_oid(ExtensionOID.CERTIFICATE_POLICIES).value
    except x509.ExtensionNotFound:
        return []
    return [p.policy_identifier.dotted_string for p in policies]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _info(r: SignatureRequest) -> RequestInfo:
    items = json.loads(r.items)
    return RequestInfo(
        id=r.id, auth_code=r.auth_code, tenant_id=r.tenant_id, user_id=r.user_id, mode=r.mode, status=r.status,
        sign_identity_id=r.sign_identity_id, candidates=tuple(c for c in r.candidates.split() if c),
        documents=tuple(i["name"] for i in items), refs=tuple(i["ref"] for i in items),
        digests_summary=r.digests_summary, digests_summary_algorithm=r.digests_summary_algorithm,
        digest_types=tuple(r.digest_types.split()) if r.digest_types else None, error_code=r.error_code,
        error_message=r.error_message, run_async=r.run_async, multifactor=bool(r.multifactor),
        callback_url=r.callback_url,
        callback_status=r.callback_status, callback_attempts=r.callback_attempts, callback_error=r.callback_error,
        created_at=aware(r.created_at), expires_at=aware(r.expires_at),
        finished_at=aware(r.finished_at) if r.finished_at else None)


def _namespace(request_id: str) -> str:
    return f"sigreq-{request_id}"


class SignatureRequestService:
    def __init__(self, db: Database, audit: AuditLog, blobs: BlobStore, users: UserService,
                 identities: IdentityService, tenants: TenantService, keystore: KeyStore, sole_control: SoleControl,
                 signer: DocumentSigner, signing: Any, tsa_clients: Any, *, request_ttl: int = 3600,
                 token_ttl: int = 300, retention: int = 86400, lease_seconds: int = 600,
                 callback_max_attempts: int = 8, callback_backoff: float = 2.0, callback_lease: float = 60.0) -> None:
        self.db = db
        self.audit = audit
        self.blobs = blobs
        self.users = users
        self.identities = identities
        self.tenants = tenants
        self.keystore = keystore
        self.sole_control = sole_control
        self.signer = signer
        self.signing = signing  # SigningService: the trust path of a signer and the extension context
        self.tsa_clients = tsa_clients
        self.request_ttl = request_ttl
        self.token_ttl = token_ttl
        self.retention = retention
        self.lease_seconds = lease_seconds
        self.callbacks = CallbackSchedule(db, audit, SignatureRequest, CALLBACK_SOURCE,
                                          max_attempts=callback_max_attempts, backoff=callback_backoff,
                                          lease=callback_lease)

    # -- 1. a new request ----------------------------------------------------------------------------
    def create(self, tenant_id: str, documents: Sequence[NewDocument], *, user_code: str | None,
               certificates: CertificateFilter, certificate_password: str | None = None,
               run_async: bool = False, callback_url: str | None = None, multifactor: bool = False) -> RequestInfo:
        """A request for ``user_code``'s consent (interactive), or without a user code an
        unattended e-seal with the identity ``certificates.identity_id`` names. ``multifactor``:
        the user approves with the PIN and a one-time code (else either)."""
        if not documents:
            raise SignatureRequestError("invalid_request", "signatureConfigurations is empty")
        if len(documents) > MAX_DOCUMENTS:
            raise SignatureRequestError("invalid_request", f"at most {MAX_DOCUMENTS} documents per request")
        if run_async and not callback_url:
            raise SignatureRequestError("invalid_request", "an asynchronous request needs a callbackUrl")
        if user_code:
            mode = "interactive"
            user = self._user(user_code, tenant_id)
            candidates = [i for i in self.identities.list(Viewer(tenant_id), user_id=user.id)
                          if i.active() and "x509:keyUsage:digitalSignature" not in i.labels
                          and certificates.matches(i)]
        else:
            mode = "unattended"
            if not certificates.identity_id:
                raise SignatureRequestError("invalid_request", "give a userCode, or a certificateCode for an e-seal")
            identity, user = self._seal_identity(tenant_id, certificates, certificate_password)
            candidates = [identity]
        if not candidates:
            raise SignatureRequestError("certificate_not_found",
                                        "none of the user's active certificates matches the request", 404)
        request_id, auth_code = str(uuid.uuid4()), secrets.token_urlsafe(24)
        namespace = _namespace(request_id)
        items: list[dict[str, Any]] = []
        typed: list[TypedDigest] = []
        try:
            for n, doc in enumerate(documents):
                if not doc.content:
                    raise SignatureRequestError("invalid_request", f"document {n + 1} is empty")
                info = self.blobs.put(namespace, f"doc-{n}", [doc.content])
                digest = hashlib.new(doc.spec.hash_name, doc.content).digest()
                typed.append(TypedDigest(doc.spec.hash_name, digest))
                items.append({"ref": doc.ref or uuid.uuid4().hex, "name": (doc.name or f"document-{n + 1}")[:255],
                              "blob": info.name, "sha256": info.sha256.hex(), "digest": digest.hex(),
                              "spec": doc.spec.to_json(),
                              "tsa": _tsa_json(doc.tsa)})
            summary, summary_alg, types = self._binding(typed)
            now = _now()
            with self.db.session() as s:
                s.add(SignatureRequest(
                    id=request_id, auth_code=auth_code, tenant_id=tenant_id, user_id=user.id, mode=mode,
                    candidates=" ".join(i.id for i in candidates),
                    sign_identity_id=candidates[0].id if len(candidates) == 1 else None,
                    items=json.dumps(items, separators=(",", ":")), digests_summary=summary,
                    digests_summary_algorithm=summary_alg, digest_types=types,
                    status="authorized" if mode == "unattended" else "pending", run_async=run_async,
                    multifactor=multifactor,
                    callback_url=callback_url, callback_status="none", callback_attempts=0, created_at=now,
                    expires_at=now + timedelta(seconds=self.request_ttl)))
        except BaseException:
            self.blobs.delete_namespace(namespace)
            raise
        self.audit.append("signature_request.created", actor=tenant_id, tenant_id=tenant_id, subject=request_id,
                          details={"mode": mode, "user_id": user.id, "documents": len(items),
                                   "digests_summary": summary, "candidates": [i.id for i in candidates]})
        return self.get(tenant_id, request_id)

    def _user(self, user_code: str, tenant_id: str) -> UserInfo:
        try:
            return self.users.by_username(user_code, tenant_id)
        except UserError as exc:
            raise SignatureRequestError("user_not_found", f"no user {user_code[:100]!r}", 404) from exc

    def _seal_identity(self, tenant_id: str, certificates: CertificateFilter,
                       password: str | None) -> tuple[IdentityInfo, UserInfo]:
        """The e-seal identity an unattended request names: a legal person's, of this client."""
        try:
            identity = self.identities.get(certificates.identity_id or "", Viewer(tenant_id))
        except IdentityError as exc:
            raise SignatureRequestError("certificate_not_found", "no such certificate of this client", 404) from exc
        user = self.users.get(identity.user_id, tenant_id)
        if user.kind != "legal":
            self.audit.append("signature_request.refused", actor=tenant_id, tenant_id=tenant_id, subject=identity.id,
                              details={"reason": "unattended_natural_person"})
            raise SignatureRequestError("unattended_not_allowed", "only a legal person's e-seal signs unattended; "
                                        "a natural person authorizes each signature (give userCode)", 403)
        if not identity.active() or not certificates.matches(identity):
            raise SignatureRequestError("certificate_not_found", "the certificate is not active or does not "
                                        "match certificateFilter", 404)
        if identity.has_pin or password:
            try:
                self.identities.verify_pin(identity.id, password or "", actor=tenant_id, tenant_id=tenant_id)
            except PinRefused as exc:
                raise SignatureRequestError("invalid_certificate_password", exc.message, 403) from exc
        return identity, user

    @staticmethod
    def _binding(typed: list[TypedDigest]) -> tuple[str, str, str | None]:
        """(summary, its algorithm, declared digest types): one hash for all documents needs no
        declaration; mixed hashes are declared in order, as sole control wants them."""
        hashes = {d.hash_name for d in typed}
        alg = SUMMARY_NAMES[typed[0].hash_name] if len(hashes) == 1 else "SHA256"
        types = None if len(hashes) == 1 else " ".join(d.hash_name for d in typed)
        return digests_summary([d.value for d in typed], alg), alg, types

    # -- 2. reading ----------------------------------------------------------------------------------
    def _row(self, s: Any, tenant_id: str | None, request_id: str) -> SignatureRequest:
        r = s.get(SignatureRequest, request_id) if 0 < len(request_id) <= 36 else None
        if r is None or (tenant_id is not None and r.tenant_id != tenant_id):
            raise SignatureRequestError("request_not_found", "no such signature request", 404)
        return r

    def get(self, tenant_id: str, request_id: str) -> RequestInfo:
        with self.db.session() as s:
            return _info(self._row(s, tenant_id, request_id))

    def by_auth_code(self, tenant_id: str, auth_code: str) -> RequestInfo:
        """The request a user is sent to authorize (the client's own only)."""
        with self.db.session() as s:
            r = s.scalars(select(SignatureRequest).where(SignatureRequest.auth_code == auth_code)).first() \
                if 0 < len(auth_code) <= 64 else None
            if r is None or r.tenant_id != tenant_id:
                raise SignatureRequestError("request_not_found", "no such signature request", 404)
            return _info(r)

    def document_names(self, request_id: str, tenant_id: str) -> tuple[str, ...]:
        return self.get(tenant_id, request_id).documents

    # -- 3. the user's consent (called by the consent flow) ------------------------------------------
    def consent_parameters(self, info: RequestInfo) -> dict[str, str]:
        """The authorization request that makes the user consent to exactly this request's digests."""
        if info.mode != "interactive" or info.status != "pending":
            raise SignatureRequestError("invalid_request", f"the signature request is {info.status}, not waiting "
                                        "for the user's authorization")
        if info.expires_at <= _now():
            raise SignatureRequestError("expired_request", "the signature request has expired", 410)
        params = {"scope": USE_SERVER, "digests_summary": info.digests_summary,
                  "digests_summary_algorithm": info.digests_summary_algorithm}
        if info.digest_types:
            params["digests_algorithms"] = ",".join(info.digest_types)
        if info.sign_identity_id:
            params["sign_identity_id"] = info.sign_identity_id
        return params

    def consented(self, request_id: str, tenant_id: str, user_id: str, identity_id: str) -> None:
        """The user consented with ``identity_id``: the request gets its own digests-bound token."""
        with self.db.session() as s:
            r = self._row(s, tenant_id, request_id)
            if r.user_id != user_id:
                raise SignatureRequestError("access_denied", "this signature request is for another user", 403)
            if identity_id not in r.candidates.split():
                raise SignatureRequestError("access_denied", "this certificate was not offered for the request", 403)
            if r.status != "pending":
                raise SignatureRequestError("invalid_request", f"the signature request is {r.status}")
            summary, alg, types = r.digests_summary, r.digests_summary_algorithm, r.digest_types
        issued = self.tenants.issue_user_token(tenant_id, AUTH_SERVER, USE_SERVER, user_id=user_id, ttl=self.token_ttl,
                                               sign_identity_id=identity_id, digests_summary=summary,
                                               digests_summary_algorithm=alg, digest_types=types,
                                               grant="signature_request")
        with self.db.session() as s:
            moved = s.execute(update(SignatureRequest)
                              .where(SignatureRequest.id == request_id, SignatureRequest.status == "pending")
                              .values(status="authorized", sign_identity_id=identity_id,
                                      token_hash=hash_of(issued.access_token))).rowcount
        if moved != 1:
            raise SignatureRequestError("invalid_request", "the signature request was answered already")
        self.audit.append("signature_request.authorized", actor=user_id, tenant_id=tenant_id, subject=request_id,
                          details={"sign_identity_id": identity_id, "digests_summary": summary})

    def denied(self, request_id: str, tenant_id: str, reason: str) -> None:
        with self.db.session() as s:
            run_async = s.scalar(select(SignatureRequest.run_async).where(SignatureRequest.id == request_id))
            moved = s.execute(update(SignatureRequest)
                              .where(SignatureRequest.id == request_id, SignatureRequest.tenant_id == tenant_id,
                                     SignatureRequest.status == "pending")
                              .values(status="denied", error_code="access_denied", error_message=reason,
                                      finished_at=_now(), **_callback_due(bool(run_async)))).rowcount
        if moved:
            self.audit.append("signature_request.denied", actor="user", tenant_id=tenant_id, subject=request_id,
                              details={"reason": reason})

    def candidates(self, request_id: str, tenant_id: str) -> tuple[str, ...]:
        return self.get(tenant_id, request_id).candidates

    # -- 4. execution --------------------------------------------------------------------------------
    async def execute(self, tenant_id: str, request_id: str) -> list[SignedDocument]:
        """Sign every document of an authorized request, once; afterwards the same results."""
        claimed = self._claim(tenant_id, request_id)
        if claimed is None:
            return self.results(tenant_id, request_id)
        try:
            results = await self._sign(claimed)
        except BaseException as exc:
            failure = _as_failure(exc)
            self._fail(claimed, failure)
            if failure is exc:
                raise
            raise failure from exc
        return results

    def _claim(self, tenant_id: str, request_id: str) -> SignatureRequest | None:
        """Move the request to ``executing`` with a lease; None when it is done (answer the
        results). Every other state is the caller's error."""
        now = _now()
        with self.db.session() as s:
            r = self._row(s, tenant_id, request_id)
            status = r.status
            if status == "done":
                return None
            if status == "executing" and not abandoned(r.lease_owner, r.lease_until, now):
                raise SignatureRequestError("in_progress", "the signature request is being executed", 409)
            if status not in ("authorized", "executing"):
                raise self._state_error(r)
            if r.mode == "interactive" and aware(r.expires_at) <= now:
                raise SignatureRequestError("expired_request", "the signature request has expired", 410)
            lease = new_lease(self.lease_seconds, now)
            moved = s.execute(update(SignatureRequest)
                              .where(SignatureRequest.id == request_id, SignatureRequest.status == status,
                                     _same_owner(r.lease_owner))
                              .values(status="executing", lease_owner=lease.owner, lease_until=lease.expires_at)
                              ).rowcount
            if moved != 1:
                raise SignatureRequestError("in_progress", "the signature request is being executed", 409)
            s.flush()
            r = s.get(SignatureRequest, request_id, populate_existing=True)
            s.expunge(r)
            return r

    @staticmethod
    def _state_error(r: SignatureRequest) -> SignatureRequestError:
        if r.status == "pending":
            return SignatureRequestError("authorization_pending", "the user has not authorized the request yet", 409)
        if r.status == "denied":
            return SignatureRequestError("access_denied", r.error_message or "the user refused to sign", 403)
        return SignatureRequestError(r.error_code or "signing_failed",
                                     r.error_message or "the signature request failed", r.error_status or 422)

    def _fail(self, r: SignatureRequest, failure: CoreError) -> None:
        with self.db.session() as s:
            s.execute(update(SignatureRequest).where(SignatureRequest.id == r.id, SignatureRequest.status == "executing",
                                                     _same_owner(r.lease_owner))
                      .values(status="failed", error_code=failure.code[:60], error_message=failure.message[:2000],
                              error_status=failure.status, finished_at=_now(), lease_until=None, lease_owner=None,
                              **_callback_due(r.run_async)))
        self.audit.append("signature_request.failed", actor="service", tenant_id=r.tenant_id, subject=r.id,
                          details={"code": failure.code, "message": failure.message[:500]})

    async def _sign(self, r: SignatureRequest) -> list[SignedDocument]:
        items = json.loads(r.items)
        namespace = _namespace(r.id)
        identity = self.identities.get(r.sign_identity_id or "", Viewer(r.tenant_id, r.user_id))
        self.identities.check_usable(identity)
        certificate = identity.certificate()
        extra = [asn1_x509.Certificate.load(c) for c in identity.chain_der]
        path = self.signing.check_signer(certificate, extra).path
        key = self.keystore.identity_key(identity.key_id, identity.user_tenant_id)
        typed: list[TypedDigest] = []
        with contextlib.ExitStack() as stack:
            prepared: list[Prepared] = []
            signing_time = _now().replace(microsecond=0)
            for item in items:
                spec = SignatureSpec.from_json(item["spec"])
                h = hashlib.new(spec.hash_name)
                with self.blobs.open(namespace, item["blob"]) as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                typed.append(TypedDigest(spec.hash_name, h.digest()))
                doc = document(item["name"], _opener(self.blobs, namespace, item["blob"]), spec.kind,
                               bytes.fromhex(item["sha256"]))
                prepared.append(await self.signer.prepare(spec, doc, path, key.algorithm, stack, signing_time,
                                                          document_digest=typed[-1].value))
            token = self._token(r, identity)
            reference = self.sole_control.authorize(token, identity.id, typed)
            auth = KeyUseAuthorization(reference, identity.id, actor=token.user_id or r.tenant_id,
                                       tenant_id=r.tenant_id)
            values = self.keystore.sign_with_identity_key(
                key, [(p.digest, p.spec.hash_name, key.default_scheme) for p in prepared], auth)
            crash_point("signature_request.signed")
            context = self.signing.context()
            results: list[SignedDocument] = []
            for n, (item, p, value) in enumerate(zip(items, prepared, values)):
                ctx = dataclasses.replace(context, digest_algorithm=p.spec.hash_name)
                if item.get("tsa"):
                    choice = _tsa_choice(item["tsa"])
                    ctx = dataclasses.replace(ctx, timestamper=self.tsa_clients.timestamper(choice, r.tenant_id),
                                              digest_algorithm=choice.hash_algorithm)
                name = f"signed-{n}"
                with self.blobs.writer(namespace, name) as out:
                    await self.signer.finish(p, value, out, ctx)
                item["result"] = name
                item["tsa"] = None  # a TSA password is kept no longer than the request needs it
                with self.blobs.open(namespace, name) as f:
                    results.append(SignedDocument(item["ref"], item["name"], f.read()))
            crash_point("signature_request.written")
        with self.db.session() as s:
            moved = s.execute(update(SignatureRequest)
                              .where(SignatureRequest.id == r.id, SignatureRequest.status == "executing",
                                     _same_owner(r.lease_owner))
                              .values(status="done", items=json.dumps(items, separators=(",", ":")),
                                      finished_at=_now(), lease_until=None, lease_owner=None, token_hash=None,
                                      **_callback_due(r.run_async))).rowcount
        if moved != 1:  # pragma: no cover - the lease outlives any execution
            raise SignatureRequestError("in_progress", "the signature request was taken over", 409)
        self.audit.append("signature_request.executed", actor=token.user_id or r.tenant_id, tenant_id=r.tenant_id,
                          subject=r.id, details={"sign_identity_id": identity.id, "documents": len(items),
                                                 "results_sha256": [hashlib.sha256(d.content).hexdigest()
                                                                    for d in results]})
        return results

    def _token(self, r: SignatureRequest, identity: IdentityInfo) -> TokenInfo:
        """The digests-bound token that authorizes this execution: the one the user's consent
        produced, or for an unattended e-seal one issued now for the seal."""
        if r.mode == "interactive":
            token = self.tenants.by_hash(r.token_hash or "")
            if token is None:
                raise SignatureRequestError("authorization_expired", "the user's authorization is no longer valid", 403)
            return token
        issued = self.tenants.issue_user_token(r.tenant_id, AUTH_SERVER, USE_SERVER, user_id=identity.user_id,
                                               ttl=60, sign_identity_id=identity.id, digests_summary=r.digests_summary,
                                               digests_summary_algorithm=r.digests_summary_algorithm,
                                               digest_types=r.digest_types, grant="unattended")
        token = self.tenants.by_hash(hash_of(issued.access_token))
        assert token is not None
        return token

    def results(self, tenant_id: str, request_id: str) -> list[SignedDocument]:
        with self.db.session() as s:
            r = self._row(s, tenant_id, request_id)
            if r.status != "done":
                raise self._state_error(r)
            items = json.loads(r.items)
        namespace = _namespace(request_id)
        out = []
        for item in items:
            with self.blobs.open(namespace, item["result"]) as f:
                out.append(SignedDocument(item["ref"], item["name"], f.read()))
        return out

    # -- 5. asynchronous requests: background execution and callbacks ------------------------------
    def due_executions(self, limit: int = 4) -> list[tuple[str, str]]:
        """(tenant, request) of asynchronous requests authorized and waiting to be executed, or
        whose execution was abandoned (its lease ran out)."""
        now = _now()
        with self.db.session() as s:
            rows = s.execute(select(SignatureRequest.tenant_id, SignatureRequest.id, SignatureRequest.status,
                                    SignatureRequest.lease_owner, SignatureRequest.lease_until).where(
                SignatureRequest.run_async.is_(True), SignatureRequest.status.in_(("authorized", "executing")))
                .order_by(SignatureRequest.created_at).limit(limit * 4)).all()
        return [(t, i) for t, i, status, owner, until in rows
                if status == "authorized" or abandoned(owner, until, now)][:limit]

    def claim_callbacks(self, limit: int = 16) -> list[Callback]:
        """Callbacks due now, each claimed for one delivery attempt (core/callbacks.py)."""
        return self.callbacks.claim(limit)

    def callback_body(self, c: Callback) -> bytes:
        """What the receiver gets: the request's outcome, with the signed documents when done."""
        info = self.get(c.tenant_id, c.subject_id)
        body: dict[str, Any] = {"exeCode": info.id, "status": info.status.upper()}
        if info.status == "done":
            body["signatures"] = [{"ref": d.ref, "bytesB64": base64.b64encode(d.content).decode("ascii")}
                                  for d in self.results(c.tenant_id, c.subject_id)]
        else:
            body |= {"error": info.error_code, "error_description": info.error_message}
        return json.dumps(body, separators=(",", ":")).encode()

    def callback_outcome(self, c: Callback, error: str | None) -> str:
        """Record one delivery attempt (core/callbacks.py); returns the callback's new status."""
        return self.callbacks.record(c, error)

    # -- 6. housekeeping -----------------------------------------------------------------------------
    def sweep(self, now: datetime | None = None) -> int:
        """Forget requests past their expiry (unanswered) or retention (answered), documents too."""
        now = now or _now()
        with self.db.session() as s:
            kept = now - timedelta(seconds=self.retention)
            gone = list(s.scalars(select(SignatureRequest.id).where(
                ((SignatureRequest.status.in_(("pending", "authorized"))) & (SignatureRequest.expires_at < now))
                | ((SignatureRequest.finished_at.is_not(None)) & (SignatureRequest.finished_at < kept))
                # an execution abandoned long ago that nobody retried (its process died)
                | ((SignatureRequest.status == "executing") & (SignatureRequest.expires_at < kept)))))
            if gone:
                s.execute(delete(SignatureRequest).where(SignatureRequest.id.in_(gone)))
        for request_id in gone:
            self.blobs.delete_namespace(_namespace(request_id))
        return len(gone)


def _as_failure(exc: BaseException) -> CoreError:
    """What the caller is told about an execution that failed (and what the request records)."""
    if isinstance(exc, CoreError):
        return exc
    if isinstance(exc, SoleControlRefused):
        return SignatureRequestError(exc.reason, str(exc), 403)
    if isinstance(exc, TsaError):
        return SignatureRequestError(exc.code, exc.message, exc.status)
    if isinstance(exc, TimestampRequestError):
        return SignatureRequestError("tsa_unavailable", f"the time-stamping authority failed: {exc}", 502)
    if isinstance(exc, FormatError):
        return SignatureRequestError(exc.code, exc.message, 422)
    if isinstance(exc, KeyStoreError):
        return SignatureRequestError("key_refused", str(exc), 403)
    return SignatureRequestError("signing_failed", "the signature could not be made", 500)


def _same_owner(owner: str | None) -> Any:
    """SQL condition: the lease owner is still ``owner`` (NULL-safe): the fence of every move."""
    column = SignatureRequest.lease_owner
    return column.is_(None) if owner is None else column == owner


def _callback_due(run_async: bool) -> dict[str, Any]:
    """The columns that schedule an asynchronous request's callback now (nothing otherwise)."""
    return due_now() if run_async else {}


def _opener(blobs: BlobStore, namespace: str, name: str) -> Any:
    return lambda: blobs.open(namespace, name)


def _tsa_json(choice: TsaChoice | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    return {**dataclasses.asdict(choice), "auth": choice.auth.value}


def _tsa_choice(data: dict[str, Any]) -> TsaChoice:
    return TsaChoice(**{**data, "auth": TsaAuth(data["auth"])})


__all__ = ["CertificateFilter", "NewDocument", "RequestInfo", "SignatureRequestError", "SignatureRequestService",
           "SignedDocument"]
