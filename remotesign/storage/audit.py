"""Append-only, hash-chained audit log.

Each event's hash covers its content and the previous event's hash; a head row records the last
sequence number and hash. ``verify`` recomputes the chain and reports the first event where an
edit, a deletion (a gap, or a truncated tail) or a reordering shows.

The chain has no key: whoever can write the database can recompute it. audit_seal.py signs and
time-stamps checkpoints of it and audit_verify.py checks them; appending here stays one short
transaction with no key-store operation.

``append_in`` appends inside a caller's transaction instead (a signing call: token spent and
events written, committed together). It first writes the head row, which takes the chain's lock
until that transaction ends (SQLite: the database write lock; PostgreSQL: the row lock), then
reads the head fresh: no other appender can link to the same head meanwhile, and a rollback takes
the events and the head's move back together.

``pending_in`` is the same for a hot path that works with SQLAlchemy Core statements on the
session's connection (raw signing): the head is locked and read by one
``UPDATE .. RETURNING``, the events are buffered and written by ``PendingAppends.write`` as one
multi-row INSERT plus one head update, just before the caller commits.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, bindparam, event as sa_event, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from remotesign.storage.db import Database
from remotesign.storage.models import AuditEvent, AuditHead

GENESIS = "0" * 64
_PENDING = "remotesign.audit.pending"  # Session.info: its PendingAppends (append_in), until it ends


def _event_hash(seq: int, at: datetime, event: str, actor: str, tenant_id: str | None, subject: str,
                details: str, prev_hash: str) -> str:
    canonical = json.dumps(
        [seq, at.astimezone(timezone.utc).isoformat(timespec="microseconds"), event, actor, tenant_id, subject,
         details, prev_hash],
        separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _insert_head(s: Session | Connection) -> Any:
    """INSERT of the genesis head that does nothing when the row exists (a concurrent creator
    waits for the other's commit, then does nothing)."""
    values = {"id": 1, "last_seq": 0, "last_hash": GENESIS}
    dialect = s.dialect if isinstance(s, Connection) else s.get_bind().dialect
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert(AuditHead).values(**values).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    return sqlite_insert(AuditHead).values(**values).on_conflict_do_nothing()


_EVENTS = AuditEvent.__table__
_HEAD_T = AuditHead.__table__
# locks the head row (SQLite: takes the write lock; PostgreSQL: the row lock) and reads it, in one statement
_LOCK_HEAD = (update(_HEAD_T).where(_HEAD_T.c.id == 1).values(last_seq=_HEAD_T.c.last_seq)
              .returning(_HEAD_T.c.last_seq, _HEAD_T.c.last_hash))
_INSERT_EVENTS = insert(_EVENTS)
_MOVE_HEAD = (update(_HEAD_T).where(_HEAD_T.c.id == 1)
              .values(last_seq=bindparam("head_seq"), last_hash=bindparam("head_hash")))


@dataclass(frozen=True)
class PendingEvent:
    """An event appended in a transaction that has not committed yet."""

    seq: int
    event: str
    subject: str
    details: str  # the JSON stored


class PendingAppends:
    """Events appended inside the transaction of ``conn`` (see ``AuditLog.pending_in``). The head
    stays locked from the first ``append`` until that transaction ends; ``write`` puts the events
    and the head's move into it, and the caller then commits (or rolls everything back)."""

    def __init__(self, log: AuditLog, conn: Connection) -> None:
        self.log = log
        self._conn = conn
        self._head: tuple[int, str] | None = None
        self._rows: list[dict[str, Any]] = []
        self._head_written: tuple[int, str] | None = None
        self.written = 0

    def append(self, event: str, *, actor: str, tenant_id: str | None = None, subject: str = "",
               details: dict[str, Any] | None = None) -> int:
        if self._head is None:
            row = self._conn.execute(_LOCK_HEAD).first()
            if row is None:  # a fresh database: create the head, unless a racer just did
                self._conn.execute(_insert_head(self._conn))
                row = self._conn.execute(_LOCK_HEAD).first()
                if row is None:  # pragma: no cover - created or locked just above
                    raise RuntimeError("audit log: the chain head is missing")
            self._head = (int(row[0]), str(row[1]))
        last_seq, last_hash = self._head
        details_json = json.dumps(details or {}, sort_keys=True, separators=(",", ":"), default=str)
        seq = last_seq + 1
        at = datetime.now(timezone.utc)
        digest = _event_hash(seq, at, event, actor, tenant_id, subject, details_json, last_hash)
        self._rows.append({"seq": seq, "at": at, "event": event, "actor": actor, "tenant_id": tenant_id,
                           "subject": subject, "details": details_json, "prev_hash": last_hash, "hash": digest})
        self._head = (seq, digest)
        return seq

    def find(self, seq: int) -> PendingEvent | None:
        """The event ``seq`` if it was appended here (what a check in the same transaction reads)."""
        for r in self._rows:
            if r["seq"] == seq:
                return PendingEvent(seq, r["event"], r["subject"], r["details"])
        return None

    def insert_appended(self) -> None:
        """Insert the events appended since the last call (the head is moved by ``write``)."""
        if self._rows:
            self._conn.execute(_INSERT_EVENTS, self._rows)
            self.written += len(self._rows)
            self._rows = []

    def write(self) -> None:
        """Insert the events not inserted yet and move the head; call right before the commit."""
        self.insert_appended()
        if self._head is not None and self._head != self._head_written:
            self._conn.execute(_MOVE_HEAD, {"head_seq": self._head[0], "head_hash": self._head[1]})
            self._head_written = self._head

    def committed(self) -> None:
        """Tell the log the transaction committed (its count of appended events)."""
        self.log.appended += self.written


def _utc(at: datetime) -> datetime:
    """UTC, as the events' times are written (SQLite compares them as text)."""
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


@dataclass(frozen=True)
class AuditEntry:
    """One event as a reader sees it (``AuditLog.search``)."""

    seq: int
    at: datetime
    event: str
    actor: str
    tenant_id: str | None
    subject: str
    details: str  # JSON
    hash: str


@dataclass(frozen=True)
class AuditProblem:
    seq: int | None
    message: str


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self.appended = 0  # events this process appended: lets the sealer count without a query

    def append(self, event: str, *, actor: str, tenant_id: str | None = None, subject: str = "",
               details: dict[str, Any] | None = None) -> int:
        """Record one event; returns its sequence number. Retries when another process won the race."""
        details_json = json.dumps(details or {}, sort_keys=True, separators=(",", ":"), default=str)
        for _attempt in range(20):
            try:
                with self._lock, self.db.session() as s:
                    head = s.get(AuditHead, 1, with_for_update=True)
                    if head is None:  # the first event: the head is created first, so every appender locks it
                        s.execute(_insert_head(s))
                        head = s.get(AuditHead, 1, with_for_update=True, populate_existing=True)
                    seq = head.last_seq + 1
                    at = datetime.now(timezone.utc)
                    digest = _event_hash(seq, at, event, actor, tenant_id, subject, details_json, head.last_hash)
                    s.add(AuditEvent(seq=seq, at=at, event=event, actor=actor, tenant_id=tenant_id, subject=subject,
                                     details=details_json, prev_hash=head.last_hash, hash=digest))
                    head.last_seq, head.last_hash = seq, digest
                self.appended += 1
                return seq
            except (IntegrityError, OperationalError):
                continue
        raise RuntimeError("audit log: could not append after 20 attempts")

    def append_in(self, s: Session, event: str, *, actor: str, tenant_id: str | None = None, subject: str = "",
                  details: dict[str, Any] | None = None) -> int:
        """Record one event inside the caller's transaction ``s``; returns its sequence number.
        The chain stays locked from here until ``s`` commits or rolls back, so the caller must
        not wait on another session that appends (``append``) before then. The event is inserted
        at once (a later check in the same transaction reads it back); the head moves once, just
        before the commit. SQLAlchemy Core on the session's connection, not ORM objects: this runs
        while the database's write lock is held, where every statement counts."""
        pending = s.info.get(_PENDING)
        if pending is None:
            pending = s.info[_PENDING] = PendingAppends(self, s.connection())
        seq = pending.append(event, actor=actor, tenant_id=tenant_id, subject=subject, details=details)
        pending.insert_appended()
        return seq

    def pending_in(self, conn: Connection) -> PendingAppends:
        """Appends inside the transaction of ``conn`` (SQLAlchemy Core: a session's ``connection()``),
        written by ``PendingAppends.write`` before the caller commits; like ``append_in``, the
        chain stays locked from the first append until that transaction ends."""
        return PendingAppends(self, conn)

    def events(self, tenant_id: str | None = None, limit: int = 100) -> list[AuditEvent]:
        with self.db.session() as s:
            q = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
            if tenant_id is not None:
                q = q.where(AuditEvent.tenant_id == tenant_id)
            return list(s.scalars(q))

    def search(self, *, event: str | None = None, actor: str | None = None, text: str | None = None,
               since: datetime | None = None, until: datetime | None = None, before_seq: int | None = None,
               limit: int = 100) -> list[AuditEntry]:
        """Events matching every criterion given, newest first, at most ``limit`` (1-1000).

        ``event``: the event name, or a family (``client`` finds ``client.created``,
        ``client.disabled``, ...); ``actor``: exactly; ``text``: anywhere in the event, actor,
        subject or details (case insensitive); ``since`` inclusive, ``until`` exclusive;
        ``before_seq``: events older than that one (the next page)."""
        q = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(max(1, min(limit, 1000)))
        if event:
            family = event.rstrip(".*")
            q = q.where(or_(AuditEvent.event == event, AuditEvent.event.startswith(family + ".", autoescape=True)))
        if actor:
            q = q.where(AuditEvent.actor == actor)
        if text:
            needle = text.lower()
            q = q.where(or_(*(func.lower(column).contains(needle, autoescape=True) for column in
                              (AuditEvent.event, AuditEvent.actor, AuditEvent.subject, AuditEvent.details))))
        if since is not None:
            q = q.where(AuditEvent.at >= _utc(since))
        if until is not None:
            q = q.where(AuditEvent.at < _utc(until))
        if before_seq is not None:
            q = q.where(AuditEvent.seq < before_seq)
        with self.db.session() as s:
            return [AuditEntry(seq=ev.seq, at=ev.at if ev.at.tzinfo else ev.at.replace(tzinfo=timezone.utc),
                               event=ev.event, actor=ev.actor, tenant_id=ev.tenant_id, subject=ev.subject,
                               details=ev.details, hash=ev.hash) for ev in s.scalars(q)]

    def head(self) -> tuple[int, str]:
        """The last event's sequence number and hash ((0, genesis) for an empty log)."""
        with self.db.session() as s:
            head = s.get(AuditHead, 1)
            return (head.last_seq, head.last_hash) if head is not None else (0, GENESIS)

    def verify(self, observe: Callable[[int, str], None] | None = None) -> tuple[int, list[AuditProblem]]:
        """Check the whole chain; returns (events checked, problems found, in chain order).
        ``observe(seq, hash)`` sees every event's stored hash (the checkpoint checks use it)."""
        problems: list[AuditProblem] = []
        expected_seq, prev = 1, GENESIS
        count = 0
        with self.db.session() as s:
            head = s.get(AuditHead, 1)
            for ev in s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().yield_per(1000):
                count += 1
                if ev.seq != expected_seq:
                    problems.append(AuditProblem(ev.seq, f"events {expected_seq}..{ev.seq - 1} are missing (deleted)"))
                if ev.prev_hash != prev:
                    problems.append(AuditProblem(
                        ev.seq, "previous-hash link broken: an earlier event was deleted, altered or reordered"))
                recomputed = _event_hash(ev.seq, ev.at if ev.at.tzinfo else ev.at.replace(tzinfo=timezone.utc),
                                         ev.event, ev.actor, ev.tenant_id, ev.subject, ev.details, ev.prev_hash)
                if recomputed != ev.hash:
                    problems.append(AuditProblem(ev.seq, "content does not match its hash: the event was edited"))
                if observe is not None:
                    observe(ev.seq, ev.hash)
                prev, expected_seq = ev.hash, ev.seq + 1
            last_seq = expected_seq - 1
            if head is None:
                if count:
                    problems.append(AuditProblem(None, "chain head record is missing"))
            else:
                if head.last_seq != last_seq:
                    problems.append(AuditProblem(
                        head.last_seq, f"chain head says the last event is {head.last_seq}, found {last_seq}: "
                        "events at the end were deleted" if head.last_seq > last_seq else
                        f"chain head says the last event is {head.last_seq}, found {last_seq}"))
                elif head.last_hash != prev:
                    problems.append(AuditProblem(head.last_seq, "chain head hash does not match the last event"))
        return count, problems


@sa_event.listens_for(Session, "before_commit")
def _write_appended(s: Session) -> None:
    """Every session that appended (``append_in``) moves the chain head just before it commits."""
    pending = s.info.get(_PENDING)
    if pending is not None:
        pending.write()


@sa_event.listens_for(Session, "after_commit")
def _count_appended(s: Session) -> None:
    pending = s.info.pop(_PENDING, None)
    if pending is not None:
        pending.committed()


@sa_event.listens_for(Session, "after_rollback")
def _drop_appended(s: Session) -> None:
    s.info.pop(_PENDING, None)
