"""Append-only, hash-chained audit log.

Each event's hash covers its content and the previous event's hash; a head row records the last
sequence number and hash. ``verify`` recomputes the chain and reports the first event where an
edit, a deletion (a gap, or a truncated tail) or a reordering shows.

The chain has no key: whoever can write the database can recompute it. audit_seal.py signs and
time-stamps checkpoints of it and audit_verify.py checks them; appending here stays one short
transaction with no key-store operation.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from remotesign.storage.db import Database
from remotesign.storage.models import AuditEvent, AuditHead

GENESIS = "0" * 64


def _event_hash(seq: int, at: datetime, event: str, actor: str, tenant_id: str | None, subject: str,
                details: str, prev_hash: str) -> str:
    canonical = json.dumps(
        [seq, at.astimezone(timezone.utc).isoformat(timespec="microseconds"), event, actor, tenant_id, subject,
         details, prev_hash],
        separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


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
                    if head is None:
                        head = AuditHead(id=1, last_seq=0, last_hash=GENESIS)
                        s.add(head)
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

    def events(self, tenant_id: str | None = None, limit: int = 100) -> list[AuditEvent]:
        with self.db.session() as s:
            q = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
            if tenant_id is not None:
                q = q.where(AuditEvent.tenant_id == tenant_id)
            return list(s.scalars(q))

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
