"""Messages to signers (passcodes, one-time codes) sent in the background, retried, and recorded.

An API call that must notify a signer hands the message to ``Outbox.send`` and answers at once:
a worker thread delivers it by e-mail (notify/smtp.py) or SMS (notify/sms.py), retrying with a
doubling back-off, and every outcome is a ``notifications`` row and an audit event
(``notification.sent`` / ``notification.failed``) naming the masked address, never the text.

The text carries a secret, so it lives only in this process's memory: it is never written to
the database. A message still queued when its process died cannot be sent by anyone else; the
background leader's sweep marks it ``lost`` and audits that, and the signer asks again (a new
one-time code, a passcode reset). A process on this host is seen to be gone at once; one on
another node (whose processes this host cannot see) after ``LOST_AFTER_SECONDS``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from sqlalchemy import select, update

from remotesign.storage import process_id
from remotesign.storage.audit import AuditLog
from remotesign.storage.db import Database
from remotesign.storage.models import Notification
from remotesign.storage.times import aware

log = logging.getLogger("remotesign.notify")
CHANNELS = ("email", "sms")
LOST_AFTER_SECONDS = 3600  # far beyond every retry and timeout of a delivery


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


class SmsGateway(Protocol):
    def send(self, to: str, text: str) -> None: ...


class NoChannel(Exception):
    """The service has no way to send on this channel (no SMTP server or SMS gateway configured)."""


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(number: str) -> str:
    return f"***{number[-3:]}" if len(number) > 3 else "***"


@dataclass(frozen=True)
class Message:
    id: str
    channel: str
    to: str
    subject: str
    text: str
    purpose: str
    tenant_id: str | None
    subject_ref: str


class Outbox:
    def __init__(self, db: Database, audit: AuditLog, mailer: Mailer | None, sms: SmsGateway | None, *,
                 max_attempts: int = 5, backoff_seconds: float = 2.0) -> None:
        self.db = db
        self.audit = audit
        self.mailer = mailer
        self.sms = sms
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff_seconds
        self._owner = str(process_id.current())
        self._queue: queue.Queue[Message] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._unfinished = 0
        self._done = threading.Condition()

    def can_send(self, channel: str) -> bool:
        return (self.mailer if channel == "email" else self.sms) is not None

    def send(self, *, channel: str, to: str, subject: str, text: str, purpose: str, tenant_id: str | None,
             subject_ref: str) -> str:
        """Queue ``text`` for ``to``; returns the notification's id. Raises NoChannel when the
        service cannot send on ``channel`` (the caller answers that, nothing is queued)."""
        if channel not in CHANNELS or not self.can_send(channel):
            raise NoChannel(f"this service sends no {'e-mail' if channel == 'email' else 'SMS'}")
        message = Message(str(uuid.uuid4()), channel, to, subject, text, purpose, tenant_id, subject_ref)
        with self.db.session() as s:
            s.add(Notification(id=message.id, tenant_id=tenant_id, subject_ref=subject_ref[:64], purpose=purpose[:40],
                               channel=channel, recipient=self._masked(message)[:200], status="queued", attempts=0,
                               owner=self._owner, created_at=datetime.now(timezone.utc)))
        with self._done:
            self._unfinished += 1
        self._queue.put(message)
        self._start()
        return message.id

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until every message queued by this process was sent or given up (a short-lived
        process, such as the operator's CLI, calls this before it exits). False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: self._unfinished == 0, timeout)

    @staticmethod
    def _masked(message: Message) -> str:
        return mask_email(message.to) if message.channel == "email" else mask_phone(message.to)

    def _start(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="remotesign-outbox", daemon=True)
                self._worker.start()

    def _run(self) -> None:
        while True:
            message = self._queue.get()
            try:
                self._deliver(message)
            except Exception:  # noqa: BLE001 - the worker outlives any one message
                log.exception("notification %s could not be processed", message.id)
            finally:
                with self._done:
                    self._unfinished -= 1
                    self._done.notify_all()

    def _deliver(self, message: Message) -> None:
        error = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                if message.channel == "email":
                    assert self.mailer is not None
                    self.mailer.send(message.to, message.subject, message.text)
                else:
                    assert self.sms is not None
                    self.sms.send(message.to, message.text)
                self._finish(message, "sent", attempt, None)
                return
            except Exception as exc:  # noqa: BLE001 - any channel failure is retried, then recorded
                error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("notification %s attempt %d failed: %s", message.id, attempt, error)
                if attempt < self.max_attempts:
                    time.sleep(min(self.backoff * 2 ** (attempt - 1), 300.0))
        self._finish(message, "failed", self.max_attempts, error)

    def _finish(self, message: Message, status: str, attempts: int, error: str | None) -> None:
        with self.db.session() as s:
            s.execute(update(Notification).where(Notification.id == message.id)
                      .values(status=status, attempts=attempts, last_error=error,
                              finished_at=datetime.now(timezone.utc)))
        self.audit.append(f"notification.{status}", actor="service", tenant_id=message.tenant_id,
                          subject=message.subject_ref,
                          details={"notification": message.id, "purpose": message.purpose, "channel": message.channel,
                                   "to": self._masked(message), "attempts": attempts,
                                   **({"error": error} if error else {})})

    def sweep_lost(self, lost_after: float = LOST_AFTER_SECONDS) -> int:
        """Mark messages of dead processes that were never delivered as ``lost`` (audited): of a
        process known dead (storage/process_id.py), or of another node's process queued ``lost_after``
        seconds ago or more."""
        here = process_id.current().host
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=lost_after)

        def lost(owner: process_id.ProcessId | None, created_at: datetime) -> bool:
            if owner is not None and process_id.known_dead(owner):  # this host's, or gone silent
                return True
            if owner is not None and owner.host == here:
                return False  # alive here
            return aware(created_at) <= cutoff

        with self.db.session() as s:
            rows = s.execute(select(Notification.id, Notification.owner, Notification.tenant_id,
                                    Notification.subject_ref, Notification.purpose, Notification.created_at)
                             .where(Notification.status == "queued", Notification.owner != self._owner)).all()
            dead = [r for r in rows if lost(process_id.ProcessId.parse(r.owner), r.created_at)]
            for r in dead:
                s.execute(update(Notification).where(Notification.id == r.id, Notification.status == "queued")
                          .values(status="lost", finished_at=datetime.now(timezone.utc)))
        for r in dead:
            self.audit.append("notification.lost", actor="service", tenant_id=r.tenant_id, subject=r.subject_ref,
                              details={"notification": r.id, "purpose": r.purpose})
        return len(dead)

    def status(self, notification_id: str) -> str | None:
        with self.db.session() as s:
            return s.scalar(select(Notification.status).where(Notification.id == notification_id))
