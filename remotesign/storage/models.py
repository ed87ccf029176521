"""Database schema. Tenant-owned rows carry a non-null ``tenant_id``; rows with ``tenant_id``
NULL belong to the operator (the built-in PKI's own keys and certificates)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    true as sa_true,
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
    redirect_uris: Mapped[str] = mapped_column(Text, default="", server_default="")  # space-separated, exact match
    # PKCE S256 on the authorization-code flow; only the operator may relax it for a legacy client.
    pkce_required: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    # the HMAC-SHA256 key of the callbacks sent to this client (base64), made on first use
    callback_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # the networks this client may call from (space-separated CIDRs); empty = anywhere
    allowed_networks: Mapped[str] = mapped_column(Text, default="", server_default="")
    # the client's own key (with a certificate of the built-in CA) that counter-signs its users'
    # documents when a request asks for it (Remote Signing ``counterSigning``)
    counter_signer_key: Mapped[str | None] = mapped_column(String(36), nullable=True)


class AccessToken(Base):
    """Opaque bearer tokens, stored only as SHA-256 so a database dump yields no usable token."""

    __tablename__ = "access_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    auth_server: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # Authorization-code tokens act for one end user; signing tokens are also bound (SCAL2) to one
    # identity and one digests summary, and are spent by their first signing call.
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    sign_identity_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    digests_summary: Mapped[str | None] = mapped_column(String(200), nullable=True)
    digests_summary_algorithm: Mapped[str | None] = mapped_column(String(10), nullable=True)
    digest_types: Mapped[str | None] = mapped_column(String(400), nullable=True)  # hashlib names, in order
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)


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
    # tenant (a relying party's own key) | identity (an end user's, SCAL2 only) | operator (PKI):
    # lookups go by usage, so a relying party's key calls never reach its users' identity keys.
    usage: Mapped[str] = mapped_column(String(10), default="tenant", server_default="tenant", index=True)


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


class AuditCheckpoint(Base):
    """A signed seal over the audit chain up to ``seq`` (see storage/audit_seal.py): the chain hash
    signed with the audit key, and optionally an RFC 3161 token whose imprint is that hash."""

    __tablename__ = "audit_checkpoints"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(36))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    timestamp_token: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class AuditAnchor(Base):
    """One audit anchor (storage/audit_anchor.py): the audit key's or the TSA certificate's pin, or
    the copy of a checkpoint, shared by every node; ``record`` is the JSON of the anchor file's
    line. ``ref`` names what is anchored (``<key id>:<SPKI SHA-256>``, the certificate's SHA-256,
    the checkpoint's seq), once per kind; ``node`` is the process that wrote it."""

    __tablename__ = "audit_anchors"
    __table_args__ = (UniqueConstraint("kind", "ref", name="uq_audit_anchors_kind_ref"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(200))
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    record: Mapped[str] = mapped_column(Text)
    node: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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


class SessionShare(Base):
    """A session shared with a natural person (eParaksts Share API), named by the national part of
    their personal code (``XXXXXX-YYYYY``); gone with the session."""

    __tablename__ = "session_shares"
    session_id: Mapped[str] = mapped_column(ForeignKey("signing_sessions.id", ondelete="CASCADE"),
                                            primary_key=True)
    person_id: Mapped[str] = mapped_column(String(20), primary_key=True, index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    access_rights: Mapped[str] = mapped_column(Text, default="null")  # JSON, as the client sent it
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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
    what was digested; one per session at a time. ``status``: prepared -> finalizing -> signed
    (-> archiving -> archived)."""

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
    digests_summary: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finalized_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # While finalizing/archiving: who claimed the operation ("<process id>#<claim>") and until when;
    # a claim whose lease expired, or whose process is known dead, may be taken over (core/operations.py).
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


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


class EndUser(Base):
    """A signer: a natural or a legal person whose keys the service holds. ``tenant_id`` NULL is a
    service-wide user (any relying party may ask them to sign); otherwise only that relying party
    sees and uses them."""

    __tablename__ = "users"
    # User names are unique per relying party, so one tenant cannot probe another's users; the
    # operator keeps service-wide names (tenant NULL) unique in code.
    __table_args__ = (UniqueConstraint("tenant_id", "username", name="uq_users_tenant_username"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True,
                                                  nullable=True)
    username: Mapped[str] = mapped_column(String(200), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))  # natural | legal
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    serial_number: Mapped[str | None] = mapped_column(String(64), nullable=True)  # e.g. PNOLV-010101-12345
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    password_failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lock_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # escalating locks
    # The signing PIN the user chose at activation: each identity created later starts with it.
    pin_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SignIdentity(Base):
    """A key in the key store plus its certificate, used only with its owner's consent."""

    __tablename__ = "sign_identities"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("keys.id"))
    certificate_id: Mapped[str | None] = mapped_column(ForeignKey("certificates.id"), nullable=True)
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    chain_der: Mapped[bytes] = mapped_column(LargeBinary, default=b"")  # concatenated DER, issuer first
    description: Mapped[str] = mapped_column(String(200), default="")
    labels: Mapped[str] = mapped_column(Text, default="")  # space-separated
    domain: Mapped[str] = mapped_column(String(60), default="citizen")
    status: Mapped[str] = mapped_column(String(10), default="enabled")  # enabled | disabled
    status_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pin_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pin_failures: Mapped[int] = mapped_column(Integer, default=0)
    pin_locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    pin_lock_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ActivationCode(Base):
    """A one-time code delivered out of band (e-mail, or the operator's CLI) that lets a user
    activate their account, reset a secret or pair a device. Stored hashed; single use."""

    __tablename__ = "activation_codes"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))  # activate | reset | device
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(20))  # email | operator
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AttemptCounter(Base):
    """Failed attempts of one kind from one source (a client, an address, an account) in the
    current window, shared by every process through the database."""

    __tablename__ = "attempt_counters"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Device(Base):
    """A registered app instance of a user; it holds a private key and signs every approval."""

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    public_key_der: Mapped[bytes] = mapped_column(LargeBinary)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="enabled")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuthorizationRequest(Base):
    """One pass of a browser through the login and consent pages (OAuth2 authorization request).
    Its id travels in a hidden form field, the browser binding in a cookie (hash stored)."""

    __tablename__ = "authorization_requests"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    auth_server: Mapped[str] = mapped_column(String(100))
    redirect_uri: Mapped[str] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(Text, nullable=True)
    scope: Mapped[str] = mapped_column(Text)
    sign_identity_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    digests_summary: Mapped[str | None] = mapped_column(String(200), nullable=True)
    digests_summary_algorithm: Mapped[str | None] = mapped_column(String(10), nullable=True)
    digest_types: Mapped[str | None] = mapped_column(String(400), nullable=True)
    code_challenge: Mapped[str | None] = mapped_column(String(200), nullable=True)
    code_challenge_method: Mapped[str | None] = mapped_column(String(10), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status: Mapped[str] = mapped_column(String(12))  # login | consent | device | approved | done | denied
    process_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: the user who must log in (a Fortress ``user_code``); anyone else is refused
    login_hint: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: the signature request this consent authorizes (core/signature_requests.py)
    signature_request_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    #: what approves a server signature: pin | pin-or-otp | pin+otp (core/one_time_passwords.py)
    factors: Mapped[str] = mapped_column(String(12), default="pin", server_default="pin")
    otp_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    otp_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    otp_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    otp_sends: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    otp_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    otp_sent_to: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: names of the documents the client says the digests are of (CSC ``documentDigests`` labels),
    #: JSON; shown on the consent page as the client's description
    document_labels: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuthorizationCode(Base):
    """An issued authorization code (stored hashed): single use, short-lived, bound to its client,
    redirect URI, PKCE challenge and to what the user consented to."""

    __tablename__ = "authorization_codes"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    auth_server: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(36))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    sign_identity_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    digests_summary: Mapped[str | None] = mapped_column(String(200), nullable=True)
    digests_summary_algorithm: Mapped[str | None] = mapped_column(String(10), nullable=True)
    digest_types: Mapped[str | None] = mapped_column(String(400), nullable=True)
    code_challenge: Mapped[str | None] = mapped_column(String(200), nullable=True)
    code_challenge_method: Mapped[str | None] = mapped_column(String(10), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SignatureProcess(Base):
    """An asynchronous request waiting for the user's device: a raw signature (``sign:raw``) or the
    approval of a consent (``authorization``). ``status``: pending -> finished | failed | canceled."""

    __tablename__ = "signature_processes"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    sign_identity_id: Mapped[str] = mapped_column(String(36))
    operation_type: Mapped[str] = mapped_column(String(20))
    digest_value: Mapped[bytes] = mapped_column(LargeBinary)
    digest_algorithm: Mapped[str] = mapped_column(String(10))
    signature_algorithm: Mapped[str] = mapped_column(String(20))
    data_info_html: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(10), index=True)
    value: Mapped[str | None] = mapped_column(Text, nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class TsaCredential(Base):
    """A TLS client certificate the operator registered for time-stamping authorities that demand
    one (the Fortress ``tsa`` object's ``certificateCode``). The private key is a key-store key of
    usage ``tls-client`` (sealed like every software key); ``tenant_id`` NULL lets every relying
    party name it, otherwise only that one. ``password_hash`` (scrypt), when set, must be matched by
    the request's ``tsa.password``."""

    __tablename__ = "tsa_credentials"
    code: Mapped[str] = mapped_column(String(100), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True,
                                                  nullable=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("keys.id"))
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    chain_pem: Mapped[str] = mapped_column(Text, default="")
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CallbackColumns:
    """The webhook a row's owner gets when its work ends (core/callbacks.py schedules and records
    the deliveries of every table that has these columns)."""

    callback_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    # none | pending | delivered | failed
    callback_status: Mapped[str] = mapped_column(String(12), default="none", index=True)
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    callback_next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    callback_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class SignatureRequest(CallbackColumns, Base):
    """Documents a relying party asked to have signed with a server-held identity, as one unit
    (core/signature_requests.py): authorized once by the user (or, for an e-seal, by the client's
    own credentials), executed once; a second execution answers the stored result. ``items`` is
    the JSON list of documents with their signature parameters and, once signed, their results."""

    __tablename__ = "signature_requests"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    auth_code: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    mode: Mapped[str] = mapped_column(String(12))  # interactive | unattended
    candidates: Mapped[str] = mapped_column(Text, default="")  # identity ids the user may choose from
    sign_identity_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    items: Mapped[str] = mapped_column(Text)
    digests_summary: Mapped[str] = mapped_column(String(200))
    digests_summary_algorithm: Mapped[str] = mapped_column(String(10))
    digest_types: Mapped[str | None] = mapped_column(Text, nullable=True)
    # pending | authorized | executing | done | failed | denied
    status: Mapped[str] = mapped_column(String(12), index=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)  # core/operations.py leases
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the HTTP status it was answered with
    run_async: Mapped[bool] = mapped_column(Boolean, default=False)
    multifactor: Mapped[bool] = mapped_column(Boolean, default=False)  # the PIN and a one-time code
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Agreement(Base):
    """A relying party's contract for one signer (core/agreements.py): the sign identity whose
    certificate the built-in CA issued for it, who may use it (``shared_mode``), which of the
    relying party's applications may sign with it, and where the owner receives passcodes and
    one-time codes. Several agreements may share one identity (a shared agreement names the one
    it shares, ``shared_from``); the identity's PIN is the owner's passcode."""

    __tablename__ = "agreements"
    __table_args__ = (UniqueConstraint("tenant_id", "reference", name="uq_agreements_tenant_reference"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), index=True)  # the agreement UUID callers name
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    # the signer and its identity: none while the registration waits for the operator's approval
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=True)
    sign_identity_id: Mapped[str | None] = mapped_column(String(36), index=True, nullable=True)
    owner_reference: Mapped[str] = mapped_column(String(200), index=True)
    shared_mode: Mapped[str] = mapped_column(String(12))  # private | relying_party | agreement
    shared_from: Mapped[str | None] = mapped_column(String(36), nullable=True)  # the agreement shared
    accepted_apps: Mapped[str] = mapped_column(Text, default="")  # space-separated; empty = any
    product: Mapped[str] = mapped_column(String(40))  # the certificate product it was issued under
    subject: Mapped[str] = mapped_column(Text)  # JSON: the signer's details the certificate names
    owner_email: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    owner_phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    otp_email: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    otp_phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    passcode_channel: Mapped[str] = mapped_column(String(8))  # email | sms
    passcode_must_change: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(10), index=True)  # pending | active | disabled | revoked
    evidence: Mapped[str] = mapped_column(Text, default="")  # blob names of the registration documents
    notice: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: the first passcode's message
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SigningTransaction(Base):
    """One signing request made with an agreement (core/signing_transactions.py): what is to be
    signed (``items``: the digests, in order), how the owner authorizes it (their passcode at
    once, or a one-time code sent to them), and its outcome. A one-time code is stored hashed and
    bound to this transaction; the transaction signs at most once."""

    __tablename__ = "signing_transactions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the bill code callers name
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # hash | file
    items: Mapped[str] = mapped_column(Text)  # JSON
    method: Mapped[str] = mapped_column(String(12))  # passcode | otp-sms | otp-email
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)  # the process signing it
    otp_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    otp_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    otp_failures: Mapped[int] = mapped_column(Integer, default=0)
    # pending | signing | done | failed | expired | cancelled | blocked | purged (files gone)
    status: Mapped[str] = mapped_column(String(10), index=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON
    error_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Notification(Base):
    """A message to a signer (a passcode, a one-time code), as delivered: its channel, the masked
    address, attempts and outcome. The text itself is never stored (it carries a secret); a
    message still ``queued`` when its process died is marked ``lost`` at the next start."""

    __tablename__ = "notifications"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    subject_ref: Mapped[str] = mapped_column(String(64))  # what it is about (an agreement, a transaction)
    purpose: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(8))  # email | sms
    recipient: Mapped[str] = mapped_column(String(200))  # masked
    status: Mapped[str] = mapped_column(String(10), index=True)  # queued | sent | failed | lost
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str] = mapped_column(String(100))  # the process that holds the text
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SignatureActivation(Base):
    """A signer's authorization of ``allowed`` signatures with one sign identity (the CSC API's
    signature activation data, core/signature_activation.py). SCAL2: ``digests`` lists exactly
    the digests it may sign (hex, JSON), each once; ``used_digests`` those signed. The SAD itself
    is stored only as its SHA-256. ``version`` makes every spend one conditional UPDATE.

    Statuses: ``otp`` (a one-time code was sent and waits), ``pending`` (the user's approval on
    their device is awaited), ``active``, ``spent``, ``replaced`` (by extendTransaction),
    ``refused`` (denied on the device, or the code used up)."""

    __tablename__ = "signature_activations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sad_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(36))
    identity_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(10))
    factors: Mapped[str] = mapped_column(String(20))
    hash_name: Mapped[str | None] = mapped_column(String(10), nullable=True)
    digests: Mapped[str | None] = mapped_column(Text, nullable=True)
    allowed: Mapped[int] = mapped_column(Integer)
    used: Mapped[int] = mapped_column(Integer, default=0)
    used_digests: Mapped[str] = mapped_column(Text, default="[]")
    version: Mapped[int] = mapped_column(Integer, default=0)
    otp_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    otp_failures: Mapped[int] = mapped_column(Integer, default=0)
    process_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    transaction_ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_signature_activations_owner", "tenant_id", "user_id", "identity_id"),
                      Index("ix_signature_activations_expires_at", "expires_at"))


class PushedAuthorization(Base):
    """An OAuth2 authorization request a client pushed (RFC 9126), redeemed once by the browser
    through its ``request_uri``."""

    __tablename__ = "pushed_authorizations"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    parameters: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DeferredResult(Base):
    """A call answered later (core/deferred_results.py): ``queued`` with the call in the blob
    store, ``running`` in the process named by ``lease_owner`` until ``lease_until``, then ``done``
    with the answer in the blob store until its owner fetches it once, or ``lost`` after
    ``attempts`` cut-off runs."""

    __tablename__ = "deferred_results"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status: Mapped[str] = mapped_column(String(10), index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: which registered runner carries the call out (None: a call of a version that ran it in a thread)
    kind: Mapped[str | None] = mapped_column(String(40), nullable=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ProcessHeartbeat(Base):
    """A serving process's sign of life (storage/liveness.py): ``last_seen`` on the database's clock,
    so another host can tell that the process of a lease is gone."""

    __tablename__ = "process_heartbeats"
    process: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Operator(Base):
    """A person who runs the service and signs in to its console (/console). Not a relying party
    and not an end user: created with ``remotesign operator create``; the password is stored as a
    scrypt hash, wrong ones lock the account for longer and longer (``lock_level``)."""

    __tablename__ = "operators"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    password_failures: Mapped[int] = mapped_column(Integer, default=0)
    lock_level: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class OperatorSession(Base):
    """A signed-in console browser: the cookie's value is known only as its SHA-256."""

    __tablename__ = "operator_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[str] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Batch(CallbackColumns, Base):
    """Many documents validated or extended in the background (core/batches.py): the caller's
    request, kept until ``expires_at``; its progress is counted from its items."""

    __tablename__ = "batches"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # validation | extension
    options: Mapped[str] = mapped_column(Text)  # JSON: the level, report policy, ... of every item
    total: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # None: storing
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class BatchItem(Base):
    """One document of a batch: ``queued`` → ``running`` (held by ``lease_owner`` until
    ``lease_until``, renewed while it works) → ``done`` or ``failed`` (``lease_owner`` then names the
    process that finished it). A running item whose lease ran out (its process died) is queued
    again; ``attempts`` bounds how often."""

    __tablename__ = "batch_items"
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256_hex: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON summary of the result
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
