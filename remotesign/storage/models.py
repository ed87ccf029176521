"""Database schema. Tenant-owned rows carry a non-null ``tenant_id``; rows with ``tenant_id``
NULL belong to the operator (the built-in PKI's own keys and certificates)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,

    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    """A relying party: one OAuth2 client and everything it owns."""

    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    client_secret_hash: Mapped[str] = mapped_column(String(200))
    allowed_scopes: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AccessToken(Base):
    """Opaque bearer tokens, stored only as SHA-256 so a database dump yields no usable token."""

    __tablename__ = "access_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    auth_server: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class KeyRecord(Base):
    """A private key held by a key-store backend; only its public half and a handle live here."""

    __tablename__ = "keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"), index=True, nullable=True)
    label: Mapped[str] = mapped_column(String(200))
    backend: Mapped[str] = mapped_column(String(20))
    algorithm: Mapped[str] = mapped_column(String(20))
    public_key_der: Mapped[bytes] = mapped_column(LargeBinary)
    handle: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CertificateRecord(Base):
    __tablename__ = "certificates"
    __table_args__ = (UniqueConstraint("issuer_id", "serial_hex"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"), index=True, nullable=True)
    issuer_id: Mapped[str | None] = mapped_column(ForeignKey("certificates.id"), nullable=True)
    key_id: Mapped[str | None] = mapped_column(ForeignKey("keys.id"), nullable=True)
    serial_hex: Mapped[str] = mapped_column(String(64), index=True)
    profile: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(Text)
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    not_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    der: Mapped[bytes] = mapped_column(LargeBinary)
    sha256_hex: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CrlRecord(Base):
    __tablename__ = "crls"
    __table_args__ = (UniqueConstraint("issuer_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issuer_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"), index=True)
    number: Mapped[int] = mapped_column(BigInteger)
    this_update: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_update: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    der: Mapped[bytes] = mapped_column(LargeBinary)


class TimestampRecord(Base):
    """Every time-stamp token issued; the primary key makes serial numbers unique by construction."""

    __tablename__ = "timestamps"
    serial: Mapped[str] = mapped_column(String(40), primary_key=True)
    gen_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    hash_algorithm: Mapped[str] = mapped_column(String(20))
    message_imprint_hex: Mapped[str] = mapped_column(String(128))


class AuditEvent(Base):
    """Append-only, hash-chained record of security-relevant events."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event: Mapped[str] = mapped_column(String(60), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    tenant_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """Single row holding the chain head; locked while appending so concurrent writers serialise,
    and compared by the verifier so that truncating the tail is detected."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class SystemSetting(Base):
    """Operator-level facts decided at initialisation (which certificate is the root CA, ...)."""

    __tablename__ = "system_settings"
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text)




class SigningSession(Base):
    """A relying party's file-processing session (eParaksts 'session'): documents go in, signed
    documents come out; everything is deleted when it is closed or expires."""

    __tablename__ = "signing_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SessionDocument(Base):
    """A file (kind 'file'), a hash-only entry (kind 'hash') or a signing result (kind 'signed')
    inside a session. Content lives in the blob store under the tenant's namespace."""

    __tablename__ = "session_documents"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("signing_sessions.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(512))
    mime_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[bytes] = mapped_column(LargeBinary)
    blob: Mapped[str | None] = mapped_column(String(128), nullable=True)
    signature_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SigningOperation(Base):
    """State kept between CalculateDigest and finalizeSigning, so that finalizing produces exactly
    what was digested; one per session at a time. ``status``: prepared -> signed (-> archived)."""

    __tablename__ = "signing_operations"
    session_id: Mapped[str] = mapped_column(ForeignKey("signing_sessions.id", ondelete="CASCADE"),
                                            primary_key=True)
    format: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12))
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    digest_algorithm: Mapped[str] = mapped_column(String(10))
    digest: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(Text)
    prepared_blob: Mapped[str | None] = mapped_column(String(128), nullable=True)
    result_document_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finalized_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class TrustAnchorRecord(Base):
    """A trust anchor a relying party added for validating the documents it sends (its own
    corporate CA, a partner's CA); used only for that tenant's validations."""

    __tablename__ = "trust_anchors"
    __table_args__ = (UniqueConstraint("tenant_id", "sha256_hex", name="uq_trust_anchor_tenant_cert"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    sha256_hex: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
