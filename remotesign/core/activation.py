"""One-time codes that put a signer's secrets in the signer's hands (EN 419 241-1 SCAL2).

A relying party enrols a user but never sets or learns the password or the signing PIN. The
service issues a one-time code and delivers it out of band: by e-mail to the address on file, or
to the operator's CLI once. With it the user chooses password and PIN on the service's own page
(``activate``; ``reset`` later lifts every lock), or pairs an approval device (``device``). Codes
are stored hashed, expire, are spent by their first use, and a newer code of the same purpose
replaces an older one. Guessing is bounded by ~98 bits per code and the per-address throttle.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from sqlalchemy import select, update

from remotesign.core.devices import DeviceInfo, DeviceService, load_device_key
from remotesign.core.errors import CoreError
from remotesign.core.identities import IdentityService, check_pin
from remotesign.keystore.kdf import hash_secret
from remotesign.core.throttle import AttemptThrottle
from remotesign.core.users import UserInfo, UserService, check_password_quality
from remotesign.storage.audit import AuditLog
from remotesign.storage.db import Database
from remotesign.storage.models import ActivationCode

PURPOSES = ("activate", "reset", "device")
_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: read aloud and typed by people
CODE_CHARS = 20


class ActivationError(CoreError):
    """An unknown, used, expired or wrong-purpose code (one answer for all), or no channel."""


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True)
class Completed:
    """The outcome of an activation or reset: the user, and a fresh device-pairing code shown
    once to the user on the page (the page is the user's own channel)."""

    user: UserInfo
    purpose: str
    device_code: str


def normalize(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())[:64]


def _hash(code: str) -> str:
    return hashlib.sha256(normalize(code).encode()).hexdigest()


def new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(CODE_CHARS))
    return "-".join(raw[i:i + 5] for i in range(0, CODE_CHARS, 5))


class ActivationService:
    def __init__(self, db: Database, audit: AuditLog, users: UserService, identities: IdentityService,
                 devices: DeviceService, throttle: AttemptThrottle, *, mailer: Mailer | None,
                 base_url: Callable[[], str], ttl_seconds: dict[str, int], kdf_log2_n: int) -> None:
        self.db = db
        self.audit = audit
        self.users = users
        self.identities = identities
        self.devices = devices
        self.throttle = throttle
        self.mailer = mailer
        self.base_url = base_url
        self.ttl_seconds = ttl_seconds
        self.kdf_log2_n = kdf_log2_n

    # -- issuing ----------------------------------------------------------------------------------
    def _issue(self, user: UserInfo, purpose: str, channel: str, actor: str) -> str:
        if purpose not in PURPOSES:
            raise ActivationError("invalid_request", f"purpose is one of {', '.join(PURPOSES)}")
        code = new_code()
        now = datetime.now(timezone.utc)
        with self.db.session() as s:
            s.execute(update(ActivationCode)  # a newer code replaces older ones of its purpose
                      .where(ActivationCode.user_id == user.id, ActivationCode.purpose == purpose,
                             ActivationCode.used_at.is_(None))
                      .values(used_at=now))
            s.add(ActivationCode(id=str(uuid.uuid4()), user_id=user.id, purpose=purpose, code_hash=_hash(code),
                                 channel=channel, created_by=actor[:200], created_at=now,
                                 expires_at=now + timedelta(seconds=self.ttl_seconds[purpose])))
        self.audit.append("activation.code_issued", actor=actor, tenant_id=user.tenant_id, subject=user.id,
                          details={"purpose": purpose, "channel": channel})
        return code

    def issue_for_operator(self, user: UserInfo, purpose: str, *, actor: str = "operator") -> str:
        """A code printed once by the operator's CLI, to hand to the user in person or by letter."""
        return self._issue(user, purpose, "operator", actor)

    @property
    def email_enabled(self) -> bool:
        return self.mailer is not None

    def send(self, user: UserInfo, purpose: str, *, actor: str) -> str:
        """Send a code to the user's own e-mail address; returns the channel used. The caller
        (a relying party) never sees the code. Without an address or a mail server, the operator
        has to issue one (``remotesign users activation-code``)."""
        if self.mailer is None:
            raise ActivationError("no_channel", "this service sends no e-mail; the operator issues the code "
                                  "(remotesign users activation-code)", 409)
        if not user.email:
            raise ActivationError("no_channel", "the user has no e-mail address; the operator issues the code "
                                  "(remotesign users activation-code)", 409)
        code = self._issue(user, purpose, "email", actor)
        subject, body = self._message(user, purpose, code)
        try:
            self.mailer.send(user.email, subject, body)
        except Exception as exc:  # noqa: BLE001 - any mail failure: the code is void, the caller told
            self._void(code)
            self.audit.append("activation.mail_failed", actor=actor, tenant_id=user.tenant_id, subject=user.id,
                              details={"purpose": purpose, "error": str(exc)[:200]})
            raise ActivationError("channel_unavailable", "the e-mail could not be sent; try again later", 503) from exc
        return "email"

    def _message(self, user: UserInfo, purpose: str, code: str) -> tuple[str, str]:
        hours = self.ttl_seconds[purpose] // 3600
        valid = f"{hours} hours" if hours >= 1 else f"{self.ttl_seconds[purpose] // 60} minutes"
        if purpose == "device":
            return ("Pair your signing approval app",
                    f"Hello {user.display_name},\n\nenter this code in your approval app to pair it with your "
                    f"signing account ({user.username}):\n\n    {code}\n\nIt is valid for {valid} and works once. "
                    "If you did not ask for it, ignore this message.\n")
        link = f"{self.base_url()}/account/activate?code={code.replace('-', '')}"
        what = "activate your signing account" if purpose == "activate" else "choose a new password and signing PIN"
        return ("Your signing account" if purpose == "activate" else "Reset your signing account",
                f"Hello {user.display_name},\n\nto {what} ({user.username}), open\n\n    {link}\n\n"
                f"or enter the code {code} on {self.base_url()}/account/activate\n\nIt is valid for {valid} and "
                "works once. Nobody else, not even the service that enrolled you, learns your password or PIN.\n"
                "If you did not expect this message, ignore it.\n")

    def _void(self, code: str) -> None:
        with self.db.session() as s:
            s.execute(update(ActivationCode).where(ActivationCode.code_hash == _hash(code))
                      .values(used_at=datetime.now(timezone.utc)))

    # -- redeeming --------------------------------------------------------------------------------
    def _spend(self, code: str, purposes: tuple[str, ...], source_keys: list[str]) -> ActivationCode:
        """Spend a valid code of one of ``purposes`` or raise one error for every failure."""
        self.throttle.check(source_keys)
        now = datetime.now(timezone.utc)
        wanted = _hash(code)
        with self.db.session() as s:
            rec = s.scalar(select(ActivationCode).where(ActivationCode.code_hash == wanted))
            ok = (rec is not None and hmac.compare_digest(rec.code_hash, wanted) and rec.purpose in purposes
                  and rec.used_at is None and (rec.expires_at if rec.expires_at.tzinfo
                                               else rec.expires_at.replace(tzinfo=timezone.utc)) > now)
            if ok:
                assert rec is not None
                ok = s.execute(update(ActivationCode).where(ActivationCode.id == rec.id,
                                                            ActivationCode.used_at.is_(None))
                               .values(used_at=now)).rowcount == 1
            if ok:
                assert rec is not None
                s.expunge(rec)
        if not ok:
            self.throttle.failed(source_keys)
            self.audit.append("activation.refused", actor="anonymous", subject="",
                              details={"purposes": list(purposes), "sources": [k.split(":", 1)[0] for k in source_keys]})
            raise ActivationError("invalid_code", "the code is unknown, used or expired", 400)
        return rec  # type: ignore[return-value]

    def peek(self, code: str) -> str | None:
        """The purpose of a valid, unused code (for the page's wording), without spending it."""
        with self.db.session() as s:
            rec = s.scalar(select(ActivationCode).where(ActivationCode.code_hash == _hash(code)))
            if rec is None or rec.used_at is not None:
                return None
            expires = rec.expires_at if rec.expires_at.tzinfo else rec.expires_at.replace(tzinfo=timezone.utc)
            return rec.purpose if expires > datetime.now(timezone.utc) else None

    def complete(self, code: str, password: str, pin: str, *, source_keys: list[str]) -> Completed:
        """Activation or reset: the user's own password and PIN, every lock lifted."""
        check_password_quality(password)
        check_pin(pin)
        rec = self._spend(code, ("activate", "reset"), source_keys)
        user = self.users.get(rec.user_id, None)
        actor = user.id
        self.users.set_password(user.id, password, actor=actor)
        pin_hash = hash_secret(pin, self.kdf_log2_n)
        self.users.set_pin(user.id, pin_hash, actor=actor)
        changed = self.identities.set_user_pin(user.id, pin_hash, actor=actor, tenant_id=user.tenant_id)
        self.audit.append("user.activated" if rec.purpose == "activate" else "user.reset", actor=actor,
                          tenant_id=user.tenant_id, subject=user.id,
                          details={"channel": rec.channel, "identities": changed})
        device_code = self._issue(user, "device", "activation_page", actor)
        return Completed(self.users.get(user.id, None), rec.purpose, device_code)

    def pair_device(self, code: str, public_key: str, name: str, *, source_keys: list[str]) -> tuple[DeviceInfo, str]:
        """Register an approval device with a device code (never with the password alone)."""
        self.throttle.check(source_keys)
        load_device_key(public_key)  # a malformed key must not burn the code
        rec = self._spend(code, ("device",), source_keys)
        user = self.users.get(rec.user_id, None)
        if not user.enabled:
            raise ActivationError("invalid_code", "the code is unknown, used or expired", 400)
        return self.devices.register(user, public_key, name)  # type: ignore[no-any-return]
