"""File-processing sessions: a relying party starts one, uploads documents (or only their digests),
signs them, downloads the result and closes it. Closing or expiry deletes every file.

Sessions are tenant-owned: every lookup filters on the caller's tenant, so another tenant's
session id is simply unknown. Session ids are 256-bit random values written as 64 hex characters.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import unicodedata
import uuid
from collections.abc import AsyncIterable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO, TypeVar

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from remotesign.core import operations
from remotesign.storage.audit import AuditLog
from remotesign.formats import asic
from remotesign.formats.base import FormatError, Limits
from remotesign.storage.blobs import BlobStore
from remotesign.storage.db import Database
from remotesign.storage.models import SessionDocument, SigningOperation, SigningSession
from remotesign.storage.times import aware as _aware

SESSION_ID = re.compile(r"^[0-9a-f]{64}$")
MAX_AMOUNT = 100
CLOSED_KEPT = timedelta(minutes=10)  # a closed session answers "closed" this long before it is forgotten
MAX_NAME_BYTES = 255
MAX_ARCHIVE_RENEWALS = 50  # archive time-stamps a client may have added to one document, oldest id first
CONTAINER_SUFFIXES = (".edoc", ".asice", ".sce", ".bdoc")
UPLOAD_BATCH_BYTES = 1 << 20  # received bytes handed to a worker thread at a time (hash + write)
# bulk DELETEs of rows this unit of work never loaded: nothing in the session to synchronise
_UNSYNCHRONIZED = {"synchronize_session": False}
# Every call on a session looks it up: Core statements built once (columns, no ORM object).
_SESSION = SigningSession.__table__
_LOOKUP = (select(_SESSION.c.expires_at, _SESSION.c.closed_at)
           .where(_SESSION.c.id == bindparam("sid"), _SESSION.c.tenant_id == bindparam("tenant")))
_CLOSE = (update(_SESSION).where(_SESSION.c.id == bindparam("sid"), _SESSION.c.tenant_id == bindparam("tenant"),
                                 _SESSION.c.closed_at.is_(None), _SESSION.c.expires_at > bindparam("now"))
          .values(closed_at=bindparam("now")).returning(_SESSION.c.id))
_DOCUMENTS = SessionDocument.__table__
# a session's documents in upload order, as DocumentInfo's fields
_LIST_DOCUMENTS = (select(_DOCUMENTS.c.id, _DOCUMENTS.c.name, _DOCUMENTS.c.size, _DOCUMENTS.c.kind,
                          _DOCUMENTS.c.mime_type, _DOCUMENTS.c.sha256, _DOCUMENTS.c.blob, _DOCUMENTS.c.signature_index)
                   .where(_DOCUMENTS.c.session_id == bindparam("sid")).order_by(_DOCUMENTS.c.seq))
# the next sequence number is taken in the INSERT itself
_INSERT_DOCUMENT = insert(_DOCUMENTS).values(
    seq=select(func.coalesce(func.max(_DOCUMENTS.c.seq), 0) + 1)
    .where(_DOCUMENTS.c.session_id == bindparam("of_session")).scalar_subquery())
T = TypeVar("T")


async def _run_to_end(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread. A thread cannot be stopped: when the awaiting task is
    cancelled meanwhile, the call still ends before the cancellation goes on, so the clean-up that
    follows never runs alongside it."""
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


class SessionError(Exception):
    """A session or document problem with a stable ``code``; ``status`` is the HTTP status facades use."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class DocumentInfo:
    id: str
    name: str
    size: int
    kind: str
    mime_type: str
    sha256: bytes
    blob: str | None
    signature_index: int | None = None
    included: list["DocumentInfo"] = field(default_factory=list)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)



def clean_file_name(raw: str) -> str:
    """The base name of an uploaded file, NFC-normalised; rejects names that cannot be stored safely
    inside a container (control characters, empty, too long)."""
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    if not name or name in (".", "..") or any(unicodedata.category(c) == "Cc" for c in name):
        raise SessionError(400, "invalid_file_name", f"file name {raw[:80]!r} is not acceptable")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise SessionError(400, "invalid_file_name", f"file name longer than {MAX_NAME_BYTES} bytes")
    return name


def _read_chunks(fh: BinaryIO) -> Iterator[bytes]:
    with fh:
        while chunk := fh.read(1 << 20):
            yield chunk


class SessionService:
    def __init__(self, db: Database, blobs: BlobStore, audit: AuditLog, *, timeout_seconds: int,
                 file_max_bytes: int, max_documents: int = 1000, limits: Limits | None = None) -> None:
        self.db = db
        self.blobs = blobs
        self.audit = audit
        self.timeout = timedelta(seconds=timeout_seconds)
        self.file_max_bytes = file_max_bytes
        self.max_documents = max_documents
        self.limits = limits or Limits()

    @staticmethod
    def namespace(tenant_id: str, session_id: str) -> str:
        return f"{tenant_id}/{session_id}"

    # --- sessions -------------------------------------------------------------------------------

    def start(self, tenant_id: str, amount: int = 1) -> list[str]:
        if not 1 <= amount <= MAX_AMOUNT:
            raise SessionError(400, "invalid_amount", f"amount must be between 1 and {MAX_AMOUNT}")
        now = _utcnow()
        ids = [secrets.token_hex(32) for _ in range(amount)]
        with self.db.session() as s:  # Core: no ORM objects to flush
            s.connection().execute(insert(_SESSION), [
                {"id": sid, "tenant_id": tenant_id, "created_at": now, "expires_at": now + self.timeout,
                 "closed_at": None} for sid in ids])
        return ids

    def require(self, tenant_id: str, session_id: str) -> None:
        """Return if the session is the caller's, open and unexpired; else a SessionError saying
        which of those it is not."""
        with self.db.session() as s:
            self._lookup(s, tenant_id, session_id)

    def _lookup(self, s: Session, tenant_id: str, session_id: str) -> None:
        if not SESSION_ID.match(session_id or ""):
            raise SessionError(404, "session_not_found", "unknown session id")
        if tenant_id is None:  # pragma: no cover - sessions always belong to a relying party
            raise SessionError(404, "session_not_found", f"unknown session {session_id}")
        row = s.connection().execute(_LOOKUP, {"sid": session_id, "tenant": tenant_id}).first()
        if row is None:
            raise SessionError(404, "session_not_found", f"unknown session {session_id}")
        expires_at, closed_at = row
        if closed_at is not None:
            raise SessionError(410, "session_closed", f"session {session_id} is closed")
        if _aware(expires_at) <= _utcnow():
            # The background sweep may not have run yet: the files go now, the row with it later.
            self.blobs.delete_namespace(self.namespace(tenant_id, session_id))
            raise SessionError(410, "session_expired", f"session {session_id} has expired")

    def close(self, tenant_id: str, session_id: str, actor: str) -> None:
        """The session answers "closed" from now on and its recorded files go at once; whatever a
        crash left unrecorded in its namespace goes with the namespace when the sweep forgets the
        session (CLOSED_KEPT later)."""
        with self.db.session() as s:
            if not SESSION_ID.match(session_id or "") or s.connection().execute(
                    _CLOSE, {"sid": session_id, "tenant": tenant_id, "now": _utcnow()}).first() is None:
                self._lookup(s, tenant_id, session_id)  # says why it was not closed
                raise SessionError(410, "session_closed", f"session {session_id} is closed")
            # the rows go and name their files in one statement each (RETURNING: SQLite 3.35+, PostgreSQL)
            blobs = [name for name in s.scalars(
                delete(SessionDocument).where(SessionDocument.session_id == session_id)
                .returning(SessionDocument.blob), execution_options=_UNSYNCHRONIZED) if name]
            blobs += [name for name in s.scalars(
                delete(SigningOperation).where(SigningOperation.session_id == session_id)
                .returning(SigningOperation.prepared_blob), execution_options=_UNSYNCHRONIZED) if name]
            self.audit.append_in(s, "session.closed", actor=actor, tenant_id=tenant_id, subject=session_id)
        self.blobs.delete_known(self.namespace(tenant_id, session_id), blobs)

    def sweep_expired(self, now: datetime | None = None) -> int:
        """Delete the files (and rows) of sessions past their expiry, or closed for longer than
        CLOSED_KEPT (a closed session answers "closed", not "unknown", for that long whenever the
        sweep runs; its files went at close, again here should a crash have come between);
        returns how many."""
        now = now or _utcnow()
        with self.db.session() as s:
            rows = s.execute(select(SigningSession.id, SigningSession.tenant_id).where(
                (SigningSession.expires_at <= now) | (SigningSession.closed_at <= now - CLOSED_KEPT))).all()
        for sid, tenant_id in rows:
            self.blobs.delete_namespace(self.namespace(tenant_id, sid))
            with self.db.session() as s:
                s.execute(delete(SessionDocument).where(SessionDocument.session_id == sid))
                s.execute(delete(SigningOperation).where(SigningOperation.session_id == sid))
                s.execute(delete(SigningSession).where(SigningSession.id == sid))
        return len(rows)

    # --- documents ------------------------------------------------------------------------------

    async def upload(self, tenant_id: str, session_id: str, raw_name: str, chunks: AsyncIterable[bytes],
                     mime_type: str, actor: str) -> DocumentInfo:
        """Stream one file to the blob store (hashing as it goes); nothing is recorded unless the
        whole file arrived within the size limit. Only the receiving runs on the caller's event
        loop: the database, hashing, writing (in batches of UPLOAD_BATCH_BYTES), the blob's fsync
        and the container check run in worker threads."""
        name = clean_file_name(raw_name)
        await asyncio.to_thread(self._check_room, tenant_id, session_id, name)
        doc_id = str(uuid.uuid4())
        digest = hashlib.sha256()
        size = 0
        namespace = self.namespace(tenant_id, session_id)

        def write(out: BinaryIO, batch: list[bytes]) -> None:
            for chunk in batch:
                digest.update(chunk)
                out.write(chunk)

        writer = await asyncio.to_thread(self.blobs.writer, namespace, doc_id)
        opened: list[BinaryIO] = []
        try:
            await _run_to_end(lambda: opened.append(writer.__enter__()))
            batch: list[bytes] = []
            pending = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > self.file_max_bytes:
                    raise SessionError(413, "file_too_large", f"file exceeds {self.file_max_bytes} bytes")
                batch.append(chunk)
                pending += len(chunk)
                if pending >= UPLOAD_BATCH_BYTES:
                    await _run_to_end(write, opened[0], batch)
                    batch, pending = [], 0
            if batch:
                await _run_to_end(write, opened[0], batch)
            # sniffed in the writer's file, still local: reading it back from the store was a
            # request (a GetObject on S3) on every upload
            container = name.lower().endswith(CONTAINER_SUFFIXES) or await _run_to_end(asic.is_asic_e, opened[0])
        except BaseException as exc:
            # As a with block would: the writer removes its temporary file and the error goes on.
            if not opened or not await _run_to_end(writer.__exit__, type(exc), exc, exc.__traceback__):
                raise
        else:
            await _run_to_end(writer.__exit__, None, None, None)
        return await asyncio.to_thread(self._record_upload, tenant_id, session_id, namespace, doc_id, name, size,
                                       digest.digest(), mime_type, actor, container)

    def _record_upload(self, tenant_id: str, session_id: str, namespace: str, doc_id: str, name: str, size: int,
                       sha256: bytes, mime_type: str, actor: str, container: bool) -> DocumentInfo:
        try:
            if container:
                self._check_container(namespace, doc_id)
                mime_type = asic.MIMETYPE
            with self.db.session() as s:  # the document and its audit record: one transaction
                doc = self._insert(s, tenant_id, session_id, kind="file", name=name, size=size,
                                   sha256=sha256, mime_type=mime_type, blob=doc_id)
                self.audit.append_in(s, "document.uploaded", actor=actor, tenant_id=tenant_id, subject=session_id,
                                     details={"document": doc.id, "size": doc.size, "sha256": doc.sha256.hex()})
                return doc
        except BaseException:
            self.blobs.delete(namespace, doc_id)
            raise

    def _check_container(self, namespace: str, blob: str) -> None:
        """Containers are checked on arrival (zip bombs, unsafe or duplicate names, bad manifest),
        so a hostile file is refused before anyone signs or lists it."""
        try:
            with asic.AsicContainer.open(self.blobs.open(namespace, blob), self.limits):
                pass
        except FormatError as exc:
            raise SessionError(400, exc.code, exc.message) from exc

    def add_digests(self, tenant_id: str, session_id: str, files: list[tuple[str, bytes]],
                    signature_index: int) -> list[DocumentInfo]:
        """Hash-only entries: the relying party keeps the file, the service signs its SHA-256."""
        out = []
        for raw_name, digest in files:
            name = clean_file_name(raw_name)
            if len(digest) != 32:
                raise SessionError(400, "invalid_digest", f"digest of {name} is not a SHA-256 value")
            self._check_room(tenant_id, session_id, name)
            out.append(self._record(tenant_id, session_id, kind="hash", name=name, size=0, sha256=digest,
                                    mime_type=asic.guess_mime_type(name), blob=None, signature_index=signature_index))
        return out

    def _check_room(self, tenant_id: str, session_id: str, name: str) -> None:
        with self.db.session() as s:
            self._lookup(s, tenant_id, session_id)
            names = s.execute(select(SessionDocument.name).where(
                SessionDocument.session_id == session_id, SessionDocument.kind != "signed")).scalars().all()
        if len(names) >= self.max_documents:
            raise SessionError(400, "too_many_documents", f"a session holds at most {self.max_documents} documents")
        if name.casefold() in {n.casefold() for n in names}:
            raise SessionError(409, "duplicate_document_name", f"the session already holds a file named {name!r}")

    def _record(self, tenant_id: str, session_id: str, *, kind: str, name: str, size: int, sha256: bytes,
                mime_type: str, blob: str | None, signature_index: int | None = None) -> DocumentInfo:
        with self.db.session() as s:
            return self._insert(s, tenant_id, session_id, kind=kind, name=name, size=size, sha256=sha256,
                                mime_type=mime_type, blob=blob, signature_index=signature_index)

    def _insert(self, s: Session, tenant_id: str, session_id: str, *, kind: str, name: str, size: int,
                sha256: bytes, mime_type: str, blob: str | None, signature_index: int | None = None) -> DocumentInfo:
        self._lookup(s, tenant_id, session_id)
        doc = DocumentInfo(id=blob or str(uuid.uuid4()), name=name, size=size, kind=kind, mime_type=mime_type,
                           sha256=sha256, blob=blob, signature_index=signature_index)
        s.connection().execute(_INSERT_DOCUMENT, {
            "id": doc.id, "session_id": session_id, "of_session": session_id, "kind": kind, "name": name,
            "mime_type": mime_type, "size": size, "sha256": sha256, "blob": blob,
            "signature_index": signature_index, "created_at": _utcnow()})
        return doc

    def store_result(self, tenant_id: str, session_id: str, name: str, mime_type: str, blob: str,
                     size: int, sha256: bytes) -> DocumentInfo:
        """Record a signed document produced by the signing core (its blob is already written)."""
        return self._record(tenant_id, session_id, kind="signed", name=name, size=size, sha256=sha256,
                            mime_type=mime_type, blob=blob)

    def add_result(self, s: Session, tenant_id: str, session_id: str, name: str, mime_type: str, blob: str,
                   size: int, sha256: bytes) -> DocumentInfo:
        """Record a signed document inside the caller's unit of work, so the signing core moves its
        operation on and records the result atomically (core/operations.py)."""
        return self._insert(s, tenant_id, session_id, kind="signed", name=name, size=size, sha256=sha256,
                            mime_type=mime_type, blob=blob)

    def documents(self, tenant_id: str, session_id: str) -> list[DocumentInfo]:
        """Every document of the session in upload order (inputs, hash entries and results)."""
        with self.db.session() as s:
            self._lookup(s, tenant_id, session_id)
            return [DocumentInfo(*row) for row in s.connection().execute(_LIST_DOCUMENTS, {"sid": session_id})]

    def visible(self, tenant_id: str, session_id: str) -> list[DocumentInfo]:
        """What a listing shows: the newest signed result once there is one, the inputs before."""
        docs = self.documents(tenant_id, session_id)
        signed = [d for d in docs if d.kind == "signed"]
        return [signed[-1]] if signed else docs

    def document(self, tenant_id: str, session_id: str, document_id: str) -> DocumentInfo:
        for doc in self.documents(tenant_id, session_id):
            if doc.id == document_id:
                return doc
        raise SessionError(404, "document_not_found", f"unknown document {document_id}")

    def current(self, tenant_id: str, session_id: str, document_id: str) -> DocumentInfo:
        """The latest version of the document a client knows by ``document_id``: the id an upload,
        a finalize or an archive returned keeps meaning "this document" after the session signed
        it (eParaksts clients download by the upload's id after finalizeSigning). An input that
        went into a signed result, and a result that a later one superseded (B-LT -> B-LTA, whose
        row is replaced), resolve to the newest signed result; anything else is itself."""
        docs = self.documents(tenant_id, session_id)
        by_id = {d.id: n for n, d in enumerate(docs)}
        wanted, hops = document_id, 0
        while wanted not in by_id and hops < MAX_ARCHIVE_RENEWALS:
            wanted, hops = operations.archive_result_id(session_id, wanted), hops + 1
        if wanted not in by_id:
            raise SessionError(404, "document_not_found", f"unknown document {document_id}")
        position = by_id[wanted]
        newer = [d for d in docs[position + 1:] if d.kind == "signed"]
        return newer[-1] if newer else docs[position]

    def open(self, tenant_id: str, session_id: str, doc: DocumentInfo) -> BinaryIO:
        if doc.blob is None:
            raise SessionError(409, "no_content", f"{doc.name} is a digest-only entry without content")
        return self.blobs.open(self.namespace(tenant_id, session_id), doc.blob)

    def iter_content(self, tenant_id: str, session_id: str, doc: DocumentInfo) -> Iterator[bytes]:
        """The document's bytes in chunks. The blob is opened now, not at the first chunk: a missing
        blob or a store that cannot be reached (StorageUnavailable) fails before a response starts."""
        return _read_chunks(self.open(tenant_id, session_id, doc))

    def delete_result(self, tenant_id: str, session_id: str, document_id: str) -> None:
        """Drop a superseded signing result (after B-LT became B-LTA); the operation stays."""
        doc = self.document(tenant_id, session_id, document_id)
        with self.db.session() as s:
            s.execute(delete(SessionDocument).where(SessionDocument.id == doc.id))
        if doc.blob:
            self.blobs.delete(self.namespace(tenant_id, session_id), doc.blob)

    def delete_document(self, tenant_id: str, session_id: str, document_id: str) -> None:
        """Remove a document and the session's signing operation with its prepared state (prepared
        file, unrecorded result): a preparation covering a removed document can never be finalized.
        Refused while a live process is finalizing or archiving the session."""
        doc = self.document(tenant_id, session_id, document_id)
        with self.db.session() as s:
            op = s.get(SigningOperation, session_id)
            if operations.in_progress(op):
                raise SessionError(409, "operation_in_progress", "the session is being finalized; try again later")
            leftovers = operations.leftover_blobs(op) if op is not None else []
            s.execute(delete(SessionDocument).where(SessionDocument.id == doc.id))
            s.execute(delete(SigningOperation).where(SigningOperation.session_id == session_id))
        namespace = self.namespace(tenant_id, session_id)
        for blob in [doc.blob, *leftovers]:
            if blob:
                self.blobs.delete(namespace, blob)
