"""Asynchronous signature processes approved on the user's device (eSigP ``signatures/device/raw``)
and device approvals of consents given on the login page.

A process waits (``pending``) until the user's device approves it with the signing PIN and a
signature of its device key over the approval text, or rejects it, or the relying party cancels it,
or it expires. Results stay readable for a retention period; then the process is gone (410).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, select, update

from remotesign.storage.audit import AuditLog
from remotesign.core.errors import CoreError
from remotesign.core.devices import DeviceInfo, DeviceService, verify_device_signature
from remotesign.core.identities import IdentityError, IdentityInfo, IdentityService, PinRefused, Viewer
from remotesign.core.raw_signing import RawRequest, RawSigningError, RawSigningService, parse_request
from remotesign.core.scopes import USE_DEVICE
from remotesign.core.sole_control import TypedDigest
from remotesign.core.tenants import TokenInfo
from remotesign.keystore.base import KeyStoreError
from remotesign.storage.db import Database
from remotesign.storage.models import SignatureProcess
from remotesign.storage.times import aware as _aware

RAW = "sign:raw"
AUTHORIZATION = "authorization"
FINAL = ("finished", "failed", "canceled")
DECISIONS = ("approve", "reject")


class ProcessError(CoreError):
    """A signature process cannot be created or answered as asked."""


@dataclass(frozen=True)
class ProcessInfo:
    id: str
    tenant_id: str
    user_id: str
    sign_identity_id: str
    operation_type: str
    digest_value: bytes
    digest_algorithm: str
    signature_algorithm: str
    data_info_html: str | None
    status: str
    value: str | None
    device_id: str | None
    created_at: datetime
    expires_at: datetime
    finished_at: datetime | None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    def approval_text(self, decision: str) -> bytes:
        """What the device signs: the process, the decision and the digest, one per line."""
        return "\n".join(("remotesign-approval-v1", self.id, decision, self.digest_algorithm,
                          base64.b64encode(self.digest_value).decode(), "")).encode()



def _info(p: SignatureProcess) -> ProcessInfo:
    return ProcessInfo(id=p.id, tenant_id=p.tenant_id, user_id=p.user_id, sign_identity_id=p.sign_identity_id,
                       operation_type=p.operation_type, digest_value=p.digest_value, digest_algorithm=p.digest_algorithm,
                       signature_algorithm=p.signature_algorithm, data_info_html=p.data_info_html, status=p.status,
                       value=p.value, device_id=p.device_id, created_at=_aware(p.created_at) or p.created_at,
                       expires_at=_aware(p.expires_at) or p.expires_at, finished_at=_aware(p.finished_at))


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ProcessService:
    def __init__(self, db: Database, audit: AuditLog, identities: IdentityService, devices: DeviceService,
                 raw: RawSigningService, *, ttl_seconds: int = 300, retention_seconds: int = 3600) -> None:
        self.db = db
        self.audit = audit
        self.identities = identities
        self.devices = devices
        self.raw = raw
        self.ttl = ttl_seconds
        self.retention = retention_seconds

    # -- relying party side ------------------------------------------------------------------------
    def create_raw(self, token: TokenInfo, identity: IdentityInfo, digest: bytes, digest_algorithm: str | None,
                   data_info_html: str | None) -> ProcessInfo:
        """A raw signature to be approved on the identity owner's device."""
        request = parse_request(self.raw.key_algorithm(identity), _signature_algorithm(identity, self.raw,
                                                                                       digest_algorithm),
                                digest=digest, allow_sha1=self.raw.allow_sha1)
        self.identities.check_usable(identity)
        if not self.devices.has_device(identity.user_id):
            raise ProcessError("no_device", "the identity's user has no registered approval device", 409)
        if token.digests_summary:  # consent bound to digests (eID Scan): exactly these, this identity, once
            self.raw.sole_control.authorize(token, identity.id, [TypedDigest(request.hash_name, request.digest)],
                                            scope=USE_DEVICE)
        return self._create(token.tenant_id, identity, RAW, request, data_info_html, actor=token.user_id or token.client_id)

    def create_authorization(self, tenant_id: str, identity: IdentityInfo, summary_digest: bytes, summary_alg: str,
                             html: str | None) -> ProcessInfo:
        """A consent given on the login page, to be confirmed on the device (PIN + device key)."""
        if not self.devices.has_device(identity.user_id):
            raise ProcessError("no_device", "you have no registered approval device", 409)
        request = RawRequest(summary_digest, summary_alg, self.raw_scheme(identity))
        return self._create(tenant_id, identity, AUTHORIZATION, request, html, actor=identity.user_id)

    def raw_scheme(self, identity: IdentityInfo) -> Any:
        from remotesign.keystore import SignatureScheme

        return SignatureScheme.RSA_PKCS1V15 if self.raw.key_algorithm(identity).is_rsa else SignatureScheme.ECDSA

    def _create(self, tenant_id: str, identity: IdentityInfo, kind: str, request: RawRequest, html: str | None,
                actor: str) -> ProcessInfo:
        now = _now()
        rec = SignatureProcess(id=str(uuid.uuid4()), tenant_id=tenant_id, user_id=identity.user_id,
                               sign_identity_id=identity.id, operation_type=kind, digest_value=request.digest,
                               digest_algorithm=request.hash_name, signature_algorithm=request.algorithm_name,
                               data_info_html=(html or None) and html[:64 * 1024], status="pending",
                               created_at=now, expires_at=now + timedelta(seconds=self.ttl))
        with self.db.session() as s:
            s.add(rec)
        self.audit.append("process.created", actor=actor, tenant_id=tenant_id, subject=rec.id,
                          details={"operation_type": kind, "sign_identity_id": identity.id,
                                   "digest": request.digest.hex(), "algorithm": request.algorithm_name})
        return _info(rec)

    def _visible(self, token: TokenInfo, process_id: str) -> ProcessInfo | None:
        with self.db.session() as s:
            q = select(SignatureProcess).where(SignatureProcess.id == process_id,
                                               SignatureProcess.tenant_id == token.tenant_id,
                                               SignatureProcess.operation_type == RAW)
            if token.user_id is not None:
                q = q.where(SignatureProcess.user_id == token.user_id)
            p = s.scalar(q)
            return _info(p) if p else None

    def get(self, token: TokenInfo, process_id: str) -> ProcessInfo | None:
        """The process, or None when unknown, not the caller's, or gone past its retention."""
        info = self._visible(token, process_id)
        if info is None or self._gone(info):
            return None
        return info

    def _gone(self, info: ProcessInfo) -> bool:
        now = _now()
        if info.is_final:
            return (info.finished_at or info.created_at) + timedelta(seconds=self.retention) <= now
        return info.expires_at <= now

    def cancel(self, token: TokenInfo, process_id: str, reason: str = "canceled by the relying party") -> ProcessInfo:
        info = self.get(token, process_id)
        if info is None:
            raise ProcessError("not_found", f"no signature process {process_id}", 404)
        if info.is_final:
            return info
        return self._finish(info, "canceled", reason, actor=token.user_id or token.client_id) or info

    def withdraw(self, process_id: str, reason: str, actor: str) -> None:
        """Cancel a pending process on behalf of the consent page that created it."""
        with self.db.session() as s:
            p = s.get(SignatureProcess, process_id)
            info = _info(p) if p else None
        if info is not None and not info.is_final:
            self._finish(info, "canceled", reason, actor=actor)

    def delete(self, token: TokenInfo, process_id: str) -> None:
        """Forget the process; a device answering it afterwards gets 404, the relying party 410."""
        info = self._visible(token, process_id)
        if info is None:
            raise ProcessError("not_found", f"no signature process {process_id}", 404)
        with self.db.session() as s:
            s.execute(delete(SignatureProcess).where(SignatureProcess.id == process_id))
        self.audit.append("process.deleted", actor=token.user_id or token.client_id, tenant_id=token.tenant_id,
                          subject=process_id, details={"status": info.status})

    def _finish(self, info: ProcessInfo, status: str, value: str | None, *, actor: str,
                device_id: str | None = None) -> ProcessInfo | None:
        """Move a pending process to a final state exactly once (concurrent answers lose)."""
        now = _now()
        with self.db.session() as s:
            changed = s.execute(update(SignatureProcess)
                                .where(SignatureProcess.id == info.id, SignatureProcess.status == "pending")
                                .values(status=status, value=value, finished_at=now, device_id=device_id)).rowcount
            p = s.get(SignatureProcess, info.id)
            new = _info(p) if p else None
        if changed:
            self.audit.append(f"process.{status}", actor=actor, tenant_id=info.tenant_id, subject=info.id,
                              details={"operation_type": info.operation_type, "device_id": device_id,
                                       **({"reason": value} if status != "finished" else {})})
        return new if changed else None

    def authorization_state(self, process_id: str) -> ProcessInfo | None:
        """For the consent page: the approval it waits for."""
        with self.db.session() as s:
            p = s.get(SignatureProcess, process_id)
            return _info(p) if p else None

    # -- device side -----------------------------------------------------------------------------
    def pending_for(self, device: DeviceInfo) -> list[ProcessInfo]:
        now = _now()
        with self.db.session() as s:
            rows = s.scalars(select(SignatureProcess)
                             .where(SignatureProcess.user_id == device.user_id, SignatureProcess.status == "pending",
                                    SignatureProcess.expires_at > now)
                             .order_by(SignatureProcess.created_at))
            return [_info(p) for p in rows]

    def answer(self, device: DeviceInfo, process_id: str, decision: str, signature: bytes,
               pin: str | None) -> ProcessInfo:
        """The device's answer: the device-key signature over ``approval_text(decision)`` is
        required for both decisions; an approval also needs the identity's PIN."""
        if decision not in DECISIONS:
            raise ProcessError("invalid_request", "decision is approve or reject")
        with self.db.session() as s:
            p = s.scalar(select(SignatureProcess).where(SignatureProcess.id == process_id,
                                                        SignatureProcess.user_id == device.user_id))
            info = _info(p) if p else None
        if info is None:
            raise ProcessError("not_found", f"no signature request {process_id} for this device", 404)
        if info.is_final:
            raise ProcessError("already_answered", f"the request is already {info.status}", 409)
        if info.expires_at <= _now():
            raise ProcessError("expired", "the request has expired", 410)
        if not verify_device_signature(device.public_key_der, info.approval_text(decision), signature):
            self.audit.append("process.device_signature_invalid", actor=device.id, tenant_id=info.tenant_id,
                              subject=info.id)
            raise ProcessError("invalid_device_signature", "the answer is not signed by this device's key", 403)
        if decision == "reject":
            return self._finish(info, "canceled", "rejected by the user", actor=device.id, device_id=device.id) or info
        if pin is None:
            raise ProcessError("pin_required", "approving needs the signing PIN")
        try:
            identity = self.identities.get(info.sign_identity_id, Viewer(None))
        except IdentityError as exc:
            return self._finish(info, "failed", "the sign identity no longer exists", actor=device.id,
                                device_id=device.id) or info
        try:
            self.identities.verify_pin(identity.id, pin, actor=device.id, tenant_id=info.tenant_id)
        except PinRefused as exc:
            if exc.code == "pin_locked":
                self._finish(info, "failed", "the PIN is locked", actor=device.id, device_id=device.id)
            raise
        if info.operation_type == AUTHORIZATION:
            return self._finish(info, "finished", None, actor=device.id, device_id=device.id) or info
        request = RawRequest(info.digest_value, info.digest_algorithm, self.raw_scheme(identity))
        try:
            value = self.raw.sign_authorized(identity, request, process_id=info.id, actor=device.id,
                                             tenant_id=info.tenant_id)
        except (IdentityError, KeyStoreError, RawSigningError) as exc:
            return self._finish(info, "failed", str(exc), actor=device.id, device_id=device.id) or info
        return self._finish(info, "finished", base64.b64encode(value).decode(), actor=device.id,
                            device_id=device.id) or info

    def sweep(self) -> int:
        """Delete processes past their expiry (pending) or retention (final)."""
        now = _now()
        with self.db.session() as s:
            gone = s.execute(delete(SignatureProcess).where(
                ((SignatureProcess.status == "pending") & (SignatureProcess.expires_at <= now - timedelta(seconds=60)))
                | (SignatureProcess.finished_at <= now - timedelta(seconds=self.retention)))).rowcount
        return gone or 0


def _signature_algorithm(identity: IdentityInfo, raw: RawSigningService, digest_algorithm: str | None) -> str | None:
    """device/raw names the digest's hash (``digest_algorithm``: SHA-256, sha256 ...), not the signature."""
    if not digest_algorithm:
        return None
    name = digest_algorithm.lower().replace("-", "")
    kind = "rsa" if raw.key_algorithm(identity).is_rsa else "ecdsa"
    return f"{kind}-{name}"
