"""One schedule for every webhook the service sends: claiming a due delivery for one attempt,
recording its outcome, backing off, giving up.

A source (asynchronous signature requests, batches) keeps its callback in five columns of its own
table -- ``callback_url``, ``callback_status`` (none / pending / delivered / failed),
``callback_attempts``, ``callback_next_at``, ``callback_error`` -- next to the state the callback
reports, so scheduling it is part of the same transaction that finishes the work (nothing is
finished without its callback due, nothing is announced that did not finish). This module is the
one implementation over those columns; request_runner.py delivers what any source has due, through
the job queue when there is one, and each source only says what its body holds.

A claim moves ``callback_next_at`` to the end of a lease: another process sees the callback again
only if this attempt's process died. An attempt's outcome is recorded only while it is still
pending, so a late duplicate cannot undo a recorded delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import select, update

from remotesign.storage.audit import AuditLog
from remotesign.storage.db import Database

MAX_BACKOFF_SECONDS = 600.0


@dataclass(frozen=True)
class Callback:
    """One delivery attempt of one source's callback."""

    source: str        # which source: its name in the runner's table (signature_request, batch)
    subject_id: str    # the request's or batch's id
    tenant_id: str
    url: str
    attempt: int


class CallbackSource(Protocol):
    """What the runner needs of a source of callbacks."""

    def claim_callbacks(self, limit: int = 16) -> list[Callback]: ...

    def callback_body(self, c: Callback) -> bytes: ...

    def callback_outcome(self, c: Callback, error: str | None) -> str: ...


MAX_URL_CHARS = 2000


def is_callback_url(url: str) -> bool:
    """An absolute http(s) URL of reasonable length. Where it may point (no private addresses
    unless allowed) is checked at each delivery, when its name is resolved (notify/webhooks.py)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return len(url) <= MAX_URL_CHARS and parts.scheme in ("http", "https") and bool(parts.hostname)


def due_now() -> dict[str, Any]:
    """The column values that make a callback due at once (set with the state it reports)."""
    return {"callback_status": "pending", "callback_next_at": datetime.now(timezone.utc)}


class CallbackSchedule:
    """The callback columns of one table (``model``, keyed by ``id``, owned by ``tenant_id``)."""

    def __init__(self, db: Database, audit: AuditLog, model: Any, source: str, *, max_attempts: int = 8,
                 backoff: float = 2.0, lease: float = 60.0) -> None:
        self.db = db
        self.audit = audit
        self.model = model
        self.source = source
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.lease = lease

    def claim(self, limit: int) -> list[Callback]:
        """Callbacks due now, each claimed for one delivery attempt."""
        m = self.model
        now = datetime.now(timezone.utc)
        until = now + timedelta(seconds=self.lease)
        with self.db.session() as s:
            due = s.execute(select(m.id, m.tenant_id, m.callback_url, m.callback_attempts, m.callback_next_at)
                            .where(m.callback_status == "pending", m.callback_next_at <= now)
                            .order_by(m.callback_next_at).limit(limit)).all()
            claimed = []
            for subject_id, tenant_id, url, attempts, next_at in due:
                moved = s.execute(update(m).where(m.id == subject_id, m.callback_status == "pending",
                                                  m.callback_next_at == next_at)
                                  .values(callback_next_at=until)).rowcount
                if moved == 1:
                    claimed.append(Callback(self.source, subject_id, tenant_id, url or "", attempts + 1))
        return claimed

    def record(self, c: Callback, error: str | None) -> str:
        """Record one attempt: delivered, retried later (doubling backoff, at most ten minutes
        apart), or failed for good after ``max_attempts``; audited when final. Returns the status."""
        now = datetime.now(timezone.utc)
        if error is None:
            values: dict[str, Any] = {"callback_status": "delivered", "callback_attempts": c.attempt,
                                      "callback_error": None, "callback_next_at": None}
        elif c.attempt >= self.max_attempts:
            values = {"callback_status": "failed", "callback_attempts": c.attempt, "callback_error": error[:2000],
                      "callback_next_at": None}
        else:
            delay = min(self.backoff * 2 ** (c.attempt - 1), MAX_BACKOFF_SECONDS)
            values = {"callback_attempts": c.attempt, "callback_error": error[:2000],
                      "callback_next_at": now + timedelta(seconds=delay)}
        m = self.model
        with self.db.session() as s:
            s.execute(update(m).where(m.id == c.subject_id, m.callback_status == "pending").values(**values))
        status: str = values.get("callback_status", "pending")
        if status != "pending":
            self.audit.append(f"{self.source}.callback_{status}", actor="service", tenant_id=c.tenant_id,
                              subject=c.subject_id, details={"attempts": c.attempt, "error": error})
        return status
