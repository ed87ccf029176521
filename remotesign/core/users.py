"""End users (signers): natural and legal persons, their passwords and login lockout.

A user enrolled by a relying party belongs to it (``tenant_id``): only that relying party sees the
user, and the user can only consent to that relying party's requests. Users enrolled by the operator
(``tenant_id`` None) are service-wide, like citizens of a national signing service.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import or_, select

from remotesign.storage.audit import AuditLog
from remotesign.core.kdf import DEFAULT_LOG2_N, dummy_verify, hash_secret, verify_secret
from remotesign.storage.db import Database
from remotesign.storage.models import EndUser
from remotesign.storage.tenancy import owned_by

KINDS = ("natural", "legal")
_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{1,200}$")
MIN_PASSWORD = 8


class UserError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class LoginFailed(UserError):
    """Wrong user name or password, or a disabled user (one answer: do not tell which)."""


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

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "username": self.username, "display_name": self.display_name, "kind": self.kind,
                "email": self.email, "phone": self.phone, "serial_number": self.serial_number,
                "enabled": self.enabled, "has_password": self.has_password, "service_wide": self.tenant_id is None,
                "locked_until": self.locked_until.isoformat() if self.locked_until else None,
                "created_at": self.created_at.isoformat()}


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)


def _info(u: EndUser) -> UserInfo:
    return UserInfo(id=u.id, tenant_id=u.tenant_id, username=u.username, display_name=u.display_name, kind=u.kind,
                    email=u.email, phone=u.phone, serial_number=u.serial_number, enabled=u.enabled,
                    has_password=u.password_hash is not None, locked_until=_aware(u.locked_until),
                    created_at=_aware(u.created_at) or u.created_at)


def visible_to(tenant_id: str) -> object:
    """Users a relying party may send to the consent page: its own and the service-wide ones."""
    return or_(EndUser.tenant_id.is_(None), EndUser.tenant_id == tenant_id)


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
    def __init__(self, db: Database, audit: AuditLog, *, max_attempts: int = 5, lock_seconds: int = 900,
                 kdf_log2_n: int = DEFAULT_LOG2_N) -> None:
        self.db = db
        self.audit = audit
        self.max_attempts = max_attempts
        self.lock_seconds = lock_seconds
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
        user = EndUser(id=str(uuid.uuid4()), tenant_id=tenant_id, username=username, display_name=display_name.strip(),
                       kind=kind, email=email, phone=phone, serial_number=serial_number,
                       password_hash=hash_secret(password, self.kdf_log2_n) if password is not None else None,
                       password_failures=0, enabled=True, created_at=datetime.now(timezone.utc))
        with self.db.session() as s:
            if s.scalar(select(EndUser.id).where(EndUser.username == username)) is not None:
                raise UserError("username_taken", f"user name {username!r} is taken")
            s.add(user)
        self.audit.append("user.created", actor=actor, tenant_id=tenant_id, subject=user.id,
                          details={"username": username, "kind": kind})
        return _info(user)

    def get(self, user_id: str, tenant_id: str | None) -> UserInfo:
        """The user if owned by ``tenant_id`` (None: the operator sees every user)."""
        with self.db.session() as s:
            u = _owned(s, user_id, tenant_id)
            return _info(u)

    def find(self, id_or_username: str) -> UserInfo:
        """Operator lookup by id or user name."""
        with self.db.session() as s:
            u = s.scalar(select(EndUser).where(or_(EndUser.id == id_or_username, EndUser.username == id_or_username)))
            if u is None:
                raise UserError("not_found", f"no user {id_or_username!r}")
            return _info(u)

    def list(self, tenant_id: str | None, *, all_users: bool = False) -> list[UserInfo]:
        with self.db.session() as s:
            q = select(EndUser).order_by(EndUser.created_at)
            if not all_users:
                q = q.where(owned_by(EndUser.tenant_id, tenant_id))
            return [_info(u) for u in s.scalars(q)]

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
                u.password_failures = 0
                u.locked_until = None
                changed.append("password")
            if display_name is not None and display_name.strip():
                u.display_name = display_name.strip()[:200]
                changed.append("display_name")
            info = _info(u)
        if changed:
            self.audit.append("user.updated", actor=actor, tenant_id=info.tenant_id, subject=user_id,
                              details={"changed": changed})
        return info

    def delete(self, user_id: str, tenant_id: str | None, actor: str = "operator") -> None:
        with self.db.session() as s:
            u = _owned(s, user_id, tenant_id)
            s.delete(u)
        self.audit.append("user.deleted", actor=actor, tenant_id=tenant_id, subject=user_id)

    def authenticate(self, username: str, password: str, tenant_id: str | None) -> UserInfo:
        """Password login of a user that ``tenant_id``'s client may act for (None: any user, for
        the user's own device registration). Wrong passwords count; after ``max_attempts`` in a row
        the account is locked for ``lock_seconds``."""
        now = datetime.now(timezone.utc)
        with self.db.session() as s:
            q = select(EndUser).where(EndUser.username == username)
            if tenant_id is not None:
                q = q.where(visible_to(tenant_id))
            u = s.scalar(q.with_for_update()) if len(username) <= 200 else None
            if u is None or u.password_hash is None:
                dummy_verify(self.kdf_log2_n)
                outcome, info = "unknown_user", None
            elif _aware(u.locked_until) is not None and _aware(u.locked_until) > now:  # type: ignore[operator]
                outcome, info = "locked", _info(u)
            elif not verify_secret(password, u.password_hash):
                u.password_failures += 1
                if u.password_failures >= self.max_attempts:
                    u.locked_until = now + timedelta(seconds=self.lock_seconds)
                    u.password_failures = 0
                outcome, info = "wrong_password", _info(u)
            elif not u.enabled:
                outcome, info = "disabled", _info(u)
            else:
                u.password_failures = 0
                u.locked_until = None
                outcome, info = "ok", _info(u)
        if outcome == "ok":
            assert info is not None
            self.audit.append("user.login", actor=info.id, tenant_id=tenant_id, subject=info.username)
            return info
        self.audit.append("user.login_refused", actor=username[:200], tenant_id=tenant_id,
                          subject=info.id if info else "", details={"reason": outcome})
        if outcome == "locked":
            raise LoginFailed("locked", "too many wrong passwords; try again later")
        raise LoginFailed("login_failed", "wrong user name or password")
