"""Approval devices: a user's registered app instance. It holds its own private key (generated on
the device, never sent) and signs every approval or rejection it gives, so that an approval
proves possession of the device, and the PIN it carries proves knowledge: two factors (SCAL2).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from sqlalchemy import or_, select, update

from remotesign.storage.audit import AuditLog
from remotesign.core.errors import CoreError
from remotesign.core.users import UserInfo, owner_named
from remotesign.storage import text_search
from remotesign.storage.db import Database
from remotesign.storage.models import Device, EndUser


class DeviceError(CoreError):
    """A device registration or lookup failed."""


@dataclass(frozen=True)
class DeviceInfo:
    id: str
    user_id: str
    name: str
    status: str
    created_at: datetime
    public_key_der: bytes
    last_seen_at: datetime | None = None

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "user_id": self.user_id, "name": self.name, "status": self.status,
                "created_at": self.created_at.isoformat(),
                "public_key": base64.b64encode(self.public_key_der).decode()}


def _info(d: Device) -> DeviceInfo:
    created = d.created_at if d.created_at.tzinfo else d.created_at.replace(tzinfo=timezone.utc)
    seen = d.last_seen_at
    seen = seen.replace(tzinfo=timezone.utc) if seen is not None and seen.tzinfo is None else seen
    return DeviceInfo(id=d.id, user_id=d.user_id, name=d.name, status=d.status, created_at=created,
                      public_key_der=d.public_key_der, last_seen_at=seen)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_device_key(text: str) -> bytes:
    """A device public key as PEM or base64 SubjectPublicKeyInfo DER: EC P-256/P-384, RSA >= 2048
    or Ed25519. Returns the DER."""
    try:
        raw = text.strip()
        key = (serialization.load_pem_public_key(raw.encode()) if raw.startswith("-----BEGIN")
               else serialization.load_der_public_key(base64.b64decode(raw, validate=True)))
    except (ValueError, TypeError) as exc:
        raise DeviceError("invalid_public_key", "public_key must be a PEM or base64 DER SubjectPublicKeyInfo") from exc
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise DeviceError("invalid_public_key", "RSA device keys need at least 2048 bits")
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in ("secp256r1", "secp384r1"):
        raise DeviceError("invalid_public_key", "EC device keys must be on P-256 or P-384")
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
        raise DeviceError("invalid_public_key", "device keys are EC P-256/P-384, RSA or Ed25519")
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def verify_device_signature(public_key_der: bytes, message: bytes, signature: bytes) -> bool:
    """ECDSA (DER) / RSA PKCS#1 v1.5 with SHA-256, or Ed25519, over ``message``."""
    key = serialization.load_der_public_key(public_key_der)
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


class DeviceService:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    def register(self, user: UserInfo, public_key: str, name: str = "") -> tuple[DeviceInfo, str]:
        """Registers an app instance for an authenticated user; returns it with its API token
        (shown once, stored hashed)."""
        der = load_device_key(public_key)
        token = secrets.token_urlsafe(32)
        device = Device(id=str(uuid.uuid4()), user_id=user.id, name=name.strip()[:200], public_key_der=der,
                        token_hash=_token_hash(token), status="enabled", created_at=datetime.now(timezone.utc))
        with self.db.session() as s:
            s.add(device)
        self.audit.append("device.registered", actor=user.id, tenant_id=user.tenant_id, subject=device.id,
                          details={"name": device.name, "public_key_sha256": hashlib.sha256(der).hexdigest()})
        return _info(device), token

    def authenticate(self, token: str) -> DeviceInfo | None:
        """The enabled device whose API token this is (its user must be enabled too)."""
        if not token or len(token) > 200:
            return None
        with self.db.session() as s:
            row = s.execute(select(Device, EndUser.enabled).join(EndUser, EndUser.id == Device.user_id)
                            .where(Device.token_hash == _token_hash(token))).first()
            if row is None or row[0].status != "enabled" or not row[1]:
                return None
            s.execute(update(Device).where(Device.id == row[0].id).values(last_seen_at=datetime.now(timezone.utc)))
            return _info(row[0])

    def list(self, user_id: str) -> list[DeviceInfo]:
        with self.db.session() as s:
            return [_info(d) for d in s.scalars(select(Device).where(Device.user_id == user_id)
                                                .order_by(Device.created_at))]

    def list_all(self, limit: int = 1000) -> list[DeviceInfo]:
        """Every user's devices, newest first (the operator's view)."""
        with self.db.session() as s:
            return [_info(d) for d in s.scalars(select(Device).order_by(Device.created_at.desc()).limit(limit))]

    def search(self, *, text: str | None = None, offset: int = 0, limit: int = 100) -> tuple[list[DeviceInfo], int]:
        """One page of every user's devices, newest first (the operator's view), and how many match
        in all, filtered in SQL: ``text`` (case-insensitive, ``%`` and ``_`` literal) in the
        device's id or name, its user's name or the owner's name (``SERVICE_WIDE`` for users no
        relying party owns). The key's fingerprint is not stored, so it is not searched.
        ``limit`` 0 only counts."""
        q = (select(Device).join(EndUser, EndUser.id == Device.user_id)
             .order_by(Device.created_at.desc(), Device.id.desc()))
        wanted = text_search.needle(text)
        if wanted is not None:
            q = q.where(or_(text_search.any_contains(wanted, Device.id, Device.name, EndUser.username),
                            owner_named(EndUser.tenant_id, wanted)))
        with self.db.session() as s:
            rows, total = text_search.page(s, q, offset, limit)
            return [_info(r[0]) for r in rows], total

    def owner_of(self, device_id: str) -> str | None:
        """The user an enabled device belongs to, or None."""
        with self.db.session() as s:
            return s.scalar(select(Device.user_id).where(Device.id == device_id, Device.status == "enabled"))

    def has_device(self, user_id: str) -> bool:
        with self.db.session() as s:
            return s.scalar(select(Device.id).where(Device.user_id == user_id, Device.status == "enabled")
                            .limit(1)) is not None

    def remove(self, device_id: str, user_id: str, actor: str) -> None:
        with self.db.session() as s:
            d = s.scalar(select(Device).where(Device.id == device_id, Device.user_id == user_id))
            if d is None:
                raise DeviceError("not_found", f"no device {device_id}", 404)
            s.delete(d)
        self.audit.append("device.removed", actor=actor, subject=device_id, details={"user_id": user_id})
