"""Sign identities: a key in the key store plus its certificate, owned by one end user, and the
signing PIN that protects it (SCAL2's knowledge factor).

Wrong PINs count down; when none are left the identity locks for the next step of an escalating
schedule (15 minutes, an hour, a day by default), and after the last step for good, until the user
chooses a new PIN through their own channel (``core.activation``) or the operator resets it. A
successful PIN starts both the count and the escalation afresh.
The PIN is the signer's: a relying party never sets it (the facades refuse it).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from asn1crypto import x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from remotesign.storage.audit import AuditLog
from remotesign.core.errors import CoreError
from remotesign.keystore.kdf import DEFAULT_LOG2_N, hash_secret, verify_secret
from remotesign.core.tenants import TokenInfo
from remotesign.core.throttle import lock_duration
from remotesign.core.users import UserInfo, owner_named
from remotesign.keystore import KeyStore
from remotesign.keystore.base import KeyAlgorithm, KeyStoreError
from remotesign.storage.db import Database
from remotesign.storage import text_search
from remotesign.storage.models import CertificateRecord, EndUser, SignIdentity
from remotesign.trust.ca import CertificateAuthority
from remotesign.storage.times import aware as _aware

NATURAL_LABELS = ("serverid", "x509:keyUsage:contentCommitment")
LEGAL_LABELS = ("qsealc", "x509:keyUsage:contentCommitment")
# The authentication identity an eParaksts mobile user has beside the signing one: clients pick it
# by these labels and description for finalizeSigning's authCertificate.
AUTH_LABELS = ("mobileid", "x509:keyUsage:digitalSignature")
AUTH_DESCRIPTION = "eparaksts:mobileid:auth"
MAX_LABELS = 32
PIN_MIN, PIN_MAX = 4, 64


class IdentityError(CoreError):
    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(code, message, status)


class PinRefused(IdentityError):
    """Wrong PIN (``remaining`` tries left) or a locked identity (``locked_until``)."""

    def __init__(self, code: str, message: str, remaining: int = 0, locked_until: datetime | None = None) -> None:
        super().__init__(code, message, status=403)
        self.remaining = remaining
        self.locked_until = locked_until


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the operator (both None), a relying party with a client token (its own
    users), or an authorization-code token (one user)."""

    tenant_id: str | None
    user_id: str | None = None

    @classmethod
    def of(cls, token: TokenInfo) -> Viewer:
        return cls(token.tenant_id, token.user_id)


@dataclass(frozen=True)
class IdentityInfo:
    id: str
    user_id: str
    user_tenant_id: str | None
    key_id: str
    certificate_der: bytes
    chain_der: tuple[bytes, ...]
    description: str
    labels: tuple[str, ...]
    domain: str
    status: str
    status_reason: str | None
    has_pin: bool
    pin_failures: int
    pin_locked_until: datetime | None
    created_at: datetime
    pin_lock_level: int = 0

    def pin_blocked(self, schedule: tuple[int, ...]) -> bool:
        """Locked for good (the last step of ``schedule`` was used up)."""
        return self.pin_lock_level > len(schedule)

    def pin_locked(self, schedule: tuple[int, ...], now: datetime | None = None) -> bool:
        now = now or datetime.now(timezone.utc)
        return self.pin_blocked(schedule) or (self.pin_locked_until is not None and self.pin_locked_until > now)

    def certificate(self) -> cx509.Certificate:
        return cx509.load_der_x509_certificate(self.certificate_der)

    def active(self, now: datetime | None = None) -> bool:
        """Enabled, with a certificate valid now: what a relying party may offer the user."""
        if self.status != "enabled":
            return False
        cert = self.certificate()
        now = now or datetime.now(timezone.utc)
        return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc

    def esigp_json(self, base_url: str, *, details: bool = False) -> dict[str, Any]:
        """TrustedX eSigP representation of the identity (``details`` only for single reads)."""
        scope_server = "urn:safelayer:eidas:sign:identity:use:server"
        scope_device = "urn:safelayer:eidas:sign:identity:use:device"
        out: dict[str, Any] = {
            "id": self.id,
            "self": f"{base_url}/trustedx-resources/esigp/v1/sign_identities/{self.id}",
            "description": self.description,
            "labels": list(self.labels),
            "type": "pki:x509",
            "domain": self.domain,
            "access": [{"user_id": self.user_id, "permissions": ["sign"]}],
            "links": {
                "Signatures.create.server.raw": {"auth": {"oauth2": {"scopes": [scope_server]}}},
                "Signatures.create.device.raw": {"auth": {"oauth2": {"scopes": [scope_device]}}},
            },
            "status": {"value": self.status, **({"reason": self.status_reason} if self.status_reason else {})},
        }
        if details:
            cert = self.certificate()
            out["details"] = {
                "certificate": base64.b64encode(self.certificate_der).decode(),
                "certificate_chain": [base64.b64encode(c).decode() for c in self.chain_der],
                "public_key": base64.b64encode(cert.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode(),
                "activation_mode": "pin" if self.has_pin else "none",
                "subject": cert.subject.rfc4514_string(),
                "issuer": cert.issuer.rfc4514_string(),
                "serial_number": format(cert.serial_number, "x"),
                "not_before": cert.not_valid_before_utc.isoformat(),
                "not_after": cert.not_valid_after_utc.isoformat(),
            }
        return out



def _split_chain(blob: bytes) -> tuple[bytes, ...]:
    out, rest = [], blob
    while rest:
        cert = x509.Certificate.load(rest)
        size = len(cert.dump())
        out.append(rest[:size])
        rest = rest[size:]
    return tuple(out)


def _info(r: SignIdentity, owner_tenant: str | None) -> IdentityInfo:
    return IdentityInfo(id=r.id, user_id=r.user_id, user_tenant_id=owner_tenant, key_id=r.key_id,
                        certificate_der=r.certificate_der, chain_der=_split_chain(r.chain_der or b""),
                        description=r.description, labels=tuple(x for x in r.labels.split() if x), domain=r.domain,
                        status=r.status, status_reason=r.status_reason, has_pin=r.pin_hash is not None,
                        pin_failures=r.pin_failures, pin_locked_until=_aware(r.pin_locked_until),
                        created_at=_aware(r.created_at) or r.created_at, pin_lock_level=r.pin_lock_level or 0)


def check_labels(labels: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    clean = tuple(dict.fromkeys(labels))
    if len(clean) > MAX_LABELS or any(not x or len(x) > 100 or any(c.isspace() for c in x) for x in clean):
        raise IdentityError("invalid_labels", f"at most {MAX_LABELS} labels of 1-100 characters without spaces")
    return clean


def check_pin(pin: str) -> None:
    if not (PIN_MIN <= len(pin) <= PIN_MAX):
        raise IdentityError("invalid_pin", f"a PIN has {PIN_MIN} to {PIN_MAX} characters")


def _subject(user: UserInfo, country: str | None, profile: str) -> x509.Name:
    """The subject of a certificate for the user: the instance's country (none if it has none) and
    the user's serial number (organization identifier). A user without one gets none, and a profile
    that needs one is refused: an identifier is never made up (EN 319 412-1 §5.1.3: it names the
    person in a register)."""
    from remotesign.trust.ca import subject_from_text
    from remotesign.trust.profiles import ORG_IDENTIFIER, SERIAL_NUMBER, get_profile

    def esc(v: str) -> str:
        return cx509.NameAttribute(cx509.NameOID.COMMON_NAME, v).rfc4514_string()[3:]

    needs = get_profile(profile).required_subject
    legal = user.kind == "legal"
    attribute = "ORGANIZATIONIDENTIFIER" if legal else "SERIALNUMBER"
    identifier = user.serial_number
    if not identifier and (ORG_IDENTIFIER if legal else SERIAL_NUMBER) in needs:
        example = "NTRLV-40003000000" if legal else "PNOLV-010101-12345"
        raise IdentityError("missing_serial_number",
                            f"user {user.username} has no serial number, which a {profile} certificate needs "
                            f"({attribute}, e.g. {example}); give the user one, or choose a profile without it")
    if not country and "country_name" in needs:
        raise IdentityError("missing_country", f"a {profile} certificate needs a country (C) and this instance has "
                                               "none (it was initialised with --country none)")
    parts = [f"CN={esc(user.display_name)}"] + ([f"O={esc(user.display_name)}"] if legal else [])
    parts += [f"{attribute}={esc(identifier)}"] if identifier else []
    parts += [f"C={country}"] if country else []
    return subject_from_text(",".join(parts))


class IdentityService:
    def __init__(self, db: Database, keystore: KeyStore, ca: CertificateAuthority, audit: AuditLog, *,
                 pin_max_attempts: int = 3, pin_lock_schedule: tuple[int, ...] = (900, 3600, 86400),
                 kdf_log2_n: int = DEFAULT_LOG2_N, country: str | None = "LV") -> None:
        self.db = db
        self.keystore = keystore
        self.ca = ca
        self.audit = audit
        self.pin_max_attempts = pin_max_attempts
        self.pin_lock_schedule = pin_lock_schedule
        self.kdf_log2_n = kdf_log2_n
        self.country = country

    # -- enrolment -------------------------------------------------------------------------------
    def create(self, user: UserInfo, *, algorithm: KeyAlgorithm = KeyAlgorithm.RSA_2048,
               labels: list[str] | None = None, pin: str | None = None, description: str | None = None,
               profile: str | None = None, domain: str = "citizen", actor: str = "operator") -> IdentityInfo:
        """A new key in the key store and a certificate for it from the built-in CA (a qualified
        profile needs the user's serial number: see ``_subject``)."""
        if pin is not None:
            check_pin(pin)
        chosen = check_labels(labels if labels is not None else
                              (LEGAL_LABELS if user.kind == "legal" else NATURAL_LABELS))
        profile = profile or ("qualified-seal" if user.kind == "legal" else "qualified-person")
        created = self._issue(user, algorithm, profile, chosen, pin,
                              description or ("eparaksts:qsealc:sign" if user.kind == "legal"
                                              else "eparaksts:serverid:sign"), domain, actor)
        if labels is None and user.kind == "natural" and not any(
                i.description == AUTH_DESCRIPTION for i in self.list(Viewer(None, user.id))):
            self._issue(user, algorithm, "person-auth", AUTH_LABELS, pin, AUTH_DESCRIPTION, domain, actor)
        return created

    def create_for_subject(self, user: UserInfo, subject: x509.Name, *, profile: str, validity: timedelta,
                           algorithm: KeyAlgorithm = KeyAlgorithm.RSA_2048, pin: str, labels: tuple[str, ...],
                           description: str, actor: str) -> IdentityInfo:
        """An identity whose certificate names ``subject`` (the signer's registered details) and
        lasts ``validity``: a certificate product sold under a contract (core/agreements.py)."""
        check_pin(pin)
        return self._issue(user, algorithm, profile, check_labels(labels), pin, description, "citizen", actor,
                           subject=subject, validity=validity)

    def _issue(self, user: UserInfo, algorithm: KeyAlgorithm, profile: str, labels: tuple[str, ...],
               pin: str | None, description: str, domain: str, actor: str, *, subject: x509.Name | None = None,
               validity: timedelta | None = None) -> IdentityInfo:
        subject = subject or _subject(user, self.country, profile)  # refusals before the key
        key = self.keystore.create_identity_key(algorithm, f"identity:{user.username}", user.tenant_id)
        cert = self.ca.issue(subject=subject, public_key_der=key.public_key_der,
                             profile_name=profile, tenant_id=user.tenant_id, key_id=key.id, validity=validity)
        chain = b"".join(c.der for c in reversed(self.ca.chain()))
        return self._save(user, key.id, cert.der, chain, cert.id, labels, pin, description, domain, actor,
                          {"algorithm": algorithm.value, "profile": profile})

    def rekey(self, identity_id: str, subject: x509.Name, *, profile: str, validity: timedelta | None = None,
              not_after: datetime | None = None, algorithm: KeyAlgorithm | None = None,
              actor: str) -> IdentityInfo:
        """A new key and certificate for the identity (changed details, a renewal): the old
        certificate is revoked as superseded and the old key destroyed, so exactly one key and one
        valid certificate stand for the identity at any time. The PIN and its state stay."""
        info = self.get(identity_id, Viewer(None))
        old_key = self.keystore.identity_key(info.key_id, info.user_tenant_id)
        key = self.keystore.create_identity_key(algorithm or old_key.algorithm, old_key.label, info.user_tenant_id)
        cert = self.ca.issue(subject=subject, public_key_der=key.public_key_der, profile_name=profile,
                             tenant_id=info.user_tenant_id, key_id=key.id, validity=validity, not_after=not_after)
        chain = b"".join(c.der for c in reversed(self.ca.chain()))
        with self.db.session() as s:
            rec = s.get(SignIdentity, identity_id, with_for_update=True)
            assert rec is not None
            old_cert_id = rec.certificate_id
            rec.key_id, rec.certificate_id, rec.certificate_der, rec.chain_der = key.id, cert.id, cert.der, chain
            owner = s.get(EndUser, rec.user_id)
            updated = _info(rec, owner.tenant_id if owner else None)
        self.audit.append("identity.rekeyed", actor=actor, tenant_id=info.user_tenant_id, subject=identity_id,
                          details={"old_key_id": old_key.id, "key_id": key.id, "certificate_id": cert.id,
                                   "profile": profile})
        self._retire(old_cert_id, old_key, "superseded", actor)
        return updated

    def retire(self, identity_id: str, *, reason: str, actor: str) -> IdentityInfo:
        """End the identity for good: its certificate revoked (``reason``), its key destroyed, its
        status disabled. Nothing can sign with it afterwards."""
        info = self.update(identity_id, Viewer(None), status="disabled", reason="retired", actor=actor)
        with self.db.session() as s:
            rec = s.get(SignIdentity, identity_id)
            cert_id = rec.certificate_id if rec is not None else None
        self._retire(cert_id, self.keystore.identity_key(info.key_id, info.user_tenant_id), reason, actor)
        return info

    def _retire(self, cert_id: str | None, key: Any, reason: str, actor: str) -> None:
        cert = self.ca.get_any(cert_id) if cert_id else None
        if cert is not None and cert.revoked_at is None:
            self.ca.revoke(cert, reason, actor=actor)
        try:
            self.keystore.destroy(key, actor=actor)
        except KeyStoreError:
            pass  # already gone

    def import_pkcs12(self, user: UserInfo, data: bytes, password: bytes | None, *, labels: list[str] | None = None,
                      pin: str | None = None, description: str | None = None, domain: str = "citizen",
                      actor: str = "operator") -> IdentityInfo:
        """An identity from a PKCS#12 (private key + certificate [+ chain]); the key moves into the key store."""
        if pin is not None:
            check_pin(pin)
        chosen = check_labels(labels if labels is not None else list(NATURAL_LABELS))
        try:
            private_key, cert, extra = pkcs12.load_key_and_certificates(data, password)
        except (ValueError, TypeError) as exc:
            raise IdentityError("invalid_pkcs12", "the PKCS#12 cannot be read (damaged or wrong password)") from exc
        if private_key is None or cert is None:
            raise IdentityError("invalid_pkcs12", "the PKCS#12 must hold a private key and its certificate")
        if not isinstance(private_key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise IdentityError("unsupported_key", "only RSA and EC keys can be imported")
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        if private_key.public_key().public_bytes(serialization.Encoding.DER, spki) != \
                cert.public_key().public_bytes(serialization.Encoding.DER, spki):
            raise IdentityError("key_mismatch", "the certificate does not belong to the private key")
        try:
            key = self.keystore.import_identity_key(private_key, f"identity:{user.username}", user.tenant_id)
        except KeyStoreError as exc:
            raise IdentityError("unsupported_key", str(exc)) from exc
        chain = b"".join(c.public_bytes(serialization.Encoding.DER) for c in (extra or []))
        return self._save(user, key.id, cert.public_bytes(serialization.Encoding.DER), chain, None, chosen, pin,
                          description or "imported", domain, actor, {"imported": True})

    def _save(self, user: UserInfo, key_id: str, cert_der: bytes, chain: bytes, cert_id: str | None,
              labels: tuple[str, ...], pin: str | None, description: str, domain: str, actor: str,
              details: dict[str, Any]) -> IdentityInfo:
        rec = SignIdentity(id=str(uuid.uuid4()), user_id=user.id, key_id=key_id, certificate_id=cert_id,
                           certificate_der=cert_der, chain_der=chain, description=description[:200],
                           labels=" ".join(labels), domain=domain[:60], status="enabled",
                           pin_hash=hash_secret(pin, self.kdf_log2_n) if pin is not None else None,
                           pin_failures=0, pin_lock_level=0, created_at=datetime.now(timezone.utc))
        with self.db.session() as s:
            if rec.pin_hash is None:  # the PIN the user chose at activation, if any
                owner = s.get(EndUser, user.id)
                rec.pin_hash = owner.pin_hash if owner is not None else None
            s.add(rec)
        self.audit.append("identity.created", actor=actor, tenant_id=user.tenant_id, subject=rec.id,
                          details={"user_id": user.id, "labels": list(labels), **details})
        return _info(rec, user.tenant_id)

    # -- reading ---------------------------------------------------------------------------------
    def _query(self, viewer: Viewer) -> Any:
        q = select(SignIdentity, EndUser.tenant_id).join(EndUser, EndUser.id == SignIdentity.user_id)
        if viewer.user_id is not None:
            q = q.where(SignIdentity.user_id == viewer.user_id)
        elif viewer.tenant_id is not None:
            q = q.where(EndUser.tenant_id == viewer.tenant_id)
        return q

    def get(self, identity_id: str, viewer: Viewer, *, session: Session | None = None) -> IdentityInfo:
        """The identity if ``viewer`` may see it; read in ``session`` when given (the caller's transaction)."""
        if session is not None:
            return self._get(session, identity_id, viewer)
        with self.db.session() as s:
            return self._get(s, identity_id, viewer)

    def _get(self, s: Session, identity_id: str, viewer: Viewer) -> IdentityInfo:
        row = s.execute(self._query(viewer).where(SignIdentity.id == identity_id)).first()
        if row is None:
            raise IdentityError("not_found", f"no sign identity {identity_id}", status=404)
        return _info(row[0], row[1])

    def list(self, viewer: Viewer, *, user_id: str | None = None, labels: list[str] | None = None,
             domain: str | None = None) -> list[IdentityInfo]:
        """Identities the viewer may see, filtered; every given label must be present."""
        with self.db.session() as s:
            q = self._query(viewer).order_by(SignIdentity.created_at)
            if user_id is not None:
                q = q.where(SignIdentity.user_id == user_id)
            if domain is not None:
                q = q.where(SignIdentity.domain == domain)
            found = [_info(r, t) for r, t in s.execute(q)]
        wanted = set(labels or ())
        return [i for i in found if wanted <= set(i.labels)]

    SEARCH_STATES = ("locked", "pin_locked", "disabled")

    def search(self, viewer: Viewer, *, text: str | None = None, state: str | None = None, offset: int = 0,
               limit: int = 100, now: datetime | None = None) -> tuple[list[IdentityInfo], int]:
        """One page of the identities the viewer may see, newest first, and how many match in all,
        filtered in SQL.

        ``text`` (case-insensitive, ``%`` and ``_`` literal) is looked for in the identity's id,
        description and labels, its user's name, the owner's name (``SERVICE_WIDE`` for users no
        relying party owns), and the subject and hex serial of its certificate as the built-in CA
        recorded them: the subject in RFC 4514 form with OIDs for the names ``cryptography`` does
        not abbreviate (``2.5.4.5=PNOLV-…``, not ``serialNumber=``). An imported identity
        (PKCS#12) has no certificate record: its subject and serial are not searched.

        ``state``: ``locked`` — a PIN lock in force now or for good, or wrong PINs counted (what
        the operator may unlock); ``pin_locked`` — a lock in force now or for good only;
        ``disabled`` — not enabled. ``limit`` 0 only counts."""
        if state is not None and state not in self.SEARCH_STATES:
            raise IdentityError("invalid_state", f"state is one of {', '.join(self.SEARCH_STATES)}")
        q = (self._query(viewer).outerjoin(CertificateRecord, CertificateRecord.id == SignIdentity.certificate_id)
             .order_by(SignIdentity.created_at.desc(), SignIdentity.id.desc()))
        wanted = text_search.needle(text)
        if wanted is not None:
            serial = wanted.removeprefix("0x").replace(":", "")
            q = q.where(or_(text_search.any_contains(wanted, SignIdentity.id, SignIdentity.description,
                                                     SignIdentity.labels, EndUser.username, CertificateRecord.subject),
                            text_search.contains(CertificateRecord.serial_hex, serial),
                            owner_named(EndUser.tenant_id, wanted)))
        if state in ("locked", "pin_locked"):
            in_force = or_(SignIdentity.pin_lock_level > len(self.pin_lock_schedule),
                           SignIdentity.pin_locked_until > (now or datetime.now(timezone.utc)))
            q = q.where(or_(in_force, SignIdentity.pin_failures > 0) if state == "locked" else in_force)
        elif state == "disabled":
            q = q.where(SignIdentity.status != "enabled")
        with self.db.session() as s:
            rows, total = text_search.page(s, q, offset, limit)
            return [_info(r[0], r[1]) for r in rows], total

    # -- administration --------------------------------------------------------------------------
    def update(self, identity_id: str, viewer: Viewer, *, status: str | None = None, reason: str | None = None,
               labels: list[str] | None = None, pin: str | None = None, actor: str = "operator") -> IdentityInfo:
        """Enable / disable, relabel, or set a new PIN (which also lifts a PIN lock)."""
        if status is not None and status not in ("enabled", "disabled"):
            raise IdentityError("invalid_status", "status is enabled or disabled")
        new_labels = check_labels(labels) if labels is not None else None
        if pin is not None:
            check_pin(pin)
        self.get(identity_id, viewer)
        changed = []
        with self.db.session() as s:
            rec = s.get(SignIdentity, identity_id)
            assert rec is not None
            if status is not None:
                rec.status, rec.status_reason = status, (reason or None) if status == "disabled" else None
                changed.append(status)
            if new_labels is not None:
                rec.labels = " ".join(new_labels)
                changed.append("labels")
            if pin is not None:
                rec.pin_hash = hash_secret(pin, self.kdf_log2_n)
                rec.pin_failures, rec.pin_locked_until, rec.pin_lock_level = 0, None, 0
                changed.append("pin")
            owner = s.get(EndUser, rec.user_id)
            info = _info(rec, owner.tenant_id if owner else None)
        self.audit.append("identity.updated", actor=actor, tenant_id=info.user_tenant_id, subject=identity_id,
                          details={"changed": changed})
        return info

    def unlock_pin(self, identity_id: str, *, actor: str) -> IdentityInfo:
        """The operator lifts a PIN lock (also one for good) without learning or setting the PIN:
        the tries start afresh with the PIN the user chose."""
        with self.db.session() as s:
            rec = s.get(SignIdentity, identity_id, with_for_update=True)
            if rec is None:
                raise IdentityError("not_found", f"no sign identity {identity_id}", status=404)
            was = {"lock_level": rec.pin_lock_level or 0, "failures": rec.pin_failures or 0,
                   "locked_until": rec.pin_locked_until.isoformat() if rec.pin_locked_until else None}
            rec.pin_failures, rec.pin_locked_until, rec.pin_lock_level = 0, None, 0
            owner = s.get(EndUser, rec.user_id)
            info = _info(rec, owner.tenant_id if owner else None)
        self.audit.append("identity.unlocked", actor=actor, tenant_id=info.user_tenant_id, subject=identity_id,
                          details=was)
        return info

    def delete(self, identity_id: str, viewer: Viewer, actor: str = "operator") -> None:
        """Removes the identity and destroys its private key; the key record keeps the public half
        for the audit trail."""
        info = self.get(identity_id, viewer)
        with self.db.session() as s:
            rec = s.get(SignIdentity, identity_id)
            if rec is not None:
                s.delete(rec)
        try:
            self.keystore.destroy(self.keystore.identity_key(info.key_id, info.user_tenant_id), actor=actor)
        except KeyStoreError:
            pass  # already gone
        self.audit.append("identity.deleted", actor=actor, tenant_id=info.user_tenant_id, subject=identity_id,
                          details={"user_id": info.user_id})

    def set_user_pin(self, user_id: str, pin_hash: str, *, actor: str, tenant_id: str | None) -> int:
        """The user's own new PIN (activation or reset through their channel) on every identity
        they hold; lifts every PIN lock. Returns how many identities changed."""
        with self.db.session() as s:
            rows = s.scalars(select(SignIdentity).where(SignIdentity.user_id == user_id)).all()
            for rec in rows:
                rec.pin_hash = pin_hash
                rec.pin_failures, rec.pin_locked_until, rec.pin_lock_level = 0, None, 0
            ids = [r.id for r in rows]
        for identity_id in ids:
            self.audit.append("identity.updated", actor=actor, tenant_id=tenant_id, subject=identity_id,
                              details={"changed": ["pin"], "by": "user"})
        return len(ids)

    # -- sole control ----------------------------------------------------------------------------
    def verify_pin(self, identity_id: str, pin: str, *, actor: str, tenant_id: str | None) -> None:
        """Check the signing PIN; raises PinRefused with the tries left or the lock's end.

        A try is reserved before the PIN is checked (the count goes up in the database, in a short
        transaction of its own), and given back only when the PIN was right: so concurrent tries
        can never check more PINs than the tries left, whatever their timing, and no write
        transaction is held while the slow hash is computed."""
        now = datetime.now(timezone.utc)
        with self.db.session() as s:
            rec = s.get(SignIdentity, identity_id)
            if rec is None:
                raise IdentityError("not_found", f"no sign identity {identity_id}", status=404)
            locked = _aware(rec.pin_locked_until)
            if rec.pin_lock_level > len(self.pin_lock_schedule):
                outcome, tried = "locked_permanently", None
            elif locked is not None and locked > now:
                outcome, tried = "locked", None
            else:
                if locked is not None:  # the lock ran out: a fresh round of tries
                    s.execute(update(SignIdentity).where(SignIdentity.id == identity_id,
                                                         SignIdentity.pin_locked_until == rec.pin_locked_until)
                              .values(pin_failures=0, pin_locked_until=None))
                s.execute(update(SignIdentity).where(SignIdentity.id == identity_id)
                          .values(pin_failures=SignIdentity.pin_failures + 1))
                s.refresh(rec)
                tried, pin_hash = rec.pin_failures, rec.pin_hash
                outcome = "check" if tried <= self.pin_max_attempts else "locked"
                locked = _aware(rec.pin_locked_until)
            level = rec.pin_lock_level
        if outcome == "check":
            right = pin_hash is not None and len(pin) <= PIN_MAX and verify_secret(pin, pin_hash)
            with self.db.session() as s:
                rec = s.get(SignIdentity, identity_id)
                assert rec is not None
                if right:
                    rec.pin_failures, rec.pin_lock_level, rec.pin_locked_until = 0, 0, None
                    outcome = "ok"
                elif tried == self.pin_max_attempts:  # this try used the last one: lock
                    rec.pin_lock_level += 1
                    seconds = lock_duration(self.pin_lock_schedule, rec.pin_lock_level)
                    locked = now + timedelta(seconds=seconds) if seconds is not None else None
                    rec.pin_locked_until = locked
                    outcome = "locked_now" if seconds is not None else "locked_permanently"
                else:
                    outcome = "wrong"
                level = rec.pin_lock_level
        remaining = max(0, self.pin_max_attempts - (tried or self.pin_max_attempts))
        if outcome == "ok":
            return
        self.audit.append("identity.pin_refused", actor=actor, tenant_id=tenant_id, subject=identity_id,
                          details={"reason": outcome, "remaining": remaining, "lock_level": level,
                                   "locked_until": locked.isoformat() if locked else None})
        if outcome == "locked_permanently":
            raise PinRefused("pin_blocked", "the PIN is blocked after too many wrong tries; choose a new one "
                             "through your reset link or ask the service operator", 0, None)
        if outcome in ("locked", "locked_now"):
            raise PinRefused("pin_locked", "the PIN is locked after too many wrong tries; try again later",
                             0, locked)
        raise PinRefused("pin_invalid", f"wrong PIN; {remaining} tries left", remaining)

    def check_usable(self, info: IdentityInfo, *, session: Session | None = None) -> None:
        """An identity signs only while it, its user and its certificate are in good standing;
        read in ``session`` when given (the caller's transaction)."""
        if info.status != "enabled":
            raise IdentityError("identity_disabled", f"sign identity {info.id} is disabled", status=403)
        if session is not None:
            user = session.get(EndUser, info.user_id)
        else:
            with self.db.session() as s:
                user = s.get(EndUser, info.user_id)
        if user is None or not user.enabled:
            raise IdentityError("user_disabled", "the identity's user is disabled", status=403)
        cert = info.certificate()
        now = datetime.now(timezone.utc)
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise IdentityError("certificate_expired", "the identity's certificate is not valid now", status=403)
        for issued in self.ca.find_by_serial(cert.serial_number, session=session):
            if issued.der == info.certificate_der and issued.revoked_at is not None:
                raise IdentityError("certificate_revoked", "the identity's certificate is revoked", status=403)
