"""Signature activation data (SAD): a signer's authorization of a number of signatures with one
sign identity (the Cloud Signature Consortium API's ``credentials/authorize``, in vendor-neutral
form).

The signer authorizes with their own factors: the identity's PIN, a one-time code sent to their
phone or e-mail address, both (``factors``), or an approval on their paired device. What they
authorize is recorded before any key is touched:

* **SCAL2** (the default): the exact digests, typed and counted; each signs once, and nothing
  else ever signs with this SAD. ``extend`` gives a fresh SAD for the digests *not yet signed*
  (a longer-running transaction); it never adds a digest the signer did not authorize.
* **SCAL1**: a number of signatures of any digests, for deployments that choose it.

The SAD is a random 256-bit value stored only as its SHA-256, bound to the client and the user
who asked for it and to the identity; it expires after ``ttl`` seconds. Each use is one
conditional UPDATE of the activation's counters (``version``), so concurrent calls can never sign
more, or other, digests than were authorized; the use then goes through ``core/sole_control.py``
as every signature does (a one-shot token bound to exactly the digests of that call).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select, update

from remotesign.core import one_time_passwords as otp_codes
from remotesign.core.errors import CoreError
from remotesign.core.identities import IdentityInfo, IdentityService, PinRefused, Viewer
from remotesign.core.one_time_passwords import OtpError, OtpSender
from remotesign.core.scopes import USE_SERVER
from remotesign.core.sole_control import TypedDigest, digests_summary
from remotesign.core.tenants import TenantService, TokenInfo, hash_of
from remotesign.core.throttle import AttemptThrottle
from remotesign.core.users import UserService
from remotesign.keystore.base import HASH_SIZES
from remotesign.storage.audit import AuditLog
from remotesign.storage.db import Database
from remotesign.storage.models import SignatureActivation
from remotesign.storage.times import aware

FACTORS = ("pin", "pin+otp", "pin-or-otp")
AUTH_SERVER = "sad"
_SPEND_RETRIES = 5
OTP_SENDS_PER_HOUR = 10


class SadError(CoreError):
    """A refused authorization or use of signature activation data; ``code`` says why:
    ``invalid_request`` (malformed), ``invalid_sad`` (unknown or not the caller's), ``sad_expired``,
    ``sad_used`` (spent, replaced or refused), ``hash_not_authorized``, ``too_many_signatures``,
    ``credential_mismatch``, ``otp_required``, ``pin_required``."""


@dataclass(frozen=True)
class Signer:
    """Who asks: the client (relying party) and the user of the bearer token."""

    tenant_id: str
    user_id: str


@dataclass(frozen=True)
class Authorized:
    """``sad`` once the signer authorized (None while their device approval is awaited, with
    ``handle`` to ask again); ``expires_in`` seconds."""

    handle: str
    sad: str | None
    expires_in: int


@dataclass(frozen=True)
class Digests:
    """What a request names: digests of one hash (``hash_name``, hashlib name), in order."""

    hash_name: str
    values: tuple[bytes, ...]

    def typed(self) -> list[TypedDigest]:
        return [TypedDigest(self.hash_name, v) for v in self.values]

    def check(self, max_count: int) -> None:
        size = HASH_SIZES.get(self.hash_name)
        if size is None:
            raise SadError("invalid_request", f"unsupported hash algorithm {self.hash_name}")
        if not 1 <= len(self.values) <= max_count:
            raise SadError("invalid_request", f"1 to {max_count} hashes")
        if any(len(v) != size for v in self.values):
            raise SadError("invalid_request", f"a {self.hash_name} hash has {size} bytes")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _sad_hash(sad: str) -> str:
    return hashlib.sha256(f"sad:{sad}".encode()).hexdigest()


class SignatureActivationService:
    def __init__(self, db: Database, audit: AuditLog, identities: IdentityService, users: UserService,
                 tenants: TenantService, throttle: AttemptThrottle, otp: OtpSender, processes: object, *,
                 scal: int = 2, factors: str = "pin", ttl: int = 300, transaction_ttl: int = 3600,
                 multisign: int = 100) -> None:
        if factors not in FACTORS:
            raise ValueError(f"factors is one of {', '.join(FACTORS)}")
        if scal not in (1, 2):
            raise ValueError("SCAL is 1 or 2")
        self.db = db
        self.audit = audit
        self.identities = identities
        self.users = users
        self.tenants = tenants
        self.throttle = throttle
        self.otp = otp
        self.processes = processes
        self.scal = scal
        self.factors = factors
        self.ttl = ttl
        self.transaction_ttl = max(transaction_ttl, ttl)
        self.multisign = multisign

    # -- what a credential asks for -----------------------------------------------------------------
    def otp_offered(self, user_id: str, tenant_id: str) -> bool:
        """Whether the signer can be sent a one-time code (the factors use one and a channel reaches them)."""
        if self.factors == "pin":
            return False
        return self.otp.can_reach(self.users.get(user_id, tenant_id))

    def identity(self, signer: Signer, identity_id: str) -> IdentityInfo:
        """The signer's own identity (any other one is unknown to them)."""
        if not identity_id or len(identity_id) > 64:
            raise SadError("invalid_request", "credentialID is missing or malformed")
        try:
            return self.identities.get(identity_id, Viewer(signer.tenant_id, signer.user_id))
        except CoreError:
            raise SadError("invalid_credential", "unknown credentialID", 400) from None

    # -- authorizing ------------------------------------------------------------------------------
    def _check_request(self, count: int, digests: Digests | None) -> None:
        if not 1 <= count <= self.multisign:
            raise SadError("invalid_request", f"numSignatures is 1 to {self.multisign}")
        if digests is None:
            if self.scal == 2:
                raise SadError("invalid_request", "this service binds every authorization to its hashes (SCAL2): "
                                                  "send the hashes to be signed")
            return
        digests.check(self.multisign)
        if len(digests.values) != count:
            raise SadError("invalid_request", f"numSignatures is {count} but {len(digests.values)} hashes were given")

    def authorize(self, signer: Signer, identity_id: str, count: int, digests: Digests | None, *,
                  pin: str | None, otp: str | None, description: str | None = None,
                  address: str | None = None) -> Authorized:
        """The signer's explicit authorization with the factors the service asks for."""
        identity = self.identity(signer, identity_id)
        self._check_request(count, digests)
        self.identities.check_usable(identity)
        sources = [f"client:{signer.tenant_id}"] + ([f"address:{address}"] if address else [])
        self.throttle.check(sources)
        use_otp = self.factors == "pin+otp" or (self.factors == "pin-or-otp" and bool(otp) and not pin)
        if self.factors == "pin+otp" and not otp:
            raise SadError("otp_required", "this credential needs the one-time code (credentials/sendOTP) and the PIN")
        try:
            if use_otp:
                self._check_otp(signer, identity.id, otp or "", sources)
            if not (use_otp and self.factors == "pin-or-otp"):
                if not pin:
                    raise SadError("pin_required", "the PIN is required")
                self.identities.verify_pin(identity.id, pin, actor=signer.user_id, tenant_id=signer.tenant_id)
        except PinRefused:
            self.throttle.failed(sources)
            raise
        factors = "pin+otp" if use_otp and self.factors == "pin+otp" else ("otp" if use_otp else "pin")
        return self._activate(signer, identity, count, digests, factors, description)

    def authorize_on_device(self, signer: Signer, identity_id: str, count: int, digests: Digests | None,
                            description: str | None = None) -> Authorized:
        """Ask the signer to approve on their paired device; ``check`` tells when they did."""
        identity = self.identity(signer, identity_id)
        self._check_request(count, digests)
        self.identities.check_usable(identity)
        client = self.tenants.by_client_id_or_id(signer.tenant_id)
        if digests is not None:
            summary, alg = hashlib.new(digests.hash_name, b"".join(digests.values)).digest(), digests.hash_name
        else:
            summary, alg = hashlib.sha256(f"sad:{uuid.uuid4()}".encode()).digest(), "sha256"
        text = (f"{client.name} asks you to authorize {count} signature{'s' if count != 1 else ''}"
                + (f": {description}" if description else ""))
        process = self.processes.create_authorization(signer.tenant_id, identity, summary, alg, text)  # type: ignore[attr-defined]
        row = self._row(signer, identity, count, digests, "device", description, status="pending")
        row.process_id = process.id
        with self.db.session() as s:
            s.add(row)
        self.audit.append("sad.requested", actor=signer.user_id, tenant_id=signer.tenant_id, subject=identity.id,
                          details={"activation": row.id, "signatures": count, "device_process": process.id})
        return Authorized(row.id, None, self.ttl)

    def check(self, signer: Signer, handle: str) -> Authorized:
        """The state of an authorization on the device: its SAD once approved (given once)."""
        row = self._owned(signer, handle)
        if row.status != "pending":
            raise SadError("sad_used", "this authorization was answered already")
        process = self.processes.authorization_state(row.process_id or "")  # type: ignore[attr-defined]
        now = _now()
        if process is None or process.status not in ("pending", "finished") or \
                (process.status == "pending" and process.expires_at <= now):
            with self.db.session() as s:
                s.execute(update(SignatureActivation).where(SignatureActivation.id == row.id,
                                                            SignatureActivation.status == "pending")
                          .values(status="refused"))
            raise SadError("access_denied", "the signer did not approve the authorization", 403)
        if process.status == "pending":
            return Authorized(row.id, None, int((aware(row.expires_at) - now).total_seconds()))
        sad = secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=self.ttl)
        with self.db.session() as s:
            done = s.execute(update(SignatureActivation)
                             .where(SignatureActivation.id == row.id, SignatureActivation.status == "pending")
                             .values(status="active", sad_hash=_sad_hash(sad), expires_at=expires,
                                     transaction_ends_at=now + timedelta(seconds=self.transaction_ttl))).rowcount
        if done != 1:
            raise SadError("sad_used", "this authorization was answered already")
        self.audit.append("sad.authorized", actor=signer.user_id, tenant_id=signer.tenant_id, subject=row.identity_id,
                          details={"activation": row.id, "factors": "device", "signatures": row.allowed,
                                   "digests": None if row.digests is None else len(json.loads(row.digests))})
        return Authorized(row.id, sad, self.ttl)

    def _row(self, signer: Signer, identity: IdentityInfo, count: int, digests: Digests | None, factors: str,
             description: str | None, *, status: str) -> SignatureActivation:
        now = _now()
        return SignatureActivation(
            id=str(uuid.uuid4()), tenant_id=signer.tenant_id, user_id=signer.user_id, identity_id=identity.id,
            status=status, factors=factors, hash_name=digests.hash_name if digests else None,
            digests=json.dumps([v.hex() for v in digests.values]) if digests else None, allowed=count, used=0,
            used_digests="[]", version=0, otp_failures=0, description=(description or None) and description[:500],
            created_at=now, expires_at=now + timedelta(seconds=self.ttl),
            transaction_ends_at=now + timedelta(seconds=self.transaction_ttl))

    def _activate(self, signer: Signer, identity: IdentityInfo, count: int, digests: Digests | None, factors: str,
                  description: str | None) -> Authorized:
        sad = secrets.token_urlsafe(32)
        row = self._row(signer, identity, count, digests, factors, description, status="active")
        row.sad_hash = _sad_hash(sad)
        with self.db.session() as s:
            s.add(row)
            s.execute(delete(SignatureActivation).where(SignatureActivation.expires_at < _now() - timedelta(days=1)))
        self.audit.append("sad.authorized", actor=signer.user_id, tenant_id=signer.tenant_id, subject=identity.id,
                          details={"activation": row.id, "factors": factors, "signatures": count,
                                   "hash": row.hash_name, "digests": None if digests is None else len(digests.values)})
        return Authorized(row.id, sad, self.ttl)

    # -- one-time codes ---------------------------------------------------------------------------
    def send_otp(self, signer: Signer, identity_id: str) -> str:
        """Send the signer a one-time code for their next authorization of this identity (a new
        code replaces the last); returns where it went, masked."""
        identity = self.identity(signer, identity_id)
        if self.factors == "pin":
            raise SadError("invalid_request", "this service authorizes signatures with the PIN; no one-time code "
                                              "is needed")
        now = _now()
        with self.db.session() as s:
            sent = [aware(t) for t in s.scalars(
                select(SignatureActivation.created_at)
                .where(SignatureActivation.tenant_id == signer.tenant_id, SignatureActivation.user_id == signer.user_id,
                       SignatureActivation.identity_id == identity.id, SignatureActivation.factors == "otp-code",
                       SignatureActivation.created_at > now - timedelta(hours=1)))]
        if sent and max(sent) > now - timedelta(seconds=otp_codes.RESEND_SECONDS):
            raise OtpError("otp_limit", f"wait {otp_codes.RESEND_SECONDS} seconds before asking for another code", 429)
        if len(sent) >= OTP_SENDS_PER_HOUR:  # a client cannot flood the signer's phone
            raise OtpError("otp_limit", "too many one-time codes were sent in the last hour; try again later", 429)
        user = self.users.get(signer.user_id, signer.tenant_id)
        client = self.tenants.by_client_id_or_id(signer.tenant_id)
        row_id, code = str(uuid.uuid4()), otp_codes.new_code()
        sent_to = self.otp.send(user, code, f"authorize signatures for {client.name}")
        with self.db.session() as s:
            s.execute(update(SignatureActivation)
                      .where(SignatureActivation.tenant_id == signer.tenant_id,
                             SignatureActivation.user_id == signer.user_id,
                             SignatureActivation.identity_id == identity.id, SignatureActivation.status == "otp")
                      .values(status="replaced"))
            s.add(SignatureActivation(
                id=row_id, tenant_id=signer.tenant_id, user_id=signer.user_id, identity_id=identity.id, status="otp",
                factors="otp-code", allowed=0, used=0, used_digests="[]", version=0,
                otp_hash=otp_codes.code_hash(row_id, code), otp_failures=0, created_at=now,
                expires_at=now + timedelta(seconds=otp_codes.TTL_SECONDS), transaction_ends_at=now))
        self.audit.append("sad.otp_sent", actor=signer.user_id, tenant_id=signer.tenant_id, subject=identity.id,
                          details={"to": sent_to})
        return sent_to

    def _check_otp(self, signer: Signer, identity_id: str, code: str, sources: list[str]) -> None:
        """The last code sent for this identity, unexpired, within its tries; spent by this use."""
        sa = SignatureActivation
        now = _now()
        with self.db.session() as s:
            row = s.execute(select(sa.id).where(sa.tenant_id == signer.tenant_id, sa.user_id == signer.user_id,
                                                sa.identity_id == identity_id, sa.status == "otp")
                            .order_by(sa.created_at.desc()).limit(1)).first()
            if row is None:
                raise SadError("otp_required", "no one-time code was sent for this credential (credentials/sendOTP)")
            s.execute(update(sa).where(sa.id == row.id).values(otp_failures=sa.otp_failures + 1))
            otp_hash, expires, failures = s.execute(select(sa.otp_hash, sa.expires_at, sa.otp_failures)
                                                    .where(sa.id == row.id)).one()
            fresh = aware(expires) > now
            if fresh and failures <= otp_codes.MAX_FAILURES and otp_codes.matches(otp_hash, row.id, code.strip()):
                s.execute(update(sa).where(sa.id == row.id).values(status="spent", otp_hash=None))
                return
            void = not fresh or failures >= otp_codes.MAX_FAILURES
            if void:
                s.execute(update(sa).where(sa.id == row.id).values(status="refused", otp_hash=None))
        self.throttle.failed(sources)
        self.audit.append("sad.otp_refused", actor=signer.user_id, tenant_id=signer.tenant_id, subject=identity_id,
                          details={"failures": failures, "expired": not fresh})
        if void:
            raise OtpError("otp_invalid", "the one-time code is wrong, expired or used up; ask for a new one", 403)
        left = otp_codes.MAX_FAILURES - failures
        raise OtpError("otp_invalid", f"wrong one-time code, {left} {'try' if left == 1 else 'tries'} left", 403)

    # -- using ------------------------------------------------------------------------------------
    def _by_sad(self, signer: Signer, sad: str) -> SignatureActivation:
        if not sad or len(sad) > 200:
            raise SadError("invalid_sad", "SAD is missing or malformed")
        with self.db.session() as s:
            row = s.scalar(select(SignatureActivation).where(SignatureActivation.sad_hash == _sad_hash(sad)))
            if row is not None:
                s.expunge(row)
        if row is None or row.tenant_id != signer.tenant_id or row.user_id != signer.user_id:
            raise SadError("invalid_sad", "the SAD is unknown")
        return row

    def _owned(self, signer: Signer, handle: str) -> SignatureActivation:
        with self.db.session() as s:
            row = s.get(SignatureActivation, handle) if 0 < len(handle or "") <= 36 else None
            if row is not None:
                s.expunge(row)
        if row is None or row.tenant_id != signer.tenant_id or row.user_id != signer.user_id:
            raise SadError("invalid_request", "unknown authorization handle")
        return row

    def _refuse(self, signer: Signer, row: SignatureActivation | None, identity_id: str, code: str,
                message: str, status: int = 400) -> SadError:
        self.audit.append("scal2.refused", actor=signer.user_id, tenant_id=signer.tenant_id, subject=identity_id,
                          details={"reason": code, "activation": row.id if row else None})
        return SadError(code, message, status)

    def _usable(self, signer: Signer, row: SignatureActivation, identity_id: str, now: datetime) -> None:
        if row.identity_id != identity_id:
            raise self._refuse(signer, row, identity_id, "credential_mismatch",
                               "the SAD was issued for another credential")
        if row.status != "active":
            raise self._refuse(signer, row, identity_id, "sad_used",
                               "the SAD has been used up" if row.status == "spent" else "the SAD is no longer valid")
        if aware(row.expires_at) <= now:
            raise self._refuse(signer, row, identity_id, "sad_expired", "SAD expired")

    def spend(self, signer: Signer, sad: str, identity_id: str, digests: Digests) -> TokenInfo:
        """Take ``digests`` (signed by one call) out of what the SAD authorizes, or refuse; returns
        the one-shot signing token, bound to exactly these digests, the signature spends."""
        digests.check(self.multisign)
        for _ in range(_SPEND_RETRIES):
            now = _now()
            row = self._by_sad(signer, sad)
            self._usable(signer, row, identity_id, now)
            n = len(digests.values)
            if row.used + n > row.allowed:
                raise self._refuse(signer, row, identity_id, "too_many_signatures",
                                   f"the SAD authorizes {row.allowed - row.used} more signature(s), not {n}")
            used = json.loads(row.used_digests)
            if row.digests is not None:
                if digests.hash_name != row.hash_name:
                    raise self._refuse(signer, row, identity_id, "hash_not_authorized",
                                       "Hash is not authorized by the SAD")
                left = Counter(json.loads(row.digests)) - Counter(used)
                wanted = Counter(v.hex() for v in digests.values)
                if wanted - left:
                    raise self._refuse(signer, row, identity_id, "hash_not_authorized",
                                       "Hash is not authorized by the SAD")
                used = used + [v.hex() for v in digests.values]
            total = row.used + n
            with self.db.session() as s:
                done = s.execute(update(SignatureActivation)
                                 .where(SignatureActivation.id == row.id, SignatureActivation.version == row.version,
                                        SignatureActivation.status == "active")
                                 .values(used=total, used_digests=json.dumps(used), version=row.version + 1,
                                         status="spent" if total >= row.allowed else "active")).rowcount
            if done == 1:
                return self._signing_token(signer, row, digests)
        raise SadError("sad_busy", "the SAD is being used by concurrent calls; try again", 409)

    def _signing_token(self, signer: Signer, row: SignatureActivation, digests: Digests) -> TokenInfo:
        issued = self.tenants.issue_user_token(
            signer.tenant_id, AUTH_SERVER, USE_SERVER, user_id=signer.user_id, ttl=60,
            sign_identity_id=row.identity_id, digests_summary=digests_summary(list(digests.values), digests.hash_name),
            digests_summary_algorithm=digests.hash_name, digest_types=" ".join([digests.hash_name] * len(digests.values)),
            grant=f"sad:{row.id}")
        token = self.tenants.by_hash(hash_of(issued.access_token))
        assert token is not None
        return token

    def extend(self, signer: Signer, sad: str, identity_id: str, digests: Digests | None) -> Authorized:
        """A fresh SAD for what the old one still authorizes (all of it, or the ``digests`` named,
        which must be among its unsigned ones); the old SAD stops working."""
        now = _now()
        row = self._by_sad(signer, sad)
        self._usable(signer, row, identity_id, now)
        if aware(row.transaction_ends_at) <= now:
            raise self._refuse(signer, row, identity_id, "sad_expired", "the transaction cannot be extended any more")
        left_digests: list[str] | None = None
        if row.digests is not None:
            left = Counter(json.loads(row.digests)) - Counter(json.loads(row.used_digests))
            if digests is not None:
                digests.check(self.multisign)
                wanted = Counter(v.hex() for v in digests.values)
                if digests.hash_name != row.hash_name or wanted - left:
                    raise self._refuse(signer, row, identity_id, "hash_not_authorized",
                                       "Hash is not authorized by the SAD")
                left = wanted
            left_digests = list(left.elements())
        remaining = len(left_digests) if left_digests is not None else row.allowed - row.used
        new_sad = secrets.token_urlsafe(32)
        expires = min(now + timedelta(seconds=self.ttl), aware(row.transaction_ends_at))
        new = SignatureActivation(
            id=str(uuid.uuid4()), sad_hash=_sad_hash(new_sad), tenant_id=row.tenant_id, user_id=row.user_id,
            identity_id=row.identity_id, status="active", factors=row.factors, hash_name=row.hash_name,
            digests=None if left_digests is None else json.dumps(left_digests), allowed=remaining, used=0,
            used_digests="[]", version=0, otp_failures=0, description=row.description, created_at=now,
            expires_at=expires, transaction_ends_at=row.transaction_ends_at)
        with self.db.session() as s:
            done = s.execute(update(SignatureActivation)
                             .where(SignatureActivation.id == row.id, SignatureActivation.version == row.version,
                                    SignatureActivation.status == "active")
                             .values(status="replaced", version=row.version + 1)).rowcount
            if done != 1:
                s.rollback()
                raise SadError("sad_used", "the SAD was used or extended meanwhile", 409)
            s.add(new)
        self.audit.append("sad.extended", actor=signer.user_id, tenant_id=signer.tenant_id, subject=row.identity_id,
                          details={"activation": new.id, "replaces": row.id, "signatures": remaining})
        return Authorized(new.id, new_sad, int((expires - now).total_seconds()))

    def sweep(self) -> int:
        """Forget activations a day after they expired."""
        with self.db.session() as s:
            return s.execute(delete(SignatureActivation)
                             .where(SignatureActivation.expires_at < _now() - timedelta(days=1))).rowcount or 0

