"""Validation as a service: which trust anchors, trusted lists and revocation sources a
relying party's validation uses, and running the engine off the event loop with a time bound."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
from asn1crypto import x509
from sqlalchemy import delete, select

from remotesign.storage.audit import AuditLog
from remotesign.formats.base import Limits, ValidationData
from remotesign.storage.db import Database
from remotesign.storage.models import TrustAnchorRecord
from remotesign.trust.revocation import issued_by, load_certificates, ocsp_request, ocsp_successful
from remotesign.validation.engine import validate_path
from remotesign.validation.model import DocumentResult, ValidationInputError
from remotesign.validation.policy import ValidationPolicy, builtin_policy
from remotesign.validation.options import DetachedDocument, ValidationOptions

MAX_TENANT_ANCHORS = 200
MAX_FETCHED_BYTES = 16 << 20
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
            certs = load_certificates(data)
            for cert in certs:
                cert.native  # noqa: B018 - parse everything now, not during a later validation
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


class BuiltinRevocation:
    """Fresh OCSP responses (leaves) and CRLs (CA certificates) from the built-in CA, produced
    in-process: the service can always prove the status of what its own CA issued. Answers are
    reused for ``ttl_seconds`` while the CA's revocation state (``state()``) is unchanged, so a
    revocation shows at once and repeated validations do not sign a new OCSP response each."""

    def __init__(self, chain_ders: Sequence[bytes], ocsp_respond: Callable[[bytes], bytes],
                 crl_for_ca: Callable[[x509.Certificate], bytes], *,
                 state: Callable[[], object] = lambda: None, ttl_seconds: float = 60.0) -> None:
        self._cas = [x509.Certificate.load(d) for d in chain_ders]
        self._ocsp_respond = ocsp_respond
        self._crl_for_ca = crl_for_ca
        self._state = state
        self._ttl = ttl_seconds
        self._cache: dict[bytes, tuple[float, object, bytes | None, bool]] = {}
        self._issuers: dict[bytes, x509.Certificate | None] = {}
        self._lock = threading.Lock()

    def __call__(self, certificates: Sequence[x509.Certificate]) -> ValidationData:
        ocsps: list[bytes] = []
        crls: list[bytes] = []
        used = False
        state: object = _UNSET
        for cert in certificates:
            issuer = self._issuer_of(cert)
            if issuer is None:
                continue
            if state is _UNSET:
                state = self._state()    # one query, and only when the built-in CA is involved
            used = True
            der, is_crl = self._answer(cert, issuer, state)
            if der is not None:
                (crls if is_crl else ocsps).append(der)
        if not used:
            return ValidationData()
        return ValidationData(certificates=tuple(dict.fromkeys(c.dump() for c in self._cas)),
                              ocsp_responses=tuple(dict.fromkeys(ocsps)), crls=tuple(dict.fromkeys(crls)))

    def _issuer_of(self, cert: x509.Certificate) -> x509.Certificate | None:
        """The built-in CA certificate that issued ``cert`` (signature-checked, remembered)."""
        key = cert.sha256
        with self._lock:
            if key in self._issuers:
                return self._issuers[key]
        issuer = next((ca for ca in self._cas if issued_by(cert, ca) and cert.dump() != ca.dump()), None)
        with self._lock:
            if len(self._issuers) > 10_000:
                self._issuers.clear()
            self._issuers[key] = issuer
        return issuer

    def _answer(self, cert: x509.Certificate, issuer: x509.Certificate, state: object) -> tuple[bytes | None, bool]:
        """(DER, is_crl) for a certificate the built-in CA issued."""
        key = cert.sha256
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now and hit[1] == state:
            return hit[2], hit[3]
        try:
            der = self._crl_for_ca(issuer) if cert.ca else self._ocsp_respond(ocsp_request(cert, issuer))
        except Exception:  # noqa: BLE001 - a missing response only means less evidence
            der = None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self._ttl, state, der, bool(cert.ca))
        return der, bool(cert.ca)


class CachingRevocationFetcher:
    """Online OCSP (else CRL) for certificates whose issuer travels with them, used only when the
    operator allows fetching: each request has the configured timeout, and answers (also failures,
    briefly) are cached across validations so a busy service does not ask a CA again per file."""

    def __init__(self, timeout: float, ttl_seconds: float = 300.0, failure_ttl_seconds: float = 60.0,
                 max_entries: int = 10_000) -> None:
        self.timeout = timeout
        self.ttl = ttl_seconds
        self.failure_ttl = failure_ttl_seconds
        self.max_entries = max_entries
        self._cache: dict[tuple[bytes, int], tuple[float, bytes | None, bytes | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, certificates: Sequence[x509.Certificate]) -> ValidationData:
        ocsps: list[bytes] = []
        crls: list[bytes] = []
        for cert in certificates:
            issuer = next((c for c in certificates if c is not cert and issued_by(cert, c)), None)
            if issuer is None:
                continue
            ocsp_der, crl_der = self._lookup(cert, issuer)
            if ocsp_der:
                ocsps.append(ocsp_der)
            elif crl_der:
                crls.append(crl_der)
        return ValidationData(ocsp_responses=tuple(ocsps), crls=tuple(crls))

    def _lookup(self, cert: x509.Certificate, issuer: x509.Certificate) -> tuple[bytes | None, bytes | None]:
        key = (issuer.sha256, cert.serial_number)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        ocsp_der, crl_der = self._fetch(cert, issuer)
        ttl = self.ttl if (ocsp_der or crl_der) else self.failure_ttl
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[key] = (now + ttl, ocsp_der, crl_der)
        return ocsp_der, crl_der

    def _fetch(self, cert: x509.Certificate, issuer: x509.Certificate) -> tuple[bytes | None, bytes | None]:
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            for url in cert.ocsp_urls[:3]:
                body = _get(client, "POST", url, ocsp_request(cert, issuer))
                if body and ocsp_successful(body):
                    return body, None
            for point in cert.crl_distribution_points[:3]:
                body = _get(client, "GET", point.url, None) if point.url else None
                if body:
                    return None, body
        return None, None


def _get(client: httpx.Client, method: str, url: str, body: bytes | None) -> bytes | None:
    if not url.startswith(("http://", "https://")):
        return None
    try:
        headers = {"Content-Type": "application/ocsp-request"} if body is not None else {}
        response = client.request(method, url, content=body, headers=headers)
    except httpx.HTTPError:
        return None
    if response.status_code != 200 or len(response.content) > MAX_FETCHED_BYTES:
        return None
    return response.content


class CombinedRevocation:
    """Several revocation sources, asked in order; their data is merged."""

    def __init__(self, *sources: Callable[[Sequence[x509.Certificate]], ValidationData]) -> None:
        self.sources = sources

    def __call__(self, certificates: Sequence[x509.Certificate]) -> ValidationData:
        data = ValidationData()
        for source in self.sources:
            data = data.merged(source(certificates))
        return data


class ValidationService:
    """Builds a relying party's ValidationOptions and runs the engine in a worker thread (the
    CPU-heavy part stays off the event loop) with a time bound."""

    def __init__(self, *, builtin_chain: Sequence[bytes], anchor_files: Sequence[Path],
                 anchors: TenantTrustAnchors,
                 revocation: Callable[[Sequence[x509.Certificate]], ValidationData],
                 trusted_lists: Callable[[], Any] | None, allow_fetching: bool, fetch_timeout: float,
                 timeout_seconds: float, limits: Limits, work_dir: Path, policy: ValidationPolicy) -> None:
        self._builtin = [x509.Certificate.load(d) for d in builtin_chain]
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

    async def validate(self, path: Path, options: ValidationOptions, *, filename: str) -> DocumentResult:
        """Validate in a worker thread; ValidationInputError('validation_timeout') when it takes
        longer than the configured bound (the report would be useless to a waiting caller)."""
        work = asyncio.to_thread(asyncio.run, validate_path(path, options, filename=filename))
        try:
            return await asyncio.wait_for(work, timeout=self.timeout_seconds)
        except asyncio.TimeoutError:
            raise ValidationInputError("validation_timeout",
                                       f"validation did not finish within {self.timeout_seconds:g} s") from None

    def temporary_dir(self) -> tempfile.TemporaryDirectory[str]:
        """Scratch space for uploaded files, on the blob volume (not /tmp, which may be small)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(dir=self.work_dir, prefix="validate-")


def copy_to(path: Path, stream: Any) -> None:
    with open(path, "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
