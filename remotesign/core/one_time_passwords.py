"""One-time passwords as a signing factor: a short numeric code sent to the user's own phone (an
SMS gateway) or e-mail address, typed on the consent page. With the password of the login it
makes two factors (knowledge and possession); a request may also want it on top of the PIN.

Codes are 8 random digits, stored hashed with the authorization request they belong to, valid
for a few minutes and for at most three wrong tries; a new code replaces the old one. Sending is
rate-limited per request. Where the code goes is shown masked (``j***@example.test``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Protocol

from remotesign.core.errors import CoreError
from remotesign.core.users import UserInfo
from remotesign.notify.outbox import mask_email, mask_phone

DIGITS = 8
TTL_SECONDS = 300
MAX_FAILURES = 3
RESEND_SECONDS = 20
MAX_SENDS = 5


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


class SmsGateway(Protocol):
    def send(self, to: str, text: str) -> None: ...


class OtpError(CoreError):
    """No channel reaches the user, too many codes were sent, or a code is wrong or expired."""


def new_code() -> str:
    return f"{secrets.randbelow(10 ** DIGITS):0{DIGITS}d}"


def code_hash(request_id: str, code: str) -> str:
    """Bound to its request: the same digits never verify for another one."""
    return hashlib.sha256(f"otp:{request_id}:{code}".encode()).hexdigest()


def matches(stored_hash: str | None, request_id: str, code: str) -> bool:
    if not stored_hash or not code.isdigit() or len(code) != DIGITS:
        return False
    return hmac.compare_digest(stored_hash, code_hash(request_id, code))


class OtpSender:
    """Sends a code by SMS when a gateway is configured and the user has a phone number, else by
    e-mail when the service can mail and the user has an address."""

    def __init__(self, mailer: Mailer | None, sms: SmsGateway | None, service_name: str = "remotesign") -> None:
        self.mailer = mailer
        self.sms = sms
        self.service_name = service_name

    def can_reach(self, user: UserInfo) -> bool:
        return bool((self.sms is not None and user.phone) or (self.mailer is not None and user.email))

    def send(self, user: UserInfo, code: str, purpose: str) -> str:
        """Deliver ``code``; returns the masked destination."""
        text = (f"{code} is your {self.service_name} one-time code to {purpose}. It is valid for "
                f"{TTL_SECONDS // 60} minutes. Nobody from the service will ask you for it.")
        try:
            if self.sms is not None and user.phone:
                self.sms.send(user.phone, text)
                return mask_phone(user.phone)
            if self.mailer is not None and user.email:
                self.mailer.send(user.email, f"Your one-time code: {code}", text + "\n")
                return mask_email(user.email)
        except Exception as exc:  # noqa: BLE001 - a gateway or SMTP failure is the user's answer, not a 500
            raise OtpError("otp_not_sent", f"the one-time code could not be sent ({type(exc).__name__})", 502) from exc
        raise OtpError("no_otp_channel", "the service has no way to send you a one-time code (no phone number or "
                       "e-mail address on file)", 409)
