"""End users (signers): natural and legal persons, their passwords and login lockout.

A user enrolled by a relying party belongs to it (``tenant_id``): only that relying party sees the
user, and the user can only consent to that relying party's requests. Users enrolled by the operator
(``tenant_id`` None) are service-wide, like citizens of a national signing service. User names are
unique per relying party, so one relying party cannot learn another's users by probing names.

Secrets are the signer's alone: a relying party enrols users but never sets or reads a password or
PIN; the user chooses them on the service's activation page with a one-time code delivered out of
band (``core.activation``). Wrong passwords lock the account for longer and longer
(``lock_schedule``), then for good until a reset through the user's own channel; callers that are
not the user learn nothing from a refusal (unknown, locked, disabled and wrong all read the same).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import or_, select, update

import hashlib

from remotesign.storage.audit import AuditLog
from remotesign.keystore.kdf import DEFAULT_LOG2_N, dummy_verify, hash_secret, verify_secret
from remotesign.core.throttle import settle_password_try
from remotesign.storage.db import Database
from remotesign.storage import text_search
from remotesign.storage.models import EndUser, Tenant
from remotesign.storage.tenancy import owned_by
from remotesign.storage.times import aware as _aware

KINDS = ("natural", "legal")
SERVICE_WIDE = "service-wide"  # the owner of users no relying party owns, as the operator reads it
STATES = ("locked", "disabled")  # what ``UserService.search`` can narrow to
_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{1,200}$")
MIN_PASSWORD = 8


class UserError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class LoginFailed(UserError):
    """Wrong user name or password, a locked or a disabled user: one answer, do not tell which.
    ``reason`` is for the audit log only."""

    def __init__(self, reason: str = "login_failed") -> None:
        super().__init__("login_failed", "wrong user name or password")
        self.reason = reason


@dataclass(frozen=True)
class UserInfo:
    id: str
    tenant_id: str | None
    username: str
    display_name: str
    kind: str
    email: str | None
    phone: str | None
    serial_number: str | None
    enabled: bool
    has_password: bool
    locked_until: datetime | None
    created_at: datetime
    lock_level: int = 0
    locked_permanently: bool = False
    activated: bool = False
    has_pin: bool = False

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "username": self.username, "display_name": self.display_name, "kind": self.kind,
                "email": self.email, "phone": self.phone, "serial_number": self.serial_number,
                "enabled": self.enabled, "has_password": self.has_password, "service_wide": self.tenant_id is None,
                "locked_until": self.locked_until.isoformat() if self.locked_until else None,
                "locked_permanently": self.locked_permanently, "activated": self.activated,
                "created_at": self.created_at.isoformat()}



PERMANENT_LOCK = "permanent"


def _info(u: EndUser, schedule: tuple[int, ...] = ()) -> UserInfo:
    level = u.lock_level or 0
    return UserInfo(id=u.id, tenant_id=u.tenant_id, username=u.username, display_name=u.display_name, kind=u.kind,
                    email=u.email, phone=u.phone, serial_number=u.serial_number, enabled=u.enabled,
                    has_password=u.password_hash is not None, locked_until=_aware(u.locked_until),
                    created_at=_aware(u.created_at) or u.created_at, lock_level=level,
                    locked_permanently=bool(schedule) and level > len(schedule),
                    activated=u.activated_at is not None, has_pin=u.pin_hash is not None)


def username_fingerprint(username: str) -> str:
    """What the audit log keeps of a name typed at a failed login: never the text itself (it may
    be a password typed in the wrong field), only a short hash to correlate attempts."""
    return "sha256:" + hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()[:16]


def visible_to(tenant_id: str) -> object:
    """Users a relying party may send to the consent page: its own and the service-wide ones."""
    return or_(EndUser.tenant_id.is_(None), EndUser.tenant_id == tenant_id)


def owner_named(tenant_column: Any, wanted: str) -> Any:
    """The owner in ``tenant_column`` has ``wanted`` (lower case) in its name: a relying party's
    name, or ``SERVICE_WIDE`` for rows no relying party owns (a search of the operator's lists)."""
    named = tenant_column.in_(select(Tenant.id).where(text_search.contains(Tenant.name, wanted)))
    return or_(named, tenant_column.is_(None)) if wanted in SERVICE_WIDE else named


def check_password_quality(password: str) -> None:
    if len(password) < MIN_PASSWORD or len(password) > 1024:
        raise UserError("weak_password", f"a password has {MIN_PASSWORD} to 1024 characters")


def _owned(s: Any, user_id: str, tenant_id: str | None) -> EndUser:
    """The user row if ``tenant_id`` owns it (None: the operator, who sees every user)."""
    q = select(EndUser).where(EndUser.id == user_id)
    if tenant_id is not None:
        q = q.where(owned_by(EndUser.tenant_id, tenant_id))
    u = s.scalar(q)
    if u is None:
        raise UserError("not_found", f"no user {user_id}")
    return u  # type: ignore[no-any-return]


class UserService:
    def __init__(self, db: Database, audit: AuditLog, *, max_attempts: int = 5,
                 lock_schedule: tuple[int, ...] = (900, 3600, 86400), kdf_log2_n: int = DEFAULT_LOG2_N) -> None:
        self.db = db
        self.audit = audit
        self.max_attempts = max_attempts
        self.lock_schedule = lock_schedule
        self.kdf_log2_n = kdf_log2_n

    def create(self, *, tenant_id: str | None, username: str, display_name: str, kind: str = "natural",
               password: str | None = None, email: str | None = None, phone: str | None = None,
               serial_number: str | None = None, actor: str = "operator") -> UserInfo:
        if not _USERNAME.match(username):
            raise UserError("invalid_username", "a user name has 1-200 letters, digits or . _ @ + -")
        if kind not in KINDS:
            raise UserError("invalid_kind", "kind is natural or legal")
        if not display_name.strip() or len(display_name) > 200:
            raise UserError("invalid_name", "display_name is required (at most 200 characters)")
        if password is not None:
            check_password_quality(password)
        now = datetime.now(timezone.utc)
        user = EndUser(id=str(uuid.uuid4()), tenant_id=tenant_id, username=username, display_name=display_name.strip(),
                       kind=kind, email=email, phone=phone, serial_number=serial_number,
                       password_hash=hash_secret(password, self.kdf_log2_n) if password is not None else None,
                       password_failures=0, lock_level=0, enabled=True, created_at=now,
                       activated_at=now if password is not None else None)
        with self.db.session() as s:
            taken = select(EndUser.id).where(EndUser.username == username)
            taken = taken.where(EndUser.tenant_id.is_(None) if tenant_id is None else EndUser.tenant_id == tenant_id)
            if s.scalar(taken) is not None:
                raise UserError("username_taken", f"user name {username!r} is taken")
            s.add(user)
        self.audit.append("user.created", actor=actor, tenant_id=tenant_id, subject=user.id,
                          details={"username": username, "kind": kind})
        return _info(user)

    def get(self, user_id: str, tenant_id: str | None) -> UserInfo:
        """The user if owned by ``tenant_id`` (None: the operator sees every user)."""
        with self.db.session() as s:
            u = _owned(s, user_id, tenant_id)
            return _info(u, self.lock_schedule)

    def find(self, id_or_username: str) -> UserInfo:
        """Operator lookup by id or user name (a name two relying parties use is ambiguous)."""
        with self.db.session() as s:
            found = s.scalars(select(EndUser).where(
                or_(EndUser.id == id_or_username, EndUser.username == id_or_username)).limit(2)).all()
            if not found:
                raise UserError("not_found", f"no user {id_or_username!r}")
            if len(found) > 1:
                raise UserError("ambiguous", f"several relying parties have a user {id_or_username!r}; give the id")
            return _info(found[0], self.lock_schedule)

    def by_username(self, username: str, tenant_id: str | None) -> UserInfo:
        """The user named ``username`` among ``tenant_id``'s own (a relying party addressing its
        users by their code); another relying party's user is not found, as if it did not exist."""
        with self.db.session() as s:
            u = s.scalars(select(EndUser).where(EndUser.username == username,
                                                owned_by(EndUser.tenant_id, tenant_id))).first()
            if u is None:
                raise UserError("not_found", f"no user {username[:100]!r}")
            return _info(u, self.lock_schedule)

    def list(self, tenant_id: str | None, *, all_users: bool = False) -> list[UserInfo]:
        with self.db.session() as s:
            q = select(EndUser).order_by(EndUser.created_at)
            if not all_users:
                q = q.where(owned_by(EndUser.tenant_id, tenant_id))
            return [_info(u, self.lock_schedule) for u in s.scalars(q)]

    def search(self, tenant_id: str | None, *, all_users: bool = False, text: str | None = None,
               state: str | None = None, offset: int = 0, limit: int = 100,
               now: datetime | None = None) -> tuple[list[UserInfo], int]:
        """One page of ``list``'s users (oldest first, the same owners) and how many match in all,
        filtered in SQL: ``text`` in the user name, display name, e-mail, phone, serial number, id
        or the owner's name (``SERVICE_WIDE`` for users no relying party owns), case-insensitive
        and literal (``%`` and ``_`` are plain characters); ``state`` ``locked`` (a login lock in
        force now, or one for good) or ``disabled``. ``limit`` 0 only counts."""
        if state is not None and state not in STATES:
            raise UserError("invalid_state", f"state is one of {', '.join(STATES)}")
        q = select(EndUser).order_by(EndUser.created_at, EndUser.id)
        if not all_users:
            q = q.where(owned_by(EndUser.tenant_id, tenant_id))
        wanted = text_search.needle(text)
        if wanted is not None:
            q = q.where(or_(text_search.any_contains(wanted, EndUser.username, EndUser.display_name, EndUser.email,
                                                     EndUser.phone, EndUser.serial_number, EndUser.id),
                            owner_named(EndUser.tenant_id, wanted)))
        if state == "locked":
            in_force = EndUser.locked_until > (now or datetime.now(timezone.utc))
            q = q.where(or_(in_force, EndUser.lock_level > len(self.lock_schedule)) if self.lock_schedule
                        else in_force)
        elif state == "disabled":
            q = q.where(EndUser.enabled.is_(False))
        with self.db.session() as s:
            rows, total = text_search.page(s, q, offset, limit)
            return [_info(r[0], self.lock_schedule) for r in rows], total

    def get_many(self, user_ids: Iterable[str]) -> dict[str, UserInfo]:
        """The operator's lookup of the users with these ids (the ones that exist), by id."""
        wanted = sorted(set(user_ids))
        found: dict[str, UserInfo] = {}
        with self.db.session() as s:
            for start in range(0, len(wanted), 500):
                for u in s.scalars(select(EndUser).where(EndUser.id.in_(wanted[start:start + 500]))):
                    found[u.id] = _info(u, self.lock_schedule)
        return found

    def update(self, user_id: str, tenant_id: str | None, *, enabled: bool | None = None,
               password: str | None = None, display_name: str | None = None, actor: str = "operator") -> UserInfo:
        """Enable / disable, set a new password (also unlocks), rename."""
        if password is not None:
            check_password_quality(password)
        with self.db.session() as s:
            u = _owned(s, user_id, tenant_id)
            changed = []
            if enabled is not None and enabled != u.enabled:
                u.enabled = enabled
                changed.append("enabled" if enabled else "disabled")
            if password is not None:
                u.password_hash = hash_secret(password, self.kdf_log2_n)
                u.password_failures, u.locked_until, u.lock_level = 0, None, 0
                u.activated_at = u.activated_at or datetime.now(timezone.utc)
                changed.append("password")
            if display_name is not None and display_name.strip():
                u.display_name = display_name.strip()[:200]
                changed.append("display_name")
            info = _info(u, self.lock_schedule)
        if changed:
            self.audit.append("user.updated", actor=actor, tenant_id=info.tenant_id, subject=user_id,
                              details={"changed": changed})
        return info

    def unlock(self, user_id: str, *, actor: str) -> UserInfo:
        """The operator lifts a login lock (also one for good) without touching the password."""
        with self.db.session() as s:
            u = _owned(s, user_id, None)
            was = {"lock_level": u.lock_level or 0, "failures": u.password_failures or 0}
            u.password_failures, u.locked_until, u.lock_level = 0, None, 0
            info = _info(u, self.lock_schedule)
        self.audit.append("user.unlocked", actor=actor, tenant_id=info.tenant_id, subject=user_id, details=was)
        return info

    def delete(self, user_id: str, tenant_id: str | None, actor: str = "operator") -> None:
        with self.db.session() as s:
            u = _owned(s, user_id, tenant_id)
            s.delete(u)
        self.audit.append("user.deleted", actor=actor, tenant_id=tenant_id, subject=user_id)

    def authenticate(self, username: str, password: str, tenant_id: str | None) -> UserInfo:
        """Password login of a user that ``tenant_id``'s client may act for: its own users first,
        then service-wide ones (None: service-wide users only). Wrong passwords count; after
        ``max_attempts`` in a row the account locks for the next step of ``lock_schedule``, and
        after the last step for good. Every refusal raises the same LoginFailed."""
        now = datetime.now(timezone.utc)
        tried = 0
        with self.db.session() as s:
            u = None
            if 0 < len(username) <= 200:
                q = select(EndUser).where(EndUser.username == username)
                q = q.where(visible_to(tenant_id) if tenant_id is not None else EndUser.tenant_id.is_(None))
                q = q.order_by(EndUser.tenant_id.is_(None)).limit(1)
                u = s.scalar(q)
            locked_until = _aware(u.locked_until) if u is not None else None
            if u is None or u.password_hash is None:
                outcome, info = ("unknown_user" if u is None else "not_activated"), None
            elif u.lock_level > len(self.lock_schedule):
                outcome, info = "locked_permanently", _info(u, self.lock_schedule)
            elif locked_until is not None and locked_until > now:
                outcome, info = "locked", _info(u, self.lock_schedule)
            else:
                # a try is reserved before the password is checked, in this short transaction, and
                # given back when it was right: concurrent tries never check more than are left
                s.execute(update(EndUser).where(EndUser.id == u.id)
                          .values(password_failures=EndUser.password_failures + 1))
                s.refresh(u)
                tried, password_hash, user_id = u.password_failures, u.password_hash, u.id
                outcome = "check" if tried <= self.max_attempts else "locked"
                info = _info(u, self.lock_schedule)
        if outcome != "check":
            dummy_verify(self.kdf_log2_n)
        else:
            right = verify_secret(password, password_hash)
            with self.db.session() as s:
                u = s.get(EndUser, user_id)
                assert u is not None
                outcome = settle_password_try(u, right, tried, self.max_attempts, self.lock_schedule, now)
                if outcome == "ok" and not u.enabled:
                    outcome = "disabled"
                info = _info(u, self.lock_schedule)
        if outcome == "ok":
            assert info is not None
            self.audit.append("user.login", actor=info.id, tenant_id=tenant_id, subject=info.username)
            return info
        self.audit.append("user.login_refused", actor=info.id if info else "anonymous", tenant_id=tenant_id,
                          subject=info.id if info else "",
                          details={"reason": outcome, "lock_level": info.lock_level if info else None,
                                   **({} if info else {"username": username_fingerprint(username)})})
        raise LoginFailed(outcome)

    def set_password(self, user_id: str, password: str, *, actor: str) -> UserInfo:
        """The user's own new password (activation or reset): lifts every lock."""
        check_password_quality(password)
        return self.update(user_id, None, password=password, actor=actor)

    def set_pin(self, user_id: str, pin_hash: str, *, actor: str) -> None:
        """Remember the PIN the user chose (hashed): each identity created later starts with it."""
        with self.db.session() as s:
            u = _owned(s, user_id, None)
            u.pin_hash = pin_hash
            tenant_id = u.tenant_id
        self.audit.append("user.updated", actor=actor, tenant_id=tenant_id, subject=user_id,
                          details={"changed": ["pin"]})

    def pin_hash(self, user_id: str) -> str | None:
        with self.db.session() as s:
            return _owned(s, user_id, None).pin_hash  # type: ignore[no-any-return]
