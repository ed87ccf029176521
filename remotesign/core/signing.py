"""Two-step document signing over sessions, independent of any wire API.

prepare (CalculateDigest): pick the format (PAdES, or XAdES in an ASiC-E container: new, wrapped
or parallel), write the prepared state and return the digest to be signed.
finalize: check the signature value against the certificate and that digest, embed it, add the
signature time-stamp and the validation data (B-LT) and store the result in the session.
archive: B-LT -> B-LTA (document time-stamp / xadesv141:ArchiveTimeStamp).

Every session has at most one operation; its status moves prepared -> finalizing -> signed ->
archiving -> archived by compare-and-set updates, so a replayed or concurrent finalize can never
produce a second signature, and a failed step returns the operation to where it was.

Crash safety (core/operations.py): finalizing and archiving are claimed with a lease; a claim of a
process that died is taken over by a retry (at once when the process is known dead on this host,
else when the lease expires). The result is written under a name fixed by the operation, with an
exclusive create, and recorded in the same transaction that moves the status on, fenced by the
lease: a retry adopts a result its dead predecessor wrote but did not record, so every operation
ends with exactly one signature.

prepare, finalize and archive run in a worker thread with an event loop of its own
(core/offload.py): pyHanko's PDF writing and CMS building are plain Python, and on the service's
event loop one of them would hold up every other request until it ended.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import hashlib
import io
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any

from asn1crypto import x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign.timestamps import TimeStamper, TimestampRequestError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from remotesign.storage.audit import AuditLog
from remotesign.core import operations
from remotesign.core.extension import ExtensionError, ExtensionService
from remotesign.core.offload import off_loop
from remotesign.core.operations import Lease, LeaseLost
from remotesign.core.sessions import DocumentInfo, SessionError, SessionService
from remotesign.core.signature_values import SignerAlgorithm, SignerInputError, algorithm_for, normalize_and_verify
from remotesign.core.sole_control import digests_summary
from remotesign.formats import asic, pades
from remotesign.formats.base import FormatError, Limits, SignerSpec
from remotesign.formats.interface import (Container, DataToSign, Document, ExtensionContext, Level,
                                          SignParameters)
from remotesign.formats.registry import FormatRegistry
from remotesign.storage.blobs import BlobExists
from remotesign.storage.db import Database
from remotesign.storage.models import SessionDocument, SigningOperation
from remotesign.trust.revocation import PathError, TrustStore
from remotesign.trust.revocation_source import RevocationSource

log = logging.getLogger("remotesign.signing")

EDOC_SUFFIX = ".edoc"
#: operation records name the format as they always have; the registry's names since the format layer
FORMATS = {"pades": "pades", "xades": "asic-e"}
DEFAULT_LEASE_SECONDS = 300


class SigningError(Exception):
    """A request-level or session-level signing failure with a stable ``code``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class Outcome:
    """Result for one session: a digest (prepare), a document (finalize / archive) or an error."""

    session_id: str
    digest: bytes | None = None
    document: DocumentInfo | None = None
    error: SigningError | None = None


@dataclass(frozen=True)
class Signer:
    """A checked signer certificate: the certificate, its path to a trust anchor, its algorithm."""

    certificate: cx509.Certificate
    path: list[x509.Certificate]
    algorithm: SignerAlgorithm

    @property
    def spec(self) -> SignerSpec:
        return SignerSpec(certificate=self.path[0].dump(), chain=tuple(c.dump() for c in self.path[1:]),
                          digest_algorithm=self.algorithm.digest_algorithm, mechanism=self.algorithm.mechanism)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _failure(exc: Exception) -> SigningError:
    """Any expected failure as a SigningError with its stable code."""
    if isinstance(exc, SigningError):
        return exc
    if isinstance(exc, SessionError):
        return SigningError(exc.code, exc.message, exc.status)
    if isinstance(exc, (FormatError, SignerInputError, PathError)):
        return SigningError(exc.code, exc.message)
    if isinstance(exc, TimestampRequestError):
        code, status = getattr(exc, "code", None), getattr(exc, "status", None)
        if isinstance(code, str) and isinstance(status, int):  # trust.tsa_clients.TsaError says what failed
            return SigningError(code, str(getattr(exc, "message", exc)), status)
        return SigningError("timestamp_unavailable", f"the time-stamping authority failed: {exc}", 502)
    raise exc


class SigningService:
    def __init__(self, db: Database, sessions: SessionService, audit: AuditLog, trust: TrustStore,
                 revocation: RevocationSource, timestamper: TimeStamper, formats: FormatRegistry,
                 extension: ExtensionService | None = None, limits: Limits | None = None,
                 lease_seconds: int = DEFAULT_LEASE_SECONDS) -> None:
        self.db = db
        self.lease_seconds = lease_seconds
        self.sessions = sessions
        self.blobs = sessions.blobs
        self.audit = audit
        self.trust = trust
        self.revocation = revocation
        self.timestamper = timestamper
        self.formats = formats
        self.extension = extension
        self.limits = limits or Limits()

    # --- signer certificates --------------------------------------------------------------------

    def check_signer(self, certificate: cx509.Certificate, extra: list[x509.Certificate] | None = None) -> Signer:
        """The certificate must chain to a trust anchor, be valid now and allow signing."""
        algorithm = algorithm_for(certificate)
        cert = x509.Certificate.load(certificate.public_bytes(Encoding.DER))
        key_usage = cert.key_usage_value
        if key_usage is not None and not ({"non_repudiation", "digital_signature"} & set(key_usage.native)):
            raise SigningError("certificate_not_for_signing", "the certificate's key usage does not allow signing")
        try:
            path = self.trust.path(cert, extra=extra)
        except PathError as exc:
            raise SigningError(exc.code, exc.message) from exc
        return Signer(certificate, path, algorithm)

    # --- prepare --------------------------------------------------------------------------------

    async def prepare(self, tenant_id: str, session_ids: list[str], signer: Signer, *, sign_as_pdf: bool,
                      create_new_container: bool) -> list[Outcome]:
        async def one(sid: str) -> Outcome:
            return Outcome(sid, digest=await self._prepare_one(tenant_id, sid, signer, sign_as_pdf,
                                                               create_new_container))

        async def batch() -> list[Outcome]:
            outcomes = [await _guarded(sid, one) for sid in session_ids]
            self._record_summary(outcomes, signer)
            return outcomes

        return await off_loop(batch)

    def _record_summary(self, outcomes: list[Outcome], signer: Signer) -> None:
        """Remember which prepared sessions one digests summary covers, so the consent page can
        show the user the documents behind the digests they are asked to sign."""
        prepared = [o for o in outcomes if o.digest is not None]
        if len(prepared) < 2:
            return  # one digest: _save_operation recorded its summary with the operation
        summary = digests_summary([o.digest for o in prepared if o.digest is not None],
                                  signer.algorithm.api_algorithm)
        with self.db.session() as s:
            s.execute(update(SigningOperation).where(SigningOperation.session_id.in_([o.session_id for o in prepared]))
                      .values(digests_summary=summary))

    def documents_for_summary(self, tenant_id: str, summary: str) -> list[tuple[str, str]]:
        """(session id, document name) of the tenant's prepared sessions behind ``summary``."""
        from remotesign.storage.models import SessionDocument, SigningSession

        with self.db.session() as s:
            rows = s.execute(
                select(SigningOperation.session_id, SessionDocument.name)
                .join(SigningSession, SigningSession.id == SigningOperation.session_id)
                .join(SessionDocument, SessionDocument.session_id == SigningOperation.session_id)
                .where(SigningOperation.digests_summary == summary, SigningSession.tenant_id == tenant_id,
                       SigningOperation.status == "prepared", SessionDocument.kind.in_(("file", "hash", "signed")))
                .order_by(SigningOperation.created_at, SessionDocument.seq)).all()
        return [(sid, name) for sid, name in rows]

    def _sources(self, tenant_id: str, session_id: str) -> list[DocumentInfo]:
        docs = self.sessions.documents(tenant_id, session_id)
        signed = [d for d in docs if d.kind == "signed"]
        if signed:
            return [signed[-1]]
        inputs = [d for d in docs if d.kind in ("file", "hash")]
        if not inputs:
            raise SigningError("no_documents", "the session holds no documents to sign")
        return inputs

    async def _prepare_one(self, tenant_id: str, sid: str, signer: Signer, sign_as_pdf: bool,
                           create_new_container: bool) -> bytes:
        sources = self._sources(tenant_id, sid)
        self._reset_operation(tenant_id, sid)
        if sign_as_pdf:
            return await self._prepare_pades(tenant_id, sid, signer, sources)
        return await self._prepare_xades(tenant_id, sid, signer, sources, create_new_container)

    async def _prepare_pades(self, tenant_id: str, sid: str, signer: Signer, sources: list[DocumentInfo]) -> bytes:
        if len(sources) != 1 or sources[0].kind == "hash":
            raise SigningError("one_pdf_per_session", "signing as PDF needs exactly one PDF file in the session")
        doc = sources[0]
        prepared_blob = f"prep-{uuid.uuid4()}"
        namespace = self.sessions.namespace(tenant_id, sid)
        with self.blobs.writer(namespace, prepared_blob) as out:
            prepared = await self.formats.get(FORMATS["pades"]).data_to_sign(
                [self._document(tenant_id, sid, doc)], self._parameters(signer), out)
        state = {"source": doc.id, "name": doc.name, **prepared.state}
        self._save_operation(tenant_id, sid, "pades", signer, prepared.digest, state, prepared_blob)
        return prepared.digest

    def open_container(self, tenant_id: str, sid: str, doc: DocumentInfo) -> asic.AsicContainer:
        return asic.AsicContainer.open(self.sessions.open(tenant_id, sid, doc), self.limits)

    def _is_container(self, tenant_id: str, sid: str, doc: DocumentInfo) -> bool:
        if doc.blob is None:
            return False
        with self.sessions.open(tenant_id, sid, doc) as fh:
            return asic.is_asic_e(fh)

    async def _prepare_xades(self, tenant_id: str, sid: str, signer: Signer, sources: list[DocumentInfo],
                             create_new_container: bool) -> bytes:
        index = next((d.signature_index for d in sources if d.signature_index is not None), 0)
        parameters = self._parameters(signer, container=Container.ASIC_E if create_new_container else None,
                                      signature_file=f"META-INF/signatures{index}.xml")
        prepared = await self.formats.get(FORMATS["xades"]).data_to_sign(
            [self._document(tenant_id, sid, d) for d in sources], parameters, io.BytesIO())
        parallel = prepared.state["mode"] == "parallel"
        container_name = sources[0].name if parallel else PurePosixPath(sources[0].name).stem + EDOC_SUFFIX
        state = {"sources": [d.id for d in sources], "container_name": container_name, **prepared.state}
        self._save_operation(tenant_id, sid, "xades", signer, prepared.digest, state, None)
        return prepared.digest

    # --- the format layer -------------------------------------------------------------------------

    def _document(self, tenant_id: str, sid: str, doc: DocumentInfo) -> Document:
        """A session document as a format input (digest-only documents have no content)."""
        opener = (lambda: self.sessions.open(tenant_id, sid, doc)) if doc.blob is not None else None
        return Document(doc.name, doc.mime_type, opener, doc.sha256)

    def _parameters(self, signer: Signer, **options: Any) -> SignParameters:
        return SignParameters(signer=signer.spec, signing_time=_now(), **options)

    def context(self) -> ExtensionContext:
        """The service's TSA, revocation source and trust anchors, as every format step gets them."""
        return ExtensionContext(timestamper=self.timestamper, revocation=self.revocation,
                                trust_roots=tuple(r.dump() for r in self.trust.roots),
                                path_of=lambda cert, extra: self.trust.path(cert, extra=extra))

    # --- operation rows -------------------------------------------------------------------------

    def _reset_operation(self, tenant_id: str, sid: str) -> None:
        """A new CalculateDigest replaces an unfinished preparation (and its placeholder file), or an
        abandoned claim (and the result it never recorded); a live claim is refused."""
        with self.db.session() as s:
            op = s.get(SigningOperation, sid)
            if op is None:
                return
            if operations.in_progress(op):
                raise SigningError("operation_in_progress", "the session is being finalized", 409)
            leftovers = operations.leftover_blobs(op)
            removed = s.connection().execute(delete(_OPS).where(
                _OPS.c.session_id == sid, _OPS.c.status == op.status, _same_owner(op.lease_owner))).rowcount
            if removed != 1:
                raise SigningError("operation_in_progress", "the session is being finalized", 409)
        for blob in leftovers:
            self.blobs.delete(self.sessions.namespace(tenant_id, sid), blob)

    def _save_operation(self, tenant_id: str, sid: str, fmt: str, signer: Signer, digest: bytes,
                        state: dict[str, Any], prepared_blob: str | None) -> None:
        with self.db.session() as s:  # the operation and its audit record: one transaction
            s.connection().execute(insert(SigningOperation.__table__).values(  # Core: no unit-of-work flush
                session_id=sid, format=fmt, status="prepared",
                certificate_der=signer.certificate.public_bytes(Encoding.DER),
                digest_algorithm=signer.algorithm.digest_algorithm, digest=digest, state=json.dumps(state),
                prepared_blob=prepared_blob, created_at=_now(),
                digests_summary=digests_summary([digest], signer.algorithm.api_algorithm)))
            self.audit.append_in(s, "signing.prepared", actor="signing", tenant_id=tenant_id, subject=sid,
                                 details={"format": fmt, "digest": digest.hex(),
                                          "signer": signer.certificate.subject.rfc4514_string()})

    def _claim(self, tenant_id: str, sid: str, from_status: tuple[str, ...],
               to_status: str) -> tuple[SigningOperation, Lease, str] | None:
        """Move the operation from one of ``from_status`` (or from an abandoned ``to_status`` claim)
        to ``to_status`` under a new lease; returns (operation, lease, status it had) or None."""
        now = datetime.now(timezone.utc)
        with self.db.session() as s:
            op = s.get(SigningOperation, sid)
            if op is None:
                return None
            s.expunge(op)
            taken_over = op.status == to_status and operations.abandoned(op.lease_owner, op.lease_expires_at, now)
            if op.status not in from_status and not taken_over:
                return None
            lease = operations.new_lease(self.lease_seconds, now)
            changed = s.connection().execute(
                update(_OPS).where(_OPS.c.session_id == sid, _OPS.c.status == op.status, _same_owner(op.lease_owner))
                .values(status=to_status, lease_owner=lease.owner, lease_expires_at=lease.expires_at)).rowcount
            if changed != 1:
                return None
        if taken_over:
            log.warning("session %s: taking over the %s claim of %s", sid, to_status, op.lease_owner)
            self.audit.append("signing.claim_recovered", actor="signing", tenant_id=tenant_id, subject=sid,
                              details={"status": to_status, "previous_owner": op.lease_owner, "owner": lease.owner})
        return op, lease, op.status

    def _release(self, sid: str, lease: Lease, status: str) -> None:
        """Give the operation back (a failed step) unless it was taken over meanwhile."""
        with self.db.session() as s:
            s.connection().execute(update(_OPS).where(_OPS.c.session_id == sid, _OPS.c.lease_owner == lease.owner)
                                   .values(status=status, lease_owner=None, lease_expires_at=None))

    def _commit_result(self, tenant_id: str, sid: str, lease: Lease, status: str, blob: str, name: str,
                       mime_type: str, event: str, event_format: str, replaces: str | None = None,
                       sha256: bytes | None = None, **values: Any) -> DocumentInfo:
        """One transaction, fenced by the lease: the operation moves to ``status``, the result
        blob becomes the session's signed document (replacing ``replaces``) and the audit ``event``
        records it. LeaseLost when another process took the operation over; then nothing is
        recorded and the blob is left to it.
        ``sha256``: the blob's digest when its writer hashed it while writing (else it is read)."""
        namespace = self.sessions.namespace(tenant_id, sid)
        with self.blobs.open(namespace, blob) as fh:
            if sha256 is not None:
                size = fh.seek(0, 2)
                sha = sha256
            else:
                digest = hashlib.sha256()
                size = 0
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                sha = digest.digest()
        with self.db.session() as s:
            # the document first: its reads (the session, the next sequence number) come before
            # this transaction's first write, which takes the database's write lock
            try:
                doc = self.sessions.add_result(s, tenant_id, sid, name, mime_type, blob, size, sha)
            except IntegrityError:  # the result is recorded already: a claim that took over committed it
                raise LeaseLost(sid) from None
            changed = s.connection().execute(
                update(_OPS).where(_OPS.c.session_id == sid, _OPS.c.lease_owner == lease.owner)
                .values(status=status, result_document_id=blob, lease_owner=None, lease_expires_at=None,
                        **values)).rowcount
            if changed != 1:
                raise LeaseLost(sid)
            if replaces is not None:
                s.execute(delete(SessionDocument).where(SessionDocument.id == replaces,
                                                        SessionDocument.session_id == sid))
            self.audit.append_in(s, event, actor="signing", tenant_id=tenant_id, subject=sid,
                                 details={"format": event_format, "document": doc.id, "sha256": doc.sha256.hex()})
            return doc

    def _lost(self, tenant_id: str, sid: str) -> SigningError:
        """The answer when another process took the operation over (or the session went away)."""
        self.sessions.require(tenant_id, sid)  # session_closed / session_expired when that is why
        return SigningError("operation_in_progress", "the session's operation was taken over by a retry", 409)

    def _operation(self, sid: str) -> SigningOperation | None:
        with self.db.session() as s:
            op = s.execute(select(SigningOperation).where(SigningOperation.session_id == sid)).scalar_one_or_none()
            if op is not None:
                s.expunge(op)
            return op

    # --- finalize -------------------------------------------------------------------------------

    async def finalize(self, tenant_id: str, values: list[tuple[str, bytes]]) -> list[Outcome]:
        by_session = dict(values)

        async def one(sid: str) -> Outcome:
            return Outcome(sid, document=await self._finalize_one(tenant_id, sid, by_session[sid]))

        async def batch() -> list[Outcome]:
            return [await _guarded(sid, one) for sid, _ in values]

        return await off_loop(batch)

    async def _finalize_one(self, tenant_id: str, sid: str, value: bytes) -> DocumentInfo:
        self.sessions.require(tenant_id, sid)
        claim = self._claim(tenant_id, sid, ("prepared",), "finalizing")
        if claim is None:
            return self._replayed(tenant_id, sid, value)
        op, lease, previous = claim
        namespace = self.sessions.namespace(tenant_id, sid)
        try:
            cert = cx509.load_der_x509_certificate(op.certificate_der)
            signer = self.check_signer(cert)
            value = normalize_and_verify(cert, op.digest, value, signer.algorithm)
            state = json.loads(op.state)
            result = operations.finalize_result_id(op)
            written: bytes | None = None  # the result's SHA-256 when hashed while writing it
            if not _may_exist(previous, "finalizing") or not self.blobs.exists(namespace, result):
                try:
                    finish = self._finalize_pades if op.format == "pades" else self._finalize_xades
                    written = await finish(tenant_id, sid, op, state, signer, value, result)
                except BlobExists:
                    pass  # a previous claim of this operation finished the same result first
            operations.crash_point("finalize.result_written")
            name, mime = ((state["name"], "application/pdf") if op.format == "pades"
                          else (state["container_name"], asic.MIMETYPE))
            doc = self._commit_result(tenant_id, sid, lease, "signed", result, name, mime, "signing.finalized",
                                      op.format, sha256=written,
                                      finalized_at=_now(),
                                      state=json.dumps({**state, "value_sha256": hashlib.sha256(value).hexdigest()}))
        except LeaseLost:
            raise self._lost(tenant_id, sid) from None
        except BaseException:
            self._release(sid, lease, "prepared")
            raise
        # The prepared file stays recorded in the operation (a leftover, operations.leftover_blobs)
        # and goes with the session's other files at close, a new CalculateDigest or expiry: one
        # request fewer per signature on an object store.
        return doc

    def _replayed(self, tenant_id: str, sid: str, value: bytes) -> DocumentInfo:
        """A finalize for an operation that is not waiting for one: the same value again answers with
        the existing result (a client retry); anything else is refused. Never signs twice."""
        op = self._operation(sid)
        if op is None:
            raise SigningError("not_prepared", "CalculateDigest was not called for this session", 409)
        if op.status in operations.CLAIMED:
            raise SigningError("operation_in_progress", "the session is being finalized", 409)
        state = json.loads(op.state)
        candidates = {hashlib.sha256(value).hexdigest()}
        try:
            cert = cx509.load_der_x509_certificate(op.certificate_der)
            candidates.add(hashlib.sha256(normalize_and_verify(cert, op.digest, value, algorithm_for(cert))).hexdigest())
        except SignerInputError:
            pass
        if state.get("value_sha256") in candidates and op.result_document_id:
            return self.sessions.document(tenant_id, sid, op.result_document_id)
        raise SigningError("already_finalized", "the session's signature was already finalized", 409)

    async def _finalize_pades(self, tenant_id: str, sid: str, op: SigningOperation, state: dict[str, Any],
                              signer: Signer, value: bytes, result_blob: str) -> bytes | None:
        """Write the B-LT result; returns its SHA-256, hashed while it was written."""
        namespace = self.sessions.namespace(tenant_id, sid)
        if not op.prepared_blob:
            raise SigningError("not_prepared", "the prepared document is gone; call CalculateDigest again", 409)
        with self.blobs.writer(namespace, result_blob, exclusive=True) as out, \
                self.blobs.open(namespace, op.prepared_blob) as prepared:
            return await self.formats.get(FORMATS["pades"]).sign_at_level(
                [], self._parameters(signer), DataToSign(op.digest, state), value, prepared, out, Level.LT,
                self.context())

    async def _finalize_xades(self, tenant_id: str, sid: str, op: SigningOperation, state: dict[str, Any],
                              signer: Signer, value: bytes, result_blob: str) -> None:
        docs = {d.id: d for d in self.sessions.documents(tenant_id, sid)}
        sources = [docs[i] for i in state["sources"] if i in docs]
        if len(sources) != len(state["sources"]):
            raise SigningError("documents_changed", "a document was removed after CalculateDigest", 409)
        namespace = self.sessions.namespace(tenant_id, sid)
        with self.blobs.writer(namespace, result_blob, exclusive=True) as out:
            await self.formats.get(FORMATS["xades"]).sign_at_level(
                [self._document(tenant_id, sid, d) for d in sources], self._parameters(signer),
                DataToSign(op.digest, state), value, io.BytesIO(), out, Level.LT, self.context())

    # --- archive --------------------------------------------------------------------------------

    async def archive(self, tenant_id: str, session_ids: list[str]) -> list[Outcome]:
        async def one(sid: str) -> Outcome:
            return Outcome(sid, document=await self._archive_one(tenant_id, sid))

        async def batch() -> list[Outcome]:
            return [await _guarded(sid, one) for sid in session_ids]

        return await off_loop(batch)

    async def _archive_one(self, tenant_id: str, sid: str) -> DocumentInfo:
        self.sessions.require(tenant_id, sid)
        claim = self._claim(tenant_id, sid, ("signed", "archived"), "archiving")
        if claim is None and await self._adopt_upload(tenant_id, sid):
            claim = self._claim(tenant_id, sid, ("signed", "archived"), "archiving")
        if claim is None:
            if (current := self._operation(sid)) is not None and current.status == "archiving":
                raise SigningError("operation_in_progress", "the session is being archived", 409)
            raise SigningError("not_signed", "the session holds no finalized signature to archive", 409)
        op, lease, previous = claim
        namespace = self.sessions.namespace(tenant_id, sid)
        try:
            old = self.sessions.document(tenant_id, sid, op.result_document_id or "")
            result = operations.archive_result_id(sid, old.id)
            if not _may_exist(previous, "archiving") or not self.blobs.exists(namespace, result):
                try:
                    await self._archive_document(tenant_id, sid, op.format, old, result)
                except BlobExists:
                    pass
            operations.crash_point("archive.result_written")
            mime = "application/pdf" if op.format == "pades" else asic.MIMETYPE
            doc = self._commit_result(tenant_id, sid, lease, "archived", result, old.name, mime, "signing.archived",
                                      op.format, replaces=old.id)
        except LeaseLost:
            raise self._lost(tenant_id, sid) from None
        except BaseException:
            # the stored result is unchanged and can be archived again
            self._release(sid, lease, previous if previous in ("signed", "archived") else "signed")
            raise
        if old.blob:
            self.blobs.delete(namespace, old.blob)
        return doc

    async def _adopt_upload(self, tenant_id: str, sid: str) -> bool:
        """A session whose one document was uploaded already signed (a PDF signed elsewhere, an
        ASiC-E with XAdES signatures) and that this service never prepared: the upload becomes the
        session's signed result, so addArchive extends it like one of its own — once every
        signature in it has passed validation (the service's time-stamp must not lend a forged,
        altered or revoked signature a proof of existence)."""
        if self._operation(sid) is not None:
            return False
        docs = self.sessions.documents(tenant_id, sid)
        if len(docs) != 1 or docs[0].kind != "file":
            return False
        doc = docs[0]
        state: dict[str, Any] = {}
        with self.sessions.open(tenant_id, sid, doc) as fh:
            if pades.is_pdf(fh.read(1024)):
                fmt = "pades" if pades.signature_count(fh) else None
            else:
                fmt = None
        if fmt is None and self._is_container(tenant_id, sid, doc):
            with self.open_container(tenant_id, sid, doc) as container:
                if container.signature_names:
                    fmt, state = "xades", {"signature_names": list(container.signature_names)}
        if fmt is None:
            return False
        if self.extension is not None:
            with self.sessions.open(tenant_id, sid, doc) as fh:
                try:
                    await self.extension.check_stream(tenant_id, fh, doc.name)
                except ExtensionError as exc:
                    raise SigningError(exc.code, exc.message, exc.status) from exc
        try:
            with self.db.session() as s:
                s.add(SigningOperation(session_id=sid, format=fmt, status="signed", certificate_der=b"",
                                       digest_algorithm="", digest=b"", state=json.dumps(state),
                                       result_document_id=doc.id, created_at=_now()))
                s.flush()  # a concurrent operation fails here, before the chain is locked
                self.audit.append_in(s, "signing.adopted", actor="signing", tenant_id=tenant_id, subject=sid,
                                     details={"format": fmt, "document": doc.id, "sha256": doc.sha256.hex()})
        except IntegrityError:  # a concurrent addArchive or CalculateDigest created the operation first
            return False
        return True

    async def _archive_document(self, tenant_id: str, sid: str, record_format: str, old: DocumentInfo,
                                result_blob: str) -> None:
        """B-LT -> B-LTA: the format's time-stamp over the whole document (a PDF document
        time-stamp; an archive time-stamp on every XAdES signature of the container at LT)."""
        namespace = self.sessions.namespace(tenant_id, sid)
        with self.blobs.writer(namespace, result_blob, exclusive=True) as out, \
                self.sessions.open(tenant_id, sid, old) as src:
            await self.formats.get(FORMATS[record_format]).timestamp(src, out, self.context())


def _may_exist(previous_status: str, claimed_status: str) -> bool:
    """Whether to look for the result before doing the work: when this claim took over one that
    died (it may have written the result: then it is adopted, not made again). Otherwise the
    exclusive write finds out for itself (BlobExists, adopted the same way) and the look was a
    request to the object store on every signature for nothing."""
    return previous_status == claimed_status


async def _guarded(sid: str, run: Callable[[str], Awaitable[Outcome]]) -> Outcome:
    """One session's step; an expected failure becomes that session's error, the batch goes on."""
    try:
        return await run(sid)
    except EXPECTED_FAILURES as exc:
        return Outcome(sid, error=_failure(exc))


def _same_owner(owner: str | None) -> Any:
    """SQL condition: the lease owner column is still ``owner`` (NULL-safe), the fence of every CAS."""
    return _OPS.c.lease_owner.is_(None) if owner is None else _OPS.c.lease_owner == owner


# the operation rows' compare-and-set statements: Core on the table (no ORM bulk-update bookkeeping)
_OPS = SigningOperation.__table__

EXPECTED_FAILURES = (SessionError, FormatError, SigningError, SignerInputError, PathError, TimestampRequestError)
