"""Signing with an agreement, authorized by the owner's passcode at once or by a one-time code
sent to the owner (vendor-neutral; the Remote Signing (VN) facade speaks it).

Each request is a *transaction* whose id (the receipt callers keep) is returned. With the
passcode the digests are signed in the same call. With a one-time code the transaction waits:
the code (8 digits, valid ``otp_ttl`` seconds, ``otp_max_failures`` wrong tries) goes to the
owner's own phone or e-mail address, and only that code, given with that transaction, signs
exactly the digests stored with it, once. A code is bound to its transaction, so it never
signs anything else, and a transaction that signed, failed, expired or was blocked never signs.

Sole control (EN 419 241-1 SCAL2): once the owner's factor is checked the service issues a
signing token bound to the agreement's identity and to these very digests and spends it through
``core/sole_control.py``; the key store checks that authorization before the key signs, as for
every other signature the service makes.

A new request for an agreement with a transaction still waiting from another client address is
refused (one client at a time per agreement); from the same address it replaces the old one.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from remotesign.core.agreements import AgreementError, AgreementInfo, AgreementService, fill
from remotesign.core.errors import CoreError
from remotesign.core.identities import IdentityInfo
from remotesign.core.one_time_passwords import code_hash, matches, new_code
from remotesign.core.operations import abandoned, crash_point, new_lease, pause_point
from remotesign.core.scopes import USE_SERVER
from remotesign.core.sole_control import SoleControl, SoleControlRefused, TypedDigest, digests_summary
from remotesign.core.tenants import TenantService, hash_of
from remotesign.core.relying_party_seal import Seal
from remotesign.core.transaction_files import MAX_FILES, FileToSign, SignedFile, TransactionFiles
from remotesign.keystore import KeyStore, KeyUseAuthorization, SignatureScheme
from remotesign.keystore.base import HASH_SIZES, KeyStoreError
from remotesign.notify.outbox import NoChannel, Outbox, mask_email, mask_phone
from remotesign.storage.audit import AuditLog
from remotesign.storage.db import Database
from remotesign.storage.models import SigningTransaction
from remotesign.storage.times import aware

METHODS = ("passcode", "otp-sms", "otp-email")
MAX_DIGESTS = 100
CODE_PLACEHOLDER = "{AuthorizeCode}"
AUTH_SERVER = "agreements"
SIGNING_LEASE = timedelta(minutes=2)


class TransactionError(AgreementError):
    """A refused signing request or authorization; ``code`` says why."""


@dataclass(frozen=True)
class DigestsToSign:
    """The digests of one request, in order, all of one hash, and the signature kind asked for."""

    digests: tuple[bytes, ...]
    hash_name: str
    kind: str  # rsa | ecdsa

    def check(self) -> None:
        if not self.digests or len(self.digests) > MAX_DIGESTS:
            raise TransactionError("invalid_request", f"a request has 1 to {MAX_DIGESTS} hashes")
        size = HASH_SIZES.get(self.hash_name)
        if size is None or self.hash_name == "sha1":
            raise TransactionError("invalid_request", "the hash algorithm is SHA-256, SHA-384 or SHA-512")
        if any(len(d) != size for d in self.digests):
            raise TransactionError("invalid_request", f"a {self.hash_name} hash has {size} bytes")
        if self.kind not in ("rsa", "ecdsa"):
            raise TransactionError("unsupported", "the signature is RSA or ECDSA")


@dataclass(frozen=True)
class Outcome:
    """``accepted``: a code was sent (``sent_to`` masked) and the transaction waits; else
    ``signatures`` (hashes, in their order) or ``files`` (documents, signed). ``passcode_must_change``:
    signed with a passcode the service made, which the owner should now change."""

    transaction_id: str
    accepted: bool
    signatures: tuple[bytes, ...] = ()
    sent_to: str | None = None
    passcode_must_change: bool = False
    files: tuple[SignedFile, ...] = ()


def new_transaction_id() -> str:
    """A receipt callers keep: time-ordered and unguessable (``YYMMDDhhmmss-<random>``)."""
    return f"{datetime.now(timezone.utc):%y%m%d%H%M%S}-{secrets.token_hex(8)}"


class SigningTransactionService:
    def __init__(self, db: Database, audit: AuditLog, agreements: AgreementService, tenants: TenantService,
                 keystore: KeyStore, sole_control: SoleControl, outbox: Outbox, *, otp_ttl: int = 300,
                 otp_max_failures: int = 3, transaction_ttl: int = 600, service_name: str = "remotesign",
                 files: TransactionFiles | None = None, file_retention: int = 7 * 86400) -> None:
        self.files = files
        self.file_retention = file_retention
        self.db = db
        self.audit = audit
        self.agreements = agreements
        self.tenants = tenants
        self.keystore = keystore
        self.sole_control = sole_control
        self.outbox = outbox
        self.otp_ttl = otp_ttl
        self.otp_max_failures = otp_max_failures
        self.transaction_ttl = max(transaction_ttl, otp_ttl)
        self.service_name = service_name

    # -- requests ---------------------------------------------------------------------------------
    def request(self, tenant_id: str, reference: str, what: DigestsToSign, *, method: str, passcode: str | None,
                app: str | None, client_address: str | None, message: tuple[str | None, str | None],
                actor: str) -> Outcome:
        """Sign ``what`` with the agreement: at once with ``passcode``, or send a one-time code."""
        what.check()
        items = {"hash": what.hash_name, "kind": what.kind, "digests": [d.hex() for d in what.digests]}
        return self._request(tenant_id, reference, "hash", lambda _: items, len(what.digests), method=method,
                             passcode=passcode, app=app, client_address=client_address, message=message, actor=actor,
                             check=lambda identity: self._check_kind(identity, what))

    def request_files(self, tenant_id: str, reference: str, files: list[FileToSign], *, method: str,
                      passcode: str | None, app: str | None, client_address: str | None,
                      message: tuple[str | None, str | None], actor: str) -> Outcome:
        """Sign whole documents with the agreement (each as its ``spec`` says), at once with
        ``passcode`` or after a one-time code; the signed documents stay for download."""
        if self.files is None:
            raise TransactionError("unsupported", "this service signs no documents")
        if not files or len(files) > MAX_FILES:
            raise TransactionError("invalid_request", f"a request has 1 to {MAX_FILES} files")
        if any(f.counter is not None for f in files):
            self._seal(tenant_id)  # no seal, no request: refused before anything is stored or authorized
        files_store = self.files
        return self._request(tenant_id, reference, "file", lambda tid: {"files": files_store.store(tid, files)},
                             len(files), method=method, passcode=passcode, app=app, client_address=client_address,
                             message=message, actor=actor, check=None)

    def _request(self, tenant_id: str, reference: str, kind: str, items: Callable[[str], dict[str, Any]], count: int,
                 *, method: str, passcode: str | None, app: str | None, client_address: str | None,
                 message: tuple[str | None, str | None], actor: str,
                 check: Callable[[IdentityInfo], None] | None) -> Outcome:
        if method not in METHODS:
            raise TransactionError("invalid_request", f"the authorization method is one of {', '.join(METHODS)}")
        agreement = self.agreements.get(tenant_id, reference)
        identity = self.agreements.check_usable(agreement, app)
        if check is not None:
            check(identity)
        now = datetime.now(timezone.utc)
        self._one_client(agreement, client_address, now)
        transaction_id = new_transaction_id()
        if method == "passcode":
            if not passcode:
                raise TransactionError("invalid_request", "the passcode (authorizeCode) is required")
            self.agreements.verify_passcode(agreement, passcode, actor)
            stored = json.dumps(items(transaction_id))
            self._store(transaction_id, agreement, kind, stored, method, client_address, now, status="signing")
            outcome = self._sign(transaction_id, agreement, identity, kind, stored, actor)
            return dataclasses.replace(outcome, passcode_must_change=agreement.passcode_must_change)
        channel = "sms" if method == "otp-sms" else "email"
        address = agreement.contacts.otp_address(channel)
        if not address:
            raise TransactionError("no_channel", f"the agreement has no {'mobile number' if channel == 'sms' else 'e-mail address'}")
        if not self.outbox.can_send(channel):
            raise TransactionError("channel_unavailable", f"this service sends no {'SMS' if channel == 'sms' else 'e-mail'}")
        code = new_code()
        stored = json.dumps(items(transaction_id))
        self._store(transaction_id, agreement, kind, stored, method, client_address, now, status="pending",
                    otp_hash=code_hash(transaction_id, code), otp_expires_at=now + timedelta(seconds=self.otp_ttl))
        template, subject = message
        what = f"{count} document(s)" if kind == "file" else f"{count} item(s)"
        text = fill(template, CODE_PLACEHOLDER, code,
                    f"{CODE_PLACEHOLDER} is your {self.service_name} code to sign {what} "
                    f"(transaction {transaction_id}). It is valid for {self.otp_ttl // 60} minutes. "
                    "Nobody from the service will ask you for it.")
        try:
            self.outbox.send(channel=channel, to=address, subject=(subject or "Your signing code")[:200], text=text,
                             purpose="otp.signing", tenant_id=tenant_id, subject_ref=transaction_id)
        except NoChannel as exc:  # the service lost its channel meanwhile: the transaction is void
            self._finish(transaction_id, "cancelled", "channel_unavailable")
            raise TransactionError("channel_unavailable", str(exc)) from exc
        return Outcome(transaction_id, True, sent_to=mask_phone(address) if channel == "sms" else mask_email(address))

    @staticmethod
    def _check_kind(identity: IdentityInfo, what: DigestsToSign) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        is_rsa = isinstance(identity.certificate().public_key(), rsa.RSAPublicKey)
        if is_rsa != (what.kind == "rsa"):
            raise TransactionError("unsupported", f"the agreement's key is {'RSA' if is_rsa else 'EC'}; it cannot "
                                   f"make {what.kind.upper()} signatures")

    def _one_client(self, agreement: AgreementInfo, client_address: str | None, now: datetime) -> None:
        with self.db.session() as s:
            waiting = s.scalars(select(SigningTransaction).where(
                SigningTransaction.agreement_id == agreement.id, SigningTransaction.status == "pending",
                SigningTransaction.otp_expires_at > now)).all()
            others = [t for t in waiting if (t.client_address or "") != (client_address or "")]
            if others:
                raise TransactionError("other_client", "another client machine is authorizing a transaction of this "
                                       "agreement; finish it or let it expire", 409)
            for t in waiting:  # the same client asked again: the older one is void
                t.status, t.finished_at, t.error_code = "cancelled", now, "superseded"

    def _store(self, transaction_id: str, agreement: AgreementInfo, kind: str, items: str, method: str,
               client_address: str | None, now: datetime, *, status: str, otp_hash: str | None = None,
               otp_expires_at: datetime | None = None) -> None:
        lease = new_lease(int(SIGNING_LEASE.total_seconds()), now) if status == "signing" else None
        expires_at = lease.expires_at if lease else now + timedelta(seconds=self.transaction_ttl)
        with self.db.session() as s:
            s.add(SigningTransaction(id=transaction_id, tenant_id=agreement.tenant_id, agreement_id=agreement.id,
                                     kind=kind, items=items, method=method, client_address=(client_address or "")[:64],
                                     otp_hash=otp_hash, otp_expires_at=otp_expires_at, otp_failures=0, status=status,
                                     lease_owner=lease.owner if lease else None, created_at=now,
                                     expires_at=expires_at))
        self.audit.append("signing_transaction.created", actor=agreement.tenant_id, tenant_id=agreement.tenant_id,
                          subject=transaction_id, details={"agreement": agreement.id, "method": method, "kind": kind})

    # -- authorization ----------------------------------------------------------------------------
    def authorize(self, tenant_id: str, reference: str, transaction_id: str, code: str, actor: str,
                  kind: str | None = None) -> Outcome:
        """Sign the transaction's digests with the one-time code the owner received.

        Every change of the transaction's state is a conditional UPDATE on the state it was read
        in, so of concurrent calls with the right code exactly one claims it and signs (the others
        find it being signed, or signed), and concurrent wrong codes are all counted."""
        agreement = self.agreements.get(tenant_id, reference)
        now = datetime.now(timezone.utc)
        with self.db.session() as s:
            t = s.scalar(select(SigningTransaction).where(SigningTransaction.id == transaction_id,
                                                          SigningTransaction.agreement_id == agreement.id))
            if t is None:
                raise TransactionError("unknown_transaction", f"no transaction {transaction_id} of this agreement", 404)
            if kind is not None and t.kind != kind:  # asked on the wrong endpoint: nothing is spent
                raise TransactionError("unsupported", f"transaction {transaction_id} signs "
                                       f"{'files' if t.kind == 'file' else 'hashes'}, not {kind}s")
            outcome, failures = self._apply(s, t, self._check_code(t, code, now), now), t.otp_failures
            if outcome == "wrong":
                failures = s.scalar(select(SigningTransaction.otp_failures).where(SigningTransaction.id == t.id)) or 0
                if failures >= self.otp_max_failures:
                    s.execute(update(SigningTransaction)
                              .where(SigningTransaction.id == t.id, SigningTransaction.status == "pending")
                              .values(status="blocked", otp_hash=None, finished_at=now))
                    outcome = "blocked"
            items, kind = t.items, t.kind
        if outcome != "ok":
            self.audit.append("signing_transaction.refused", actor=actor, tenant_id=tenant_id, subject=transaction_id,
                              details={"reason": outcome, "failures": failures})
            raise self._refusal(outcome, failures)
        pause_point("signing_transaction.claimed")
        try:
            identity = self.agreements.check_usable(agreement)
        except AgreementError as exc:
            self._finish(transaction_id, "failed", exc.code)
            raise
        return self._sign(transaction_id, agreement, identity, kind, items, actor)

    def _check_code(self, t: SigningTransaction, code: str, now: datetime) -> str:
        """What the code does to the transaction as read (changes nothing)."""
        if t.status == "done":
            return "used"
        if t.status == "signing":
            return "in_progress" if not abandoned(t.lease_owner, t.expires_at, now) else "abandoned"
        if t.status in ("failed", "blocked"):
            return t.status
        if t.status == "purged":
            return "used" if t.error_code is None else "expired"
        if t.status != "pending" or t.method == "passcode":
            return "expired"
        expires = aware(t.otp_expires_at)
        if expires is None or expires <= now:
            return "expire"
        return "ok" if matches(t.otp_hash, t.id, code.strip()) else "wrong"

    def _apply(self, s: Session, t: SigningTransaction, outcome: str, now: datetime) -> str:
        """Make ``outcome``'s change if the transaction is still as it was read; the outcome as it
        turned out (another call may have changed the transaction in between)."""
        same = (SigningTransaction.id == t.id, SigningTransaction.status == t.status)
        if outcome == "ok":
            lease = new_lease(int(SIGNING_LEASE.total_seconds()), now)
            claimed = s.execute(update(SigningTransaction).where(*same, SigningTransaction.otp_hash == t.otp_hash)
                                .values(status="signing", otp_hash=None, lease_owner=lease.owner,
                                        expires_at=lease.expires_at)).rowcount
            if claimed == 1:
                return "ok"
            now_status = s.scalar(select(SigningTransaction.status).where(SigningTransaction.id == t.id))
            return {"signing": "in_progress", "done": "used", "failed": "failed", "blocked": "blocked"}.get(
                now_status or "", "expired")
        if outcome == "wrong":
            s.execute(update(SigningTransaction).where(*same)
                      .values(otp_failures=SigningTransaction.otp_failures + 1))
            return "wrong"
        if outcome == "expire":
            s.execute(update(SigningTransaction).where(*same).values(status="expired", otp_hash=None, finished_at=now))
            return "expired"
        if outcome == "abandoned":  # its process died signing: the signature was never answered
            s.execute(update(SigningTransaction).where(*same, SigningTransaction.lease_owner == t.lease_owner)
                      .values(status="failed", error_code="abandoned", finished_at=now))
            return "failed"
        return outcome

    def _refusal(self, outcome: str, failures: int) -> TransactionError:
        if outcome == "wrong":
            return TransactionError("code_wrong", "wrong authorization code", 403,
                                    remaining=max(0, self.otp_max_failures - failures))
        if outcome == "blocked":
            return TransactionError("code_blocked", "too many wrong codes: the transaction is blocked; start a new one",
                                    403, remaining=0)
        if outcome == "expired":
            return TransactionError("code_expired", "the authorization code has expired; start a new transaction", 403)
        if outcome == "used":
            return TransactionError("code_used", "the transaction has been authorized already; a code works once", 403)
        if outcome == "in_progress":
            return TransactionError("in_progress", "the transaction is being signed", 409)
        return TransactionError("failed", "the transaction failed while signing; start a new one", 409)

    # -- signing ----------------------------------------------------------------------------------
    def _authorization(self, agreement: AgreementInfo, identity: IdentityInfo, typed: list[TypedDigest],
                       transaction_id: str, actor: str) -> KeyUseAuthorization:
        """Spend a token bound to exactly these digests on this identity: what the key store
        checks before the key signs."""
        hash_names = [d.hash_name for d in typed]
        if len(set(hash_names)) != 1:
            raise TransactionError("invalid_request", "the documents of one request are signed with one hash")
        issued = self.tenants.issue_user_token(
            agreement.tenant_id, AUTH_SERVER, USE_SERVER, user_id=identity.user_id, ttl=60,
            sign_identity_id=identity.id, digests_summary=digests_summary([d.value for d in typed], hash_names[0]),
            digests_summary_algorithm=hash_names[0], digest_types=" ".join(hash_names),
            grant=f"transaction:{transaction_id}")
        token = self.tenants.by_hash(hash_of(issued.access_token))
        assert token is not None
        reference = self.sole_control.authorize(token, identity.id, typed)
        return KeyUseAuthorization(reference, identity.id, actor=actor, tenant_id=agreement.tenant_id)

    def _sign(self, transaction_id: str, agreement: AgreementInfo, identity: IdentityInfo, kind: str, items: str,
              actor: str) -> Outcome:
        """Sign what the transaction holds under one authorization; it ends ``done`` with its
        result, or ``failed``."""
        parsed = json.loads(items)
        try:
            if kind == "file":
                assert self.files is not None
                files = self.files
                seal = self._seal(agreement.tenant_id) if any(i.get("counter") for i in parsed["files"]) else None
                done = files.sign(transaction_id, parsed["files"], identity,
                                  lambda typed: self._authorization(agreement, identity, typed, transaction_id, actor),
                                  seal)
                result, count = json.dumps({"files": done}), len(done)
            else:
                what = DigestsToSign(tuple(bytes.fromhex(d) for d in parsed["digests"]), parsed["hash"], parsed["kind"])
                auth = self._authorization(agreement, identity, [TypedDigest(what.hash_name, d) for d in what.digests],
                                           transaction_id, actor)
                key = self.keystore.identity_key(identity.key_id, identity.user_tenant_id)
                scheme = SignatureScheme.RSA_PKCS1V15 if what.kind == "rsa" else SignatureScheme.ECDSA
                values = self.keystore.sign_with_identity_key(
                    key, [(d, what.hash_name, scheme) for d in what.digests], auth)
                result, count = json.dumps([v.hex() for v in values]), len(values)
        except (KeyStoreError, SoleControlRefused) as exc:
            self._finish(transaction_id, "failed", "signing_failed")
            raise TransactionError("signing_failed", f"the signature could not be made: {exc}", 500) from exc
        except CoreError as exc:  # a document the format cannot sign
            self._finish(transaction_id, "failed", exc.code)
            raise
        crash_point("signing_transaction.signed")
        self._finish(transaction_id, "done", None, result=result)
        self.audit.append("signing_transaction.signed", actor=actor, tenant_id=agreement.tenant_id,
                          subject=transaction_id, details={"agreement": agreement.id, "kind": kind, "signatures": count})
        return self._outcome(transaction_id, kind, result)

    def _outcome(self, transaction_id: str, kind: str, result: str) -> Outcome:
        if kind == "file":
            assert self.files is not None
            return Outcome(transaction_id, False, files=tuple(self.files.results(transaction_id,
                                                                                 json.loads(result)["files"])))
        return Outcome(transaction_id, False, tuple(bytes.fromhex(v) for v in json.loads(result)))

    def _seal(self, tenant_id: str) -> Seal:
        """The relying party's counter-signing seal, or SealError."""
        if self.files is None or self.files.seals is None:
            raise TransactionError("unsupported", "this service counter-signs nothing")
        tenant = self.tenants.by_client_id_or_id(tenant_id)
        return self.files.seals.seal(tenant_id, tenant.counter_signer_key)

    def signed_files(self, tenant_id: str, transaction_id: str) -> list[SignedFile]:
        """The signed documents of one of the relying party's transactions (its download)."""
        with self.db.session() as s:
            t = s.scalar(select(SigningTransaction).where(SigningTransaction.id == transaction_id,
                                                          SigningTransaction.tenant_id == tenant_id))
            status, kind, result = (t.status, t.kind, t.result) if t is not None else (None, None, None)
        if status is None or kind != "file":
            raise TransactionError("file_not_found", f"no signed files for {transaction_id}", 404)
        if status == "signing":
            raise TransactionError("in_progress", "the files are being signed", 409)
        if status == "pending":
            raise TransactionError("transaction_pending", "the transaction waits for its authorization", 409)
        if status == "purged":
            raise TransactionError("file_not_found", f"the files of {transaction_id} are no longer kept", 404)
        if status != "done" or not result:
            raise TransactionError("file_not_found", f"transaction {transaction_id} signed nothing ({status})", 404)
        assert self.files is not None
        return self.files.results(transaction_id, json.loads(result)["files"])

    def _finish(self, transaction_id: str, status: str, error: str | None, result: str | None = None) -> None:
        with self.db.session() as s:
            s.execute(update(SigningTransaction).where(SigningTransaction.id == transaction_id)
                      .values(status=status, error_code=error, result=result, otp_hash=None,
                              finished_at=datetime.now(timezone.utc)))

    def sweep(self) -> int:
        """Transactions past their time: waiting ones expire; ones whose signing process died (or
        whose lease ran out) fail."""
        now = datetime.now(timezone.utc)
        with self.db.session() as s:
            expired = s.execute(update(SigningTransaction)
                                .where(SigningTransaction.status == "pending", SigningTransaction.expires_at <= now)
                                .values(status="expired", otp_hash=None, finished_at=now)).rowcount or 0
            signing = s.execute(select(SigningTransaction.id, SigningTransaction.lease_owner,
                                       SigningTransaction.expires_at)
                                .where(SigningTransaction.status == "signing")).all()
            dead = [r.id for r in signing if abandoned(r.lease_owner, r.expires_at, now)]
            if dead:
                s.execute(update(SigningTransaction)
                          .where(SigningTransaction.id.in_(dead), SigningTransaction.status == "signing")
                          .values(status="failed", error_code="abandoned", finished_at=now))
        return expired + len(dead) + self._purge(now)

    def _purge(self, now: datetime) -> int:
        """Documents are kept while they can still be signed, and signed ones for the retention
        time (for the download); then their files go and the transaction's record stays."""
        if self.files is None:
            return 0
        cutoff = now - timedelta(seconds=self.file_retention)
        with self.db.session() as s:
            ids = list(s.scalars(select(SigningTransaction.id).where(
                SigningTransaction.kind == "file", SigningTransaction.finished_at.is_not(None),
                SigningTransaction.status != "purged",
                ((SigningTransaction.status == "done") & (SigningTransaction.finished_at <= cutoff))
                | (SigningTransaction.status.in_(("expired", "failed", "cancelled", "blocked")))).limit(500)))
        for transaction_id in ids:
            self.files.discard(transaction_id)
            with self.db.session() as s:
                s.execute(update(SigningTransaction).where(SigningTransaction.id == transaction_id)
                          .values(status="purged", result=None))
        return len(ids)

