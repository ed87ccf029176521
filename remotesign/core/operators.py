"""Operators: the people who run the service and sign in to its console (``/console``).

An operator is neither a relying party (no OAuth client, no token) nor an end user: accounts are
made on the server with ``remotesign operator create`` and their passwords are stored as scrypt
hashes (``keystore.kdf``, as end users' passwords). Wrong passwords lock the account as end
users' do: after ``max_attempts`` in a row for the next step of ``lock_schedule``, after the last
step for good, until ``remotesign operator unlock`` (or a new password) lifts it; and failures
from one network address are counted across accounts (``AttemptThrottle``). Every refusal reads
the same to the caller.

A signed-in browser holds a random session token in a cookie; the database keeps only its SHA-256,
with an idle and an absolute expiry. The form token that every console POST must carry (CSRF)
is derived from the session token, so it needs no storage and dies with the session.

Every operator action is audited here or by the core service it calls, with the actor
``operator:<username>``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, select, update

from remotesign.core.errors import CoreError
from remotesign.core.throttle import AttemptThrottle, Limit, Throttled, settle_password_try
from remotesign.core.users import UserError, check_password_quality, username_fingerprint
from remotesign.keystore.kdf import DEFAULT_LOG2_N, dummy_verify, hash_secret, verify_secret
from remotesign.storage.audit import AuditLog
from remotesign.storage.db import Database
from remotesign.storage.models import Operator, OperatorSession
from remotesign.storage.times import aware as _aware

_USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,100}$")
IDLE_SECONDS = 30 * 60          # a console left alone this long signs out
LIFETIME_SECONDS = 12 * 3600    # and no session outlives a working day
THROTTLE_KIND = "console"       # failed console logins per address: AttemptThrottle keys console:<address>


class OperatorError(CoreError):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(code, message, status)


class OperatorLoginFailed(OperatorError):
    """Unknown name, wrong password, locked or disabled account: one answer. ``reason`` is for
    the audit log only."""

    def __init__(self, reason: str) -> None:
        super().__init__("login_failed", "wrong operator name or password", 401)
        self.reason = reason


@dataclass(frozen=True)
class OperatorInfo:
    id: str
    username: str
    enabled: bool
    created_at: datetime
    last_login_at: datetime | None
    locked_until: datetime | None
    lock_level: int
    locked_permanently: bool

    @property
    def actor(self) -> str:
        """How the audit log names this operator."""
        return actor_of(self.username)

    def locked(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(timezone.utc)
        return self.locked_permanently or (self.locked_until is not None and self.locked_until > now)


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in browser: who, and the form token its POSTs must carry."""

    operator: OperatorInfo
    csrf_token: str
    token_hash: str
    expires_at: datetime

    def csrf_ok(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(sent.encode(), self.csrf_token.encode())  # type: ignore[union-attr]


def _check_password(password: str) -> None:
    try:
        check_password_quality(password)
    except UserError as exc:
        raise OperatorError(exc.code, exc.message) from None


def actor_of(username: str) -> str:
    return f"operator:{username}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_for(token: str) -> str:
    """The form token of a session: a keyed hash of its secret (known to whoever holds the cookie
    and to the server, never to another site)."""
    return hmac.new(token.encode(), b"remotesign console csrf", hashlib.sha256).hexdigest()


class OperatorService:
    def __init__(self, db: Database, audit: AuditLog, *, max_attempts: int = 5,
                 lock_schedule: tuple[int, ...] = (900, 3600, 86400), kdf_log2_n: int = DEFAULT_LOG2_N,
                 address_limit: Limit | None = None, idle_seconds: int = IDLE_SECONDS,
                 lifetime_seconds: int = LIFETIME_SECONDS) -> None:
        self.db = db
        self.audit = audit
        self.max_attempts = max_attempts
        self.lock_schedule = lock_schedule
        self.kdf_log2_n = kdf_log2_n
        self.throttle = AttemptThrottle(db, {THROTTLE_KIND: address_limit or Limit(30, 900)})
        self.idle = timedelta(seconds=idle_seconds)
        self.lifetime = timedelta(seconds=lifetime_seconds)

    @classmethod
    def for_services(cls, services: Any) -> OperatorService:
        """The service over a ``remotesign.service.Services`` (its database, audit log and the
        password settings end users have too)."""
        st = services.settings
        return cls(services.db, services.audit, max_attempts=st.password_max_attempts,
                   lock_schedule=st.password_lock_schedule, kdf_log2_n=st.kdf_log2_n,
                   address_limit=Limit(st.address_max_failures, st.failure_window_seconds))

    def _info(self, o: Operator) -> OperatorInfo:
        level = o.lock_level or 0
        return OperatorInfo(id=o.id, username=o.username, enabled=o.enabled, created_at=_aware(o.created_at),
                            last_login_at=_aware(o.last_login_at), locked_until=_aware(o.locked_until),
                            lock_level=level, locked_permanently=level > len(self.lock_schedule))

    # -- accounts (the CLI) -------------------------------------------------------------------------
    def create(self, username: str, password: str, *, actor: str = "cli") -> OperatorInfo:
        if not _USERNAME.match(username):
            raise OperatorError("invalid_username", "an operator name has 1-100 letters, digits or . _ @ -")
        _check_password(password)
        op = Operator(id=str(uuid.uuid4()), username=username, password_hash=hash_secret(password, self.kdf_log2_n),
                      password_failures=0, lock_level=0, enabled=True, created_at=datetime.now(timezone.utc))
        with self.db.session() as s:
            if s.scalar(select(Operator.id).where(Operator.username == username)) is not None:
                raise OperatorError("username_taken", f"operator {username!r} exists already", 409)
            s.add(op)
        self.audit.append("operator.created", actor=actor, subject=actor_of(username))
        return self._info(op)

    def list(self) -> list[OperatorInfo]:
        with self.db.session() as s:
            return [self._info(o) for o in s.scalars(select(Operator).order_by(Operator.username))]

    def get(self, username: str) -> OperatorInfo:
        with self.db.session() as s:
            return self._info(self._row(s, username))

    @staticmethod
    def _row(s: Any, username: str) -> Operator:
        o = s.scalar(select(Operator).where(Operator.username == username))
        if o is None:
            raise OperatorError("not_found", f"no operator {username!r}", 404)
        return o  # type: ignore[no-any-return]

    def set_password(self, username: str, password: str, *, actor: str = "cli") -> OperatorInfo:
        """A new password; lifts every lock and ends the operator's sessions."""
        _check_password(password)
        with self.db.session() as s:
            o = self._row(s, username)
            o.password_hash = hash_secret(password, self.kdf_log2_n)
            o.password_failures, o.lock_level, o.locked_until = 0, 0, None
            s.execute(delete(OperatorSession).where(OperatorSession.operator_id == o.id))
            info = self._info(o)
        self.audit.append("operator.password_set", actor=actor, subject=info.actor)
        return info

    def set_enabled(self, username: str, enabled: bool, *, actor: str = "cli") -> OperatorInfo:
        """Disabling ends the operator's sessions at once."""
        with self.db.session() as s:
            o = self._row(s, username)
            o.enabled = enabled
            if not enabled:
                s.execute(delete(OperatorSession).where(OperatorSession.operator_id == o.id))
            info = self._info(o)
        self.audit.append("operator.enabled" if enabled else "operator.disabled", actor=actor, subject=info.actor)
        return info

    def unlock(self, username: str, *, actor: str = "cli") -> OperatorInfo:
        with self.db.session() as s:
            o = self._row(s, username)
            o.password_failures, o.lock_level, o.locked_until = 0, 0, None
            info = self._info(o)
        self.audit.append("operator.unlocked", actor=actor, subject=info.actor)
        return info

    # -- signing in ---------------------------------------------------------------------------------
    def login(self, username: str, password: str, *, address: str) -> tuple[ConsoleSession, str]:
        """Check the password and open a session; returns it with the cookie's token. Raises
        OperatorLoginFailed (audited with the reason), or Throttled when this address failed too
        often."""
        source = [f"{THROTTLE_KIND}:{address}"]
        try:
            self.throttle.check(source)
        except Throttled:
            self.audit.append("operator.login_refused", actor="anonymous", subject=username_fingerprint(username),
                              details={"reason": "address_throttled", "address": address})
            raise
        now = datetime.now(timezone.utc)
        outcome, info, tried, stored = "unknown", None, 0, None
        with self.db.session() as s:
            o = s.scalar(select(Operator).where(Operator.username == username)) if 0 < len(username) <= 100 else None
            if o is not None:
                locked_until = _aware(o.locked_until)
                if o.lock_level > len(self.lock_schedule):
                    outcome = "locked_permanently"
                elif locked_until is not None and locked_until > now:
                    outcome = "locked"
                else:
                    # a try is reserved before the slow check, given back when it was right
                    s.execute(update(Operator).where(Operator.id == o.id)
                              .values(password_failures=Operator.password_failures + 1))
                    s.refresh(o)
                    tried, stored = o.password_failures, o.password_hash
                    outcome = "check" if tried <= self.max_attempts else "locked"
                info = self._info(o)
        if outcome != "check":
            dummy_verify(self.kdf_log2_n)
        else:
            right = verify_secret(password, stored or "")
            with self.db.session() as s:
                o = s.get(Operator, info.id)  # type: ignore[union-attr]
                assert o is not None
                outcome = settle_password_try(o, right, tried, self.max_attempts, self.lock_schedule, now)
                if outcome == "ok":
                    outcome = "ok" if o.enabled else "disabled"
                    if o.enabled:
                        o.last_login_at = now
                info = self._info(o)
        if outcome != "ok":
            self.throttle.failed(source)
            self.audit.append("operator.login_refused", actor=info.actor if info else "anonymous",
                              subject=info.actor if info else username_fingerprint(username),
                              details={"reason": outcome, "address": address,
                                       "lock_level": info.lock_level if info else None,
                                       "locked_until": info.locked_until.isoformat()
                                       if info and info.locked_until else None})
            raise OperatorLoginFailed(outcome)
        assert info is not None
        token = secrets.token_urlsafe(32)
        session = OperatorSession(token_hash=_hash(token), operator_id=info.id, created_at=now, last_seen_at=now,
                                  expires_at=now + self.lifetime)
        with self.db.session() as s:
            s.execute(delete(OperatorSession).where(OperatorSession.expires_at < now))
            s.add(session)
        self.audit.append("operator.login", actor=info.actor, subject=info.actor,
                          details={"address": address, "session": session.token_hash[:16]})
        return ConsoleSession(info, csrf_for(token), session.token_hash, now + self.lifetime), token

    def session(self, token: str | None) -> ConsoleSession | None:
        """The session this cookie value opens, if it is known, not expired (idle or absolute)
        and its operator enabled; counts as activity."""
        if not token or len(token) > 200:
            return None
        now = datetime.now(timezone.utc)
        token_hash = _hash(token)
        with self.db.session() as s:
            row = s.execute(select(OperatorSession, Operator).join(Operator, Operator.id == OperatorSession.operator_id)
                            .where(OperatorSession.token_hash == token_hash)).first()
            if row is None:
                return None
            sess, op = row
            if not op.enabled or _aware(sess.expires_at) <= now or _aware(sess.last_seen_at) + self.idle <= now:
                s.delete(sess)
                return None
            if now - _aware(sess.last_seen_at) > timedelta(seconds=30):  # one write a half-minute at most
                sess.last_seen_at = now
            return ConsoleSession(self._info(op), csrf_for(token), token_hash, _aware(sess.expires_at))

    def logout(self, session: ConsoleSession) -> None:
        with self.db.session() as s:
            s.execute(delete(OperatorSession).where(OperatorSession.token_hash == session.token_hash))
        self.audit.append("operator.logout", actor=session.operator.actor, subject=session.operator.actor,
                          details={"session": session.token_hash[:16]})

    # -- console actions that no other core service records ----------------------------------------
    def audit_verified(self, session: ConsoleSession, *, events: int, problems: int, checkpoints: int) -> None:
        """The operator ran the audit log's verification from the console."""
        self.audit.append("audit.verified", actor=session.operator.actor, subject="audit_log",
                          details={"events": events, "problems": problems, "checkpoints": checkpoints})
