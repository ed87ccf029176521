"""Validation as a service: which trust anchors, trusted lists and revocation sources a
relying party's validation uses, and running the engine off the event loop with a time bound."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from asn1crypto import x509
from sqlalchemy import delete, select

from remotesign.storage.audit import AuditLog
from remotesign.formats.base import Limits, ValidationData
from remotesign.storage.db import Database
from remotesign.storage.models import TrustAnchorRecord
from remotesign.trust.revocation import load_certificates
from remotesign.validation.engine import validate_path
from remotesign.asn1_shared import shared_certificate
from remotesign.validation.model import DocumentResult, ValidationInputError
from remotesign.validation.policy import ValidationPolicy, builtin_policy
from remotesign.validation.options import DetachedDocument, ValidationOptions

MAX_TENANT_ANCHORS = 200
_UNSET = object()


class TrustAnchorError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class TenantTrustAnchors:
    """Trust anchors a relying party added for its own validations."""

    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    def add(self, tenant_id: str, data: bytes) -> list[TrustAnchorRecord]:
        try:
            certs = load_certificates(data)  # parsed whole: a broken one fails now, not in a later validation
        except Exception as exc:  # noqa: BLE001 - asn1crypto raises many types on garbage
            raise TrustAnchorError(400, "invalid_certificate", f"not a PEM or DER certificate ({exc})") from exc
        if not certs:
            raise TrustAnchorError(400, "invalid_certificate", "no certificate found")
        added = []
        with self.db.session() as s:
            existing = {r.sha256_hex for r in s.execute(
                select(TrustAnchorRecord).where(TrustAnchorRecord.tenant_id == tenant_id)).scalars()}
            if len(existing) + len(certs) > MAX_TENANT_ANCHORS:
                raise TrustAnchorError(409, "too_many_anchors", f"at most {MAX_TENANT_ANCHORS} trust anchors")
            for cert in certs:
                digest = hashlib.sha256(cert.dump()).hexdigest()
                if digest in existing:
                    continue
                existing.add(digest)
                row = TrustAnchorRecord(id=str(uuid.uuid4()), tenant_id=tenant_id, sha256_hex=digest,
                                        subject=cert.subject.human_friendly, der=cert.dump(),
                                        created_at=datetime.now(timezone.utc))
                s.add(row)
                added.append(row)
            s.flush()
            for row in added:
                s.expunge(row)
        for row in added:
            self.audit.append("trust_anchor.added", actor=tenant_id, tenant_id=tenant_id, subject=row.subject,
                              details={"sha256": row.sha256_hex})
        return added

    def list(self, tenant_id: str) -> list[TrustAnchorRecord]:
        with self.db.session() as s:
            rows = list(s.execute(select(TrustAnchorRecord).where(TrustAnchorRecord.tenant_id == tenant_id)
                                  .order_by(TrustAnchorRecord.created_at)).scalars())
            for row in rows:
                s.expunge(row)
        return rows

    def certificates(self, tenant_id: str) -> list[x509.Certificate]:
        return [x509.Certificate.load(r.der) for r in self.list(tenant_id)]

    def remove(self, tenant_id: str, anchor_id: str) -> None:
        with self.db.session() as s:
            gone = s.execute(delete(TrustAnchorRecord).where(TrustAnchorRecord.id == anchor_id,
                                                             TrustAnchorRecord.tenant_id == tenant_id)).rowcount
        if not gone:
            raise TrustAnchorError(404, "trust_anchor_not_found", f"unknown trust anchor {anchor_id}")
        self.audit.append("trust_anchor.removed", actor=tenant_id, tenant_id=tenant_id, subject=anchor_id)


class ValidationService:
    """Builds a relying party's ValidationOptions and runs the engine in a worker thread (the
    CPU-heavy part stays off the event loop) with a time bound."""

    def __init__(self, *, builtin_chain: Sequence[bytes], anchor_files: Sequence[Path],
                 anchors: TenantTrustAnchors,
                 revocation: Callable[[Sequence[x509.Certificate]], ValidationData],
                 trusted_lists: Callable[[], Any] | None, allow_fetching: bool, fetch_timeout: float,
                 timeout_seconds: float, limits: Limits, work_dir: Path, policy: ValidationPolicy,
                 audit: AuditLog | None = None) -> None:
        self.audit = audit
        self._builtin = [shared_certificate(d) for d in builtin_chain]
        self._files: list[x509.Certificate] = []
        for path in anchor_files:
            self._files.extend(load_certificates(path.read_bytes()))
        self.anchors = anchors
        self._revocation = revocation
        self._trusted_lists = trusted_lists
        self.allow_fetching = allow_fetching
        self.fetch_timeout = fetch_timeout
        self.timeout_seconds = timeout_seconds
        self.limits = limits
        self.work_dir = work_dir
        self.policy = policy

    def options(self, tenant_id: str | None, *, extra_anchors: Sequence[x509.Certificate] = (),
                at: datetime | None = None, detached: Sequence[DetachedDocument] = (),
                policy: ValidationPolicy | None = None) -> ValidationOptions:
        """The options of one validation; ``policy`` None = the instance's policy."""
        anchors = [*self._builtin, *self._files, *extra_anchors]
        if tenant_id is not None:
            anchors.extend(self.anchors.certificates(tenant_id))
        roots = list({c.dump(): c for c in anchors}.values())
        registry = None
        if self._trusted_lists is not None:
            loaded = self._trusted_lists()
            registry = getattr(loaded, "registry", loaded)
        return ValidationOptions(trust_anchors=tuple(roots), tsp_registry=registry, validation_time=at,
                                 allow_fetching=self.allow_fetching, fetch_timeout=self.fetch_timeout,
                                 detached=tuple(detached), limits=self.limits,
                                 revocation_provider=self._revocation, policy=policy or self.policy)

    def named_policy(self, name: str | None) -> ValidationPolicy:
        """A policy a caller names: a built-in one, or the instance's own ("instance"/None);
        PolicyError for any other name (callers cannot read files of the server)."""
        if name in (None, "", "instance"):
            return self.policy
        return builtin_policy(name)

    async def validate(self, path: Path, options: ValidationOptions, *, filename: str,
                       actor: str | None = None, tenant_id: str | None = None) -> DocumentResult:
        """Validate in a worker thread; ValidationInputError('validation_timeout') when it takes
        longer than the configured bound (the report would be useless to a waiting caller).
        With ``actor`` the validation is recorded in the audit log (``document.validated``)."""
        work = asyncio.to_thread(asyncio.run, validate_path(path, options, filename=filename))
        try:
            document = await asyncio.wait_for(work, timeout=self.timeout_seconds)
        except asyncio.TimeoutError:
            raise ValidationInputError("validation_timeout",
                                       f"validation did not finish within {self.timeout_seconds:g} s") from None
        if actor is not None and self.audit is not None:
            await asyncio.to_thread(self.audit.append, "document.validated", actor=actor, tenant_id=tenant_id,
                                    subject=document.filename,
                                    details={"signatures": len(document.signatures), "passed": document.valid_count})
        return document

    def temporary_dir(self) -> tempfile.TemporaryDirectory[str]:
        """Scratch space for uploaded files, on the blob volume (not /tmp, which may be small)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(dir=self.work_dir, prefix="validate-")


def copy_to(path: Path, stream: Any) -> None:
    with open(path, "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
