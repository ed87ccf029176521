"""Agreements: a relying party's contract for one signer, with the certificate the built-in CA
issues for it and its whole life (vendor-neutral; the Remote Signing (VN) facade speaks it).

Registering an agreement creates the signer (an end user of the relying party), a key in the key
store and a certificate naming the signer's registered details under a certificate *product* (a
CA profile and a validity). The signer's *passcode* is the identity's signing PIN: the service
makes the first one and sends it to the owner's own address (e-mail or SMS), never to the
relying party, and asks for a new one to be chosen (``passcode_must_change``) until it is.

Who may use an agreement (``shared_mode``):

* ``private`` - only the relying party that registered it;
* ``relying_party`` - another relying party may register a *shared* agreement naming it (and
  this relying party): an agreement of its own on the same key, certificate and passcode;
* ``agreement`` - the same, but only for agreements of the same relying party.

A shared agreement can sign (with the owner's passcode or a code sent to the owner's addresses,
which it cannot change) but not manage the certificate: change, renewal, revocation, enabling and
disabling belong to the agreement it shares. Another relying party's agreement is unknown.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from remotesign.core.errors import CoreError
from remotesign.core.identities import IdentityError, IdentityInfo, IdentityService, PinRefused, Viewer, check_pin
from remotesign.core.operations import abandoned
from remotesign.core.users import UserService
from remotesign.keystore.base import KeyAlgorithm
from remotesign.keystore.kdf import hash_secret
from remotesign.notify.outbox import NoChannel, Outbox
from remotesign.storage.audit import AuditLog
from remotesign.storage.blobs import BlobStore
from remotesign.storage.db import Database
from remotesign.storage.models import Agreement, SigningTransaction
from remotesign.storage.times import aware

SHARED_MODES = ("private", "relying_party", "agreement")
CHANNELS = ("email", "sms")
PASSCODE_DIGITS = 8
PASSCODE_PLACEHOLDER = "{Passcode}"
MAX_TEMPLATE = 1000
UID = x509.ObjectIdentifier("0.9.2342.19200300.100.1.1")
ORG_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}")
_PHONE = re.compile(r"\+?[0-9 ()-]{4,20}")
_REFERENCE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class AgreementError(CoreError):
    """A refused agreement operation; ``code`` says why (the facade maps it to its wire codes)."""

    def __init__(self, code: str, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(code, message, status)
        self.extra = extra


@dataclass(frozen=True)
class CertificateProduct:
    """What a certificate product code stands for: the CA profile, its validity, and whether it
    certifies a natural person (possibly of an organization) or a legal person."""

    name: str
    ca_profile: str
    validity: timedelta
    kind: str  # natural | legal
    algorithm: KeyAlgorithm = KeyAlgorithm.RSA_2048


@dataclass(frozen=True)
class SignerDetails:
    """The signer's registered details; the certificate's subject is made from them."""

    name: str = ""
    organization: str = ""
    organization_unit: str = ""
    title: str = ""
    email: str = ""
    phone: str = ""
    locality: str = ""
    state: str = ""
    country: str = "VN"
    personal_id: str = ""
    passport_id: str = ""
    citizen_id: str = ""
    tax_id: str = ""
    budget_id: str = ""

    # what stands for the signer: never changed once registered
    IMMUTABLE = ("personal_id", "passport_id", "tax_id", "budget_id")
    IDENTIFIERS = ("personal_id", "passport_id", "citizen_id", "tax_id", "budget_id")

    @classmethod
    def from_json(cls, text: str) -> SignerDetails:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def check(self) -> None:
        if not self.name.strip():
            raise AgreementError("invalid_details", "the signer's name is required")
        if not re.fullmatch(r"[A-Za-z]{2}", self.country):
            raise AgreementError("invalid_details", "country is a two-letter code")
        for f in fields(self):
            value = getattr(self, f.name)
            if len(value) > (32 if f.name in self.IDENTIFIERS else 200):
                raise AgreementError("invalid_details", f"{f.name} is too long")
            if any(ord(c) < 32 for c in value):
                raise AgreementError("invalid_details", f"{f.name} holds control characters")

    def subject(self, kind: str) -> asn1_x509.Name:
        """The certificate subject: CN, the organization, the place, and the identifiers in the
        forms Vietnamese relying parties read (UID ``CMND:``/``CCCD:``/``HC:``/``MST:``/``MNS:``)
        plus the ETSI EN 319 412-1 semantics identifier a qualified profile requires."""
        c = self.country.upper()
        attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, c)]
        for oid, value in ((NameOID.STATE_OR_PROVINCE_NAME, self.state), (NameOID.LOCALITY_NAME, self.locality),
                           (NameOID.ORGANIZATION_NAME, self.organization),
                           (NameOID.ORGANIZATIONAL_UNIT_NAME, self.organization_unit), (NameOID.TITLE, self.title)):
            if value.strip():
                attrs.append(x509.NameAttribute(oid, value.strip()))
        for prefix, value in (("CCCD", self.citizen_id), ("CMND", self.personal_id), ("HC", self.passport_id),
                              ("MST", self.tax_id), ("MNS", self.budget_id)):
            if value.strip():
                attrs.append(x509.NameAttribute(UID, f"{prefix}:{value.strip()}"))
        if kind == "legal":
            if not self.organization.strip():
                attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.name.strip()))
            org_id = (f"VAT{c}-{self.tax_id.strip()}" if self.tax_id.strip()
                      else f"NTR{c}-{(self.budget_id or self.personal_id or uuid.uuid4().hex[:12]).strip()}")
            attrs.append(x509.NameAttribute(ORG_IDENTIFIER, org_id))
        else:
            person = ((f"IDC{c}-{self.citizen_id.strip()}" if self.citizen_id.strip() else "")
                      or (f"IDC{c}-{self.personal_id.strip()}" if self.personal_id.strip() else "")
                      or (f"PAS{c}-{self.passport_id.strip()}" if self.passport_id.strip() else "")
                      or f"TIN{c}-{(self.tax_id or uuid.uuid4().hex[:12]).strip()}")
            attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, person))
        if self.email.strip() and _EMAIL.fullmatch(self.email.strip()):
            attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, self.email.strip()))
        # an organization's certificate (an e-seal) is named after the organization
        common_name = (self.organization.strip() or self.name.strip()) if kind == "legal" else self.name.strip()
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        return asn1_x509.Name.load(x509.Name(attrs).public_bytes())


@dataclass(frozen=True)
class Contacts:
    """Where the owner receives passcodes (``owner_*``) and one-time codes (``otp_*``, else the
    owner's)."""

    owner_email: str | None = None
    owner_phone: str | None = None
    otp_email: str | None = None
    otp_phone: str | None = None
    passcode_channel: str = "email"

    def check(self) -> None:
        for value in (self.owner_email, self.otp_email):
            if value and not _EMAIL.fullmatch(value):
                raise AgreementError("invalid_contact", f"{value!r} is not an e-mail address")
        for value in (self.owner_phone, self.otp_phone):
            if value and not _PHONE.fullmatch(value):
                raise AgreementError("invalid_contact", f"{value!r} is not a phone number")
        if self.passcode_channel not in CHANNELS:
            raise AgreementError("invalid_contact", "the passcode goes by email or sms")

    def passcode_address(self) -> str | None:
        return self.owner_email if self.passcode_channel == "email" else self.owner_phone

    def otp_address(self, channel: str) -> str | None:
        if channel == "email":
            return self.otp_email or self.owner_email
        return self.otp_phone or self.owner_phone


@dataclass(frozen=True)
class AgreementInfo:
    id: str
    reference: str
    tenant_id: str
    user_id: str
    identity_id: str
    owner_reference: str
    shared_mode: str
    shared_from: str | None
    accepted_apps: tuple[str, ...]
    product: str
    details: SignerDetails
    contacts: Contacts
    passcode_must_change: bool
    status: str
    created_at: datetime

    @property
    def manages_certificate(self) -> bool:
        return self.shared_from is None


@dataclass(frozen=True)
class PasscodeOutcome:
    remaining: int


def _info(r: Agreement) -> AgreementInfo:
    return AgreementInfo(
        id=r.id, reference=r.reference, tenant_id=r.tenant_id, user_id=r.user_id or "",
        identity_id=r.sign_identity_id or "",
        owner_reference=r.owner_reference, shared_mode=r.shared_mode, shared_from=r.shared_from,
        accepted_apps=tuple(a for a in r.accepted_apps.split() if a), product=r.product,
        details=SignerDetails.from_json(r.subject),
        contacts=Contacts(r.owner_email, r.owner_phone, r.otp_email, r.otp_phone, r.passcode_channel),
        passcode_must_change=r.passcode_must_change, status=r.status, created_at=aware(r.created_at) or r.created_at)


def parse_products(text: str) -> dict[str, CertificateProduct]:
    """``CODE=kind:validity[:algorithm][,...]`` (kind ``natural`` or ``legal``; validity ``<n>y``,
    ``<n>d``, ``<n>h`` or ``<n>s``; key algorithm ``rsa-2048`` by default, or ``rsa-3072``,
    ``rsa-4096``, ``ec-p256``, ``ec-p384``) into certificate products, the first being the default.
    Natural persons get the qualified-person profile, legal persons the qualified-seal one."""
    products: dict[str, CertificateProduct] = {}
    units = {"y": 365 * 86400, "d": 86400, "h": 3600, "s": 1}
    for entry in (e.strip() for e in text.split(",") if e.strip()):
        name, _, spec = entry.partition("=")
        kind, _, rest = spec.partition(":")
        validity, _, algorithm = rest.partition(":")
        m = re.fullmatch(r"(\d{1,6})([ydhs])", validity.strip())
        if not name.strip() or kind not in ("natural", "legal") or m is None:
            raise ValueError(f"certificate product {entry!r}: expected CODE=natural|legal:<n>y|d|h|s[:algorithm]")
        try:
            key_algorithm = KeyAlgorithm(algorithm.strip() or KeyAlgorithm.RSA_2048.value)
        except ValueError as exc:
            raise ValueError(f"certificate product {entry!r}: unknown key algorithm {algorithm!r}") from exc
        products[name.strip()] = CertificateProduct(
            name.strip(), "qualified-seal" if kind == "legal" else "qualified-person",
            timedelta(seconds=int(m.group(1)) * units[m.group(2)]), kind, key_algorithm)
    if not products:
        raise ValueError("at least one certificate product is needed")
    return products


def new_passcode() -> str:
    return f"{secrets.randbelow(10 ** PASSCODE_DIGITS):0{PASSCODE_DIGITS}d}"


def fill(template: str | None, placeholder: str, code: str, default: str) -> str:
    """The caller's message template with the code in it (appended when the template forgot the
    placeholder, so the signer always gets the code)."""
    text = (template or default)[:MAX_TEMPLATE]
    return text.replace(placeholder, code) if placeholder in text else f"{text} {code}"


class AgreementService:
    def __init__(self, db: Database, audit: AuditLog, users: UserService, identities: IdentityService,
                 outbox: Outbox, blobs: BlobStore, products: dict[str, CertificateProduct], *, kdf_log2_n: int,
                 approval: str = "automatic", service_name: str = "remotesign",
                 now: Callable[[], datetime] | None = None) -> None:
        if approval not in ("automatic", "operator"):
            raise ValueError("agreement approval is automatic or operator")
        self.approval = approval
        self.db = db
        self.blobs = blobs
        self.audit = audit
        self.users = users
        self.identities = identities
        self.outbox = outbox
        self.products = products
        self.kdf_log2_n = kdf_log2_n
        self.service_name = service_name
        self._now = now or (lambda: datetime.now(timezone.utc))

    # -- finding ----------------------------------------------------------------------------------
    def get(self, tenant_id: str, reference: str) -> AgreementInfo:
        """The relying party's agreement ``reference``; another relying party's is unknown."""
        with self.db.session() as s:
            row = self._row(s, tenant_id, reference)
            return _info(row)

    def _row(self, s: Session, tenant_id: str, reference: str) -> Agreement:
        row = s.scalar(select(Agreement).where(Agreement.tenant_id == tenant_id, Agreement.reference == reference))
        if row is None:
            raise AgreementError("not_found", f"no agreement {reference}", 404)
        return row

    def identity(self, agreement: AgreementInfo) -> IdentityInfo:
        self._enrolled(agreement)
        return self.identities.get(agreement.identity_id, Viewer(None))

    @staticmethod
    def _enrolled(agreement: AgreementInfo) -> None:
        """Refuses an agreement whose certificate the registration officer has not approved yet."""
        if agreement.status == "pending":
            raise AgreementError("not_enrolled", "the agreement's certificate is not issued yet: the registration "
                                 "waits for the operator's approval", 409)

    def product(self, name: str | None) -> CertificateProduct:
        if not name:
            name = next(iter(self.products))
        found = self.products.get(name)
        if found is None:
            raise AgreementError("unknown_product", f"unknown certificate profile {name!r}")
        return found

    def check_usable(self, agreement: AgreementInfo, app: str | None = None) -> IdentityInfo:
        """Refuses an agreement that cannot sign now: revoked, disabled (or the one it shares is),
        an application it does not accept, a certificate expired or revoked."""
        with self.db.session() as s:
            rows = [s.get(Agreement, agreement.id)]
            if agreement.shared_from:
                rows.append(s.get(Agreement, agreement.shared_from))
            states = [r.status if r is not None else "revoked" for r in rows]
        if "revoked" in states:
            raise AgreementError("revoked", "the agreement is revoked", 403)
        if "pending" in states:
            self._enrolled(replace(agreement, status="pending"))
        if "disabled" in states:
            raise AgreementError("disabled", "the agreement is disabled", 403)
        if agreement.accepted_apps and (app or "") not in agreement.accepted_apps:
            raise AgreementError("app_not_accepted", f"the agreement does not accept the application {app!r}", 403)
        identity = self.identity(agreement)
        try:
            self.identities.check_usable(identity)
        except IdentityError as exc:
            code = {"certificate_expired": "certificate_expired", "certificate_revoked": "certificate_revoked"}.get(
                exc.code, "disabled")
            raise AgreementError(code, exc.message, 403) from exc
        return identity

    # -- registration -----------------------------------------------------------------------------
    def register(self, tenant_id: str, *, owner_reference: str, details: SignerDetails, product: str | None,
                 shared_mode: str, accepted_apps: tuple[str, ...], contacts: Contacts, reference: str | None = None,
                 shares: tuple[str, str | None] | None = None, message: tuple[str | None, str | None] = (None, None),
                 evidence: dict[str, bytes] | None = None, actor: str) -> AgreementInfo:
        """A new agreement: a new signer with a new key and certificate whose first passcode goes
        to the owner; or, with ``shares`` (the shared agreement's reference and its relying
        party's id, None for this one), an agreement of this relying party on that signer."""
        if shared_mode not in SHARED_MODES:
            raise AgreementError("invalid_request", f"shared mode is one of {', '.join(SHARED_MODES)}")
        if not owner_reference or len(owner_reference) > 200:
            raise AgreementError("invalid_request", "the owner's reference has 1 to 200 characters")
        if reference is not None and not _REFERENCE.fullmatch(reference):
            raise AgreementError("invalid_request", "an agreement reference has 1 to 64 letters, digits or . _ -")
        if len(accepted_apps) > 50 or any(not a or len(a) > 60 or " " in a for a in accepted_apps):
            raise AgreementError("invalid_request", "at most 50 accepted applications of 1 to 60 characters")
        reference = reference or uuid.uuid4().hex
        if shares is not None:
            return self._register_shared(tenant_id, reference, owner_reference, shared_mode, accepted_apps, shares,
                                         actor)
        details.check()
        contacts.check()
        chosen = self.product(product)
        address = contacts.passcode_address()
        if not address:
            raise AgreementError("no_channel", f"the owner has no {'e-mail address' if contacts.passcode_channel == 'email' else 'mobile number'} for the passcode")
        if not self.outbox.can_send(contacts.passcode_channel):
            raise AgreementError("channel_unavailable",
                                 f"this service sends no {'e-mail' if contacts.passcode_channel == 'email' else 'SMS'}",
                                 409)
        with self.db.session() as s:
            self._check_new(s, tenant_id, reference, owner_reference, details, contacts)
        agreement_id = str(uuid.uuid4())
        try:  # the evidence first: an unwritable store refuses the registration before anything exists
            kept = self._keep_evidence(agreement_id, "register", evidence)
            now = self._now()
            row = Agreement(id=agreement_id, reference=reference, tenant_id=tenant_id, user_id=None,
                            sign_identity_id=None, owner_reference=owner_reference, shared_mode=shared_mode,
                            shared_from=None, accepted_apps=" ".join(accepted_apps), product=chosen.name,
                            subject=details.to_json(), owner_email=contacts.owner_email,
                            owner_phone=contacts.owner_phone, otp_email=contacts.otp_email,
                            otp_phone=contacts.otp_phone, passcode_channel=contacts.passcode_channel,
                            passcode_must_change=True, status="pending", evidence=" ".join(kept),
                            notice=json.dumps({"template": message[0], "subject": message[1]}),
                            created_at=now, updated_at=now)
            with self.db.session() as s:
                s.add(row)
        except BaseException as exc:
            self.blobs.delete_namespace(f"agreement-{agreement_id}")
            if isinstance(exc, IntegrityError):  # the same reference registered at the same moment
                raise AgreementError("exists", f"agreement {reference} exists", 409) from exc
            raise
        info = _info(row)
        self.audit.append("agreement.registered", actor=actor, tenant_id=tenant_id, subject=info.id,
                          details={"reference": reference, "product": chosen.name, "shared_mode": shared_mode,
                                   "evidence": kept, "approval": self.approval})
        if self.approval == "operator":
            return info  # the registration officer checks the evidence first (approve / reject)
        try:
            return self._enrol(info, actor)
        except BaseException:
            with self.db.session() as s:  # automatic issuance failed: nothing of the registration stays
                s.execute(delete(Agreement).where(Agreement.id == info.id, Agreement.status == "pending"))
            self.blobs.delete_namespace(f"agreement-{agreement_id}")
            raise

    def _enrol(self, agreement: AgreementInfo, actor: str) -> AgreementInfo:
        """Issue what a registered agreement stands for: the signer, a new key, the certificate
        naming the registered details; then the first passcode goes to the owner. Undone if a
        step fails (the agreement stays pending)."""
        chosen = self.product(agreement.product)
        channel = agreement.contacts.passcode_channel
        if not agreement.contacts.passcode_address() or not self.outbox.can_send(channel):
            raise AgreementError("channel_unavailable", f"the first passcode cannot be sent: this service sends no "
                                 f"{'e-mail' if channel == 'email' else 'SMS'}", 409)
        passcode = new_passcode()
        user = None
        try:
            user = self.users.create(tenant_id=agreement.tenant_id, username=f"agreement.{agreement.reference}",
                                     display_name=agreement.details.name[:200], kind=chosen.kind,
                                     email=agreement.contacts.otp_address("email"),
                                     phone=agreement.contacts.otp_address("sms"), actor=actor)
            identity = self.identities.create_for_subject(
                user, agreement.details.subject(chosen.kind), profile=chosen.ca_profile, validity=chosen.validity,
                algorithm=chosen.algorithm, pin=passcode, labels=("agreement", "x509:keyUsage:contentCommitment"),
                description=f"agreement:{agreement.reference}", actor=actor)
            with self.db.session() as s:
                moved = s.execute(update(Agreement).where(Agreement.id == agreement.id, Agreement.status == "pending")
                                  .values(user_id=user.id, sign_identity_id=identity.id, status="active",
                                          updated_at=self._now())).rowcount
                notice = s.scalar(select(Agreement.notice).where(Agreement.id == agreement.id))
            if moved != 1:
                raise AgreementError("not_pending", "the agreement no longer waits for its certificate", 409)
        except BaseException:
            self._undo_enrolment(user, actor)
            raise
        self.audit.append("agreement.enrolled", actor=actor, tenant_id=agreement.tenant_id, subject=agreement.id,
                          details={"identity_id": identity.id, "product": chosen.name})
        info = self.get(agreement.tenant_id, agreement.reference)
        message = json.loads(notice or "{}")
        self._send_passcode(info, passcode, (message.get("template"), message.get("subject")), "initial")
        return info

    def _undo_enrolment(self, user: Any, actor: str) -> None:
        """The signer a failed enrolment made, with any identity (certificate revoked, key destroyed)."""
        if user is None:
            return
        for identity in self.identities.list(Viewer(None, user.id)):
            self.identities.retire(identity.id, reason="cessation_of_operation", actor=actor)
        self.users.delete(user.id, user.tenant_id, actor=actor)

    # -- the registration officer -----------------------------------------------------------------
    def waiting(self, tenant_id: str | None = None) -> list[AgreementInfo]:
        """Registrations waiting for the operator's approval (of one relying party, or all)."""
        with self.db.session() as s:
            q = select(Agreement).where(Agreement.status == "pending").order_by(Agreement.created_at)
            if tenant_id is not None:
                q = q.where(Agreement.tenant_id == tenant_id)
            return [_info(r) for r in s.scalars(q)]

    def evidence(self, agreement: AgreementInfo) -> list[str]:
        """Names of the documents kept with the registration (blob namespace ``agreement-<id>``)."""
        with self.db.session() as s:
            return [n for n in (s.scalar(select(Agreement.evidence).where(Agreement.id == agreement.id)) or "").split()
                    if n]

    def approve(self, tenant_id: str, reference: str, actor: str = "operator") -> AgreementInfo:
        """The registration officer checked the evidence: issue the certificate, send the passcode."""
        agreement = self.get(tenant_id, reference)
        if agreement.status != "pending":
            raise AgreementError("not_pending", f"agreement {reference} is {agreement.status}, not waiting", 409)
        return self._enrol(agreement, actor)

    def reject(self, tenant_id: str, reference: str, reason: str, actor: str = "operator") -> AgreementInfo:
        """The registration is refused: the agreement ends without a certificate (its evidence stays)."""
        agreement = self.get(tenant_id, reference)
        with self.db.session() as s:
            moved = s.execute(update(Agreement).where(Agreement.id == agreement.id, Agreement.status == "pending")
                              .values(status="revoked", updated_at=self._now())).rowcount
        if moved != 1:
            raise AgreementError("not_pending", f"agreement {reference} is {agreement.status}, not waiting", 409)
        self.audit.append("agreement.rejected", actor=actor, tenant_id=tenant_id, subject=agreement.id,
                          details={"reason": reason[:500]})
        return self.get(tenant_id, reference)

    def _keep_evidence(self, agreement_id: str, event: str, evidence: dict[str, bytes] | None) -> list[str]:
        """Keep the registration documents (scanned forms, ID cards) a registration or change
        came with: the evidence a certification authority must retain. Returns their names."""
        names = []
        stamp = f"{self._now():%Y%m%dT%H%M%S}"
        for field_name, data in (evidence or {}).items():
            if data and re.fullmatch(r"[A-Za-z]{1,40}", field_name):
                name = f"{event}-{stamp}-{field_name}"
                self.blobs.put_bytes(f"agreement-{agreement_id}", name, data)
                names.append(name)
        return names

    def _check_new(self, s: Session, tenant_id: str, reference: str, owner_reference: str, details: SignerDetails,
                   contacts: Contacts) -> None:
        if s.scalar(select(Agreement.id).where(Agreement.tenant_id == tenant_id, Agreement.reference == reference)):
            raise AgreementError("exists", f"agreement {reference} exists", 409)
        live = (Agreement.tenant_id == tenant_id, Agreement.status != "revoked", Agreement.shared_from.is_(None))
        for other in s.scalars(select(Agreement).where(*live, Agreement.owner_reference == owner_reference)):
            theirs = SignerDetails.from_json(other.subject)
            if any(getattr(details, f) and getattr(details, f) == getattr(theirs, f) for f in details.IDENTIFIERS):
                raise AgreementError("exists", f"the owner has agreement {other.reference} for this signer already", 409)
        mine = list({contacts.otp_address("email"), contacts.owner_email} - {None})
        if mine and s.scalar(select(Agreement.id).where(
                *live, Agreement.owner_reference != owner_reference,
                Agreement.otp_email.in_(mine) | Agreement.owner_email.in_(mine)).limit(1)):
            raise AgreementError("email_registered", "the e-mail address belongs to another owner's agreement", 409)

    def _register_shared(self, tenant_id: str, reference: str, owner_reference: str, shared_mode: str,
                         accepted_apps: tuple[str, ...], shares: tuple[str, str | None], actor: str) -> AgreementInfo:
        target_ref, target_tenant = shares
        with self.db.session() as s:
            target = s.scalar(select(Agreement).where(Agreement.tenant_id == (target_tenant or tenant_id),
                                                      Agreement.reference == target_ref,
                                                      Agreement.shared_from.is_(None)))
            if target is None or target.status == "revoked":
                raise AgreementError("shared_not_found", f"no agreement {target_ref} to share", 404)
            if target.status == "pending":
                raise AgreementError("not_enrolled", f"agreement {target_ref} waits for its certificate", 409)
            other_party = target.tenant_id != tenant_id
            if target.shared_mode == "private" or (other_party and target.shared_mode != "relying_party"):
                raise AgreementError("shared_mode_invalid",
                                     f"agreement {target_ref} is not shared with {'other relying parties' if other_party else 'other agreements'}",
                                     403)
            if target.owner_reference != owner_reference:
                raise AgreementError("shared_mode_invalid", "a shared agreement has the owner of the one it shares", 403)
            if s.scalar(select(Agreement.id).where(Agreement.tenant_id == tenant_id, Agreement.reference == reference)):
                raise AgreementError("exists", f"agreement {reference} exists", 409)
            now = self._now()
            # the signer, the key and the owner's addresses are the shared agreement's: a relying
            # party that shares it can never send the passcode or the one-time codes elsewhere
            row = Agreement(id=str(uuid.uuid4()), reference=reference, tenant_id=tenant_id, user_id=target.user_id,
                            sign_identity_id=target.sign_identity_id, owner_reference=owner_reference,
                            shared_mode=shared_mode, shared_from=target.id, accepted_apps=" ".join(accepted_apps),
                            product=target.product, subject=target.subject, owner_email=target.owner_email,
                            owner_phone=target.owner_phone, otp_email=target.otp_email, otp_phone=target.otp_phone,
                            passcode_channel=target.passcode_channel, passcode_must_change=target.passcode_must_change,
                            status="active", created_at=now, updated_at=now)
            s.add(row)
            info = _info(row)
        self.audit.append("agreement.registered", actor=actor, tenant_id=tenant_id, subject=info.id,
                          details={"reference": reference, "identity_id": info.identity_id, "shares": target_ref,
                                   "shared_mode": shared_mode})
        return info

    # -- passcodes --------------------------------------------------------------------------------
    def _send_passcode(self, agreement: AgreementInfo, passcode: str, message: tuple[str | None, str | None],
                       purpose: str) -> None:
        template, subject = message
        default = (f"Your {self.service_name} signing passcode: {PASSCODE_PLACEHOLDER}. Change it before you sign. "
                   "Nobody from the service or your bank will ask you for it.")
        text = fill(template, PASSCODE_PLACEHOLDER, passcode, default)
        channel = agreement.contacts.passcode_channel
        address = agreement.contacts.passcode_address()
        try:
            if not address:
                raise NoChannel("no address")
            self.outbox.send(channel=channel, to=address, subject=(subject or "Your signing passcode")[:200],
                             text=text, purpose=f"passcode.{purpose}", tenant_id=agreement.tenant_id,
                             subject_ref=agreement.id)
        except NoChannel as exc:
            raise AgreementError("channel_unavailable", f"the passcode cannot be sent: {exc}", 409) from exc

    def verify_passcode(self, agreement: AgreementInfo, passcode: str, actor: str) -> None:
        """The owner's passcode, or AgreementError ``passcode_wrong`` (``remaining`` tries) /
        ``passcode_blocked`` (until ``locked_until``)."""
        self._enrolled(agreement)
        try:
            self.identities.verify_pin(agreement.identity_id, passcode, actor=actor, tenant_id=agreement.tenant_id)
        except PinRefused as exc:
            if exc.code == "pin_invalid":
                raise AgreementError("passcode_wrong", "wrong passcode", 403, remaining=exc.remaining) from exc
            raise AgreementError("passcode_blocked", exc.message, 403, remaining=0,
                                 locked_until=exc.locked_until) from exc

    def change_passcode(self, tenant_id: str, reference: str, current: str, new: str, actor: str) -> PasscodeOutcome:
        agreement = self.get(tenant_id, reference)
        self._not_revoked(agreement)
        self._enrolled(agreement)
        try:
            check_pin(new)
        except IdentityError as exc:
            raise AgreementError("invalid_passcode", exc.message) from exc
        self.verify_passcode(agreement, current, actor)
        self.identities.update(agreement.identity_id, Viewer(None), pin=new, actor=actor)
        self._set_must_change(agreement.identity_id, False)
        self.audit.append("agreement.passcode_changed", actor=actor, tenant_id=tenant_id, subject=agreement.id)
        return PasscodeOutcome(self.identities.pin_max_attempts)

    def reset_passcode(self, tenant_id: str, reference: str, message: tuple[str | None, str | None],
                       actor: str) -> None:
        """A new passcode made by the service and sent to the owner (forgotten passcode); it lifts
        a passcode lock, and must be changed before signing."""
        agreement = self.get(tenant_id, reference)
        self._not_revoked(agreement)
        self._enrolled(agreement)
        passcode = new_passcode()
        if not agreement.contacts.passcode_address() or not self.outbox.can_send(agreement.contacts.passcode_channel):
            raise AgreementError("channel_unavailable", "the owner cannot be reached for a new passcode", 409)
        self.identities.set_user_pin(agreement.user_id, hash_secret(passcode, self.kdf_log2_n), actor=actor,
                                     tenant_id=tenant_id)
        self._set_must_change(agreement.identity_id, True)
        self.audit.append("agreement.passcode_reset", actor=actor, tenant_id=tenant_id, subject=agreement.id,
                          details={"channel": agreement.contacts.passcode_channel})
        self._send_passcode(agreement, passcode, message, "reset")

    def _set_must_change(self, identity_id: str, value: bool) -> None:
        with self.db.session() as s:
            s.execute(update(Agreement).where(Agreement.sign_identity_id == identity_id)
                      .values(passcode_must_change=value, updated_at=self._now()))

    # -- certificate lifecycle --------------------------------------------------------------------
    def _managed(self, tenant_id: str, reference: str) -> AgreementInfo:
        agreement = self.get(tenant_id, reference)
        if not agreement.manages_certificate:
            raise AgreementError("access_denied", "a shared agreement cannot manage the certificate; the "
                                 "agreement it shares does", 403)
        self._not_revoked(agreement)
        return agreement

    @staticmethod
    def _not_revoked(agreement: AgreementInfo) -> None:
        if agreement.status == "revoked":
            raise AgreementError("revoked", "the agreement is revoked", 403)

    def _no_pending(self, agreement: AgreementInfo) -> None:
        now = self._now()
        with self.db.session() as s:
            rows = s.execute(select(SigningTransaction.id, SigningTransaction.status, SigningTransaction.lease_owner,
                                    SigningTransaction.expires_at, SigningTransaction.otp_expires_at).where(
                SigningTransaction.agreement_id.in_(self._sharing_ids(s, agreement)),
                SigningTransaction.status.in_(("pending", "signing")))).all()
        for r in rows:  # a code still valid, or a signature being made by a live process
            waiting = r.status == "pending" and r.otp_expires_at is not None and aware(r.otp_expires_at) > now
            if waiting or (r.status == "signing" and not abandoned(r.lease_owner, r.expires_at, now)):
                raise AgreementError("transaction_pending", f"transaction {r.id} of the agreement is not finished",
                                     409)

    @staticmethod
    def _sharing_ids(s: Session, agreement: AgreementInfo) -> list[str]:
        return [agreement.id, *s.scalars(select(Agreement.id).where(Agreement.shared_from == agreement.id))]

    def change(self, tenant_id: str, reference: str, details: SignerDetails, actor: str,
               evidence: dict[str, bytes] | None = None) -> AgreementInfo:
        """New details: a new key and certificate naming them, expiring when the old one does."""
        agreement = self._managed(tenant_id, reference)
        for name in SignerDetails.IMMUTABLE:
            if getattr(details, name) != getattr(agreement.details, name):
                raise AgreementError("immutable_detail", f"{name} cannot be changed: it stands for the signer")
        details.check()
        kept = " ".join([*self.evidence(agreement), *self._keep_evidence(agreement.id, "change", evidence)])
        if agreement.status == "pending":  # not issued yet: the officer will see the new details
            return self._update(agreement, "changed", actor, subject=details.to_json(), evidence=kept)
        self._no_pending(agreement)
        product = self.product(agreement.product)
        not_after = self.identity(agreement).certificate().not_valid_after_utc
        if not_after <= self._now():
            raise AgreementError("certificate_expired", "the certificate has expired; renew it", 403)
        self.identities.rekey(agreement.identity_id, details.subject(product.kind), profile=product.ca_profile,
                              not_after=not_after, actor=actor)
        return self._update(agreement, "changed", actor, subject=details.to_json(), evidence=kept)

    def renew(self, tenant_id: str, reference: str, product: str | None, actor: str) -> AgreementInfo:
        """A new key and certificate for the same details, valid for the (possibly new) product's term."""
        agreement = self._managed(tenant_id, reference)
        self._enrolled(agreement)
        chosen = self.product(product or agreement.product)
        if chosen.kind != self.product(agreement.product).kind:
            raise AgreementError("unknown_product", "a renewal keeps the kind of signer (person or organization)")
        self._no_pending(agreement)
        self.identities.rekey(agreement.identity_id, agreement.details.subject(chosen.kind), profile=chosen.ca_profile,
                              validity=chosen.validity, algorithm=chosen.algorithm, actor=actor)
        return self._update(agreement, "renewed", actor, product=chosen.name)

    def revoke(self, tenant_id: str, reference: str, actor: str) -> AgreementInfo:
        """The end of the agreement: the certificate revoked (visible in OCSP and the CRL at once),
        the key destroyed; agreements sharing it end with it."""
        agreement = self._managed(tenant_id, reference)
        if agreement.identity_id:  # a registration still waiting has no certificate to revoke
            self.identities.retire(agreement.identity_id, reason="cessation_of_operation", actor=actor)
        with self.db.session() as s:
            s.execute(update(Agreement).where(Agreement.id.in_(self._sharing_ids(s, agreement)))
                      .values(status="revoked", updated_at=self._now()))
            s.execute(update(SigningTransaction)
                      .where(SigningTransaction.agreement_id.in_(self._sharing_ids(s, agreement)),
                             SigningTransaction.status == "pending")
                      .values(status="cancelled", finished_at=self._now()))
        self.audit.append("agreement.revoked", actor=actor, tenant_id=tenant_id, subject=agreement.id)
        return self.get(tenant_id, reference)

    def set_enabled(self, tenant_id: str, reference: str, enabled: bool, actor: str) -> AgreementInfo:
        agreement = self._managed(tenant_id, reference)
        self._enrolled(agreement)
        return self._update(agreement, "enabled" if enabled else "disabled", actor,
                            status="active" if enabled else "disabled")

    def _update(self, agreement: AgreementInfo, event: str, actor: str, **values: Any) -> AgreementInfo:
        with self.db.session() as s:
            s.execute(update(Agreement).where(Agreement.id == agreement.id).values(updated_at=self._now(), **values))
            if "subject" in values:  # agreements that share it name the same signer
                s.execute(update(Agreement).where(Agreement.shared_from == agreement.id)
                          .values(subject=values["subject"], updated_at=self._now()))
        self.audit.append(f"agreement.{event}", actor=actor, tenant_id=agreement.tenant_id, subject=agreement.id,
                          details={k: v for k, v in values.items() if k not in ("subject", "evidence")})
        return self.get(agreement.tenant_id, agreement.reference)
