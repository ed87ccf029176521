"""Calls answered later (the CSC API's asynchronous ``operationMode`` "A"): the caller gets an
unguessable id at once, the call itself waits in the blob store, the job queue runs it on any
node, and its answer waits in the blob store until its owner fetches it, once.

The call and its answer are opaque here: the call is the facade's own request (bytes) with who
made it, carried out by the runner the facade registered for its ``kind``; the answer is
``(HTTP status, JSON payload)`` as the facade rendered it, so a refusal the call met is given
back exactly as the synchronous call would have answered it.

A run holds a lease. A run cut off by a crash (its process known dead, or its lease over) is
resumed by the next one the background leader queues, at most ``max_attempts`` runs in all; the
runner is told the attempt, because the authorization an earlier run spent stays spent: a
signature is never made twice, and a resumed call whose authorization is gone answers that it
was interrupted (its owner authorizes again) instead of failing obscurely.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, select, update

from remotesign.core.errors import CoreError
from remotesign.core.operations import abandoned, crash_point, new_lease, pause_point
from remotesign.storage.blobs import BlobError, BlobStore
from remotesign.storage.db import Database
from remotesign.storage.models import DeferredResult
from remotesign.storage.times import aware

log = logging.getLogger("remotesign")
NAMESPACE = "deferred"
Answer = tuple[int, dict[str, Any]]
INTERRUPTED = "the operation was interrupted; authorize and ask again"
#: a queued call younger than this was just handed to the queue by the node that took it
REQUEUE_AFTER_SECONDS = 10


@dataclass(frozen=True)
class DeferredCall:
    """One run of a call: who made it (their token's hash, as the service stores tokens), the
    facade's own request, and which run this is (above 1: an earlier one was cut off)."""

    tenant_id: str
    user_id: str | None
    token_hash: str | None
    request: bytes
    attempt: int


Runner = Callable[[DeferredCall], Answer]


@dataclass(frozen=True)
class Polled:
    """``answer`` once the work is done (fetched now, and gone); None while it runs."""

    answer: Answer | None


def _hash(response_id: str) -> str:
    return hashlib.sha256(f"deferred:{response_id}".encode()).hexdigest()


def _call_blob(id_hash: str) -> str:
    return f"{id_hash}.call"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class DeferredResults:
    def __init__(self, db: Database, blobs: BlobStore, *, lease_seconds: int = 300, max_attempts: int = 3) -> None:
        self.db = db
        self.blobs = blobs
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.runners: dict[str, Runner] = {}
        #: hands a call to the job queue (jobs/queue.py sets it; callable from any thread); without
        #: it a call runs in a thread of this process
        self.dispatch: Callable[[str], None] | None = None

    def register(self, kind: str, runner: Runner) -> None:
        """The facade's way to carry out its calls of ``kind`` (on whichever node runs them)."""
        self.runners[kind] = runner

    def start(self, tenant_id: str, user_id: str | None, kind: str, request: bytes, *, token_hash: str | None,
              keep_seconds: int) -> str:
        """Keep the call and queue it; returns the id its answer is fetched by."""
        if kind not in self.runners:
            raise ValueError(f"no runner for deferred calls of kind {kind!r}")
        response_id = secrets.token_urlsafe(32)
        id_hash = _hash(response_id)
        now = _now()
        # the row first: whatever a crash leaves (a row without its call) is swept with the row
        with self.db.session() as s:
            s.add(DeferredResult(id_hash=id_hash, tenant_id=tenant_id, user_id=user_id, status="queued", kind=kind,
                                 token_hash=token_hash, attempts=0, created_at=now,
                                 expires_at=now + timedelta(seconds=max(keep_seconds, self.lease_seconds))))
        try:
            crash_point("deferred.kept")
            self.blobs.put_bytes(NAMESPACE, _call_blob(id_hash), request)
        except BaseException:
            with self.db.session() as s:
                s.execute(delete(DeferredResult).where(DeferredResult.id_hash == id_hash))
            raise
        self._hand_over(id_hash)
        return response_id

    def _hand_over(self, id_hash: str) -> None:
        if self.dispatch is None:
            threading.Thread(target=self.run, args=(id_hash,), name=f"deferred-{id_hash[:8]}", daemon=True).start()
            return
        try:
            self.dispatch(id_hash)
        except Exception:  # noqa: BLE001 - still queued in the table: the leader queues it again
            log.exception("queueing deferred call %s failed", id_hash[:8])

    def run(self, id_hash: str) -> None:
        """One run of a call (the queue's job): claimed with a lease, its answer kept, the call
        forgotten. Nothing when another run holds it or it is over."""
        claimed = self._claim(id_hash)
        if claimed is None:
            return
        row, owner = claimed
        pause_point("deferred.claimed")
        answer = self._answer(row, id_hash)
        pause_point("deferred.answered")
        crash_point("deferred.answered")
        self.blobs.put_bytes(NAMESPACE, id_hash, json.dumps({"status": answer[0], "payload": answer[1]}).encode())
        with self.db.session() as s:
            moved = s.execute(update(DeferredResult).where(DeferredResult.id_hash == id_hash,
                                                           DeferredResult.status == "running",
                                                           DeferredResult.lease_owner == owner)
                              .values(status="done", finished_at=_now(), lease_owner=None, lease_until=None)).rowcount
        if moved == 1:
            self.blobs.delete(NAMESPACE, _call_blob(id_hash))
        else:  # pragma: no cover - taken over after the lease ran out; the new run records its answer
            log.warning("deferred call %s was taken over while it ran", id_hash[:8])

    def _answer(self, row: DeferredResult, id_hash: str) -> Answer:
        """What the call answers, whatever happens in its runner."""
        try:
            request = self.blobs.read_bytes(NAMESPACE, _call_blob(id_hash))
        except BlobError:  # its start was cut off before the call was kept: nobody got its id
            return 500, {"error": "server_error", "error_description": "the call was lost before it ran"}
        try:
            return self.runners[row.kind or ""](DeferredCall(row.tenant_id, row.user_id, row.token_hash, request,
                                                            row.attempts))
        except CoreError as exc:
            return exc.status, {"error": exc.code, "error_description": exc.message}
        except Exception:  # noqa: BLE001 - the owner gets an answer, the log the traceback
            log.exception("deferred call failed")
            return 500, {"error": "server_error", "error_description": "internal error; see the service log"}

    def _claim(self, id_hash: str) -> tuple[DeferredResult, str] | None:
        now = _now()
        with self.db.session() as s:
            row = s.get(DeferredResult, id_hash)
            if row is None or row.status not in ("queued", "running") or aware(row.expires_at) <= now:
                return None
            if row.status == "running" and not abandoned(row.lease_owner, row.lease_until, now):
                return None
            if row.kind not in self.runners:  # a call of another version: left to a node that knows it
                log.warning("deferred call %s: no runner for %r here", id_hash[:8], row.kind)
                return None
            if row.attempts >= self.max_attempts:
                self._give_up(s, row)
                s.commit()
                self.blobs.delete(NAMESPACE, _call_blob(id_hash))
                return None
            lease = new_lease(self.lease_seconds, now)
            fence = DeferredResult.lease_owner.is_(None) if row.lease_owner is None else \
                DeferredResult.lease_owner == row.lease_owner
            moved = s.execute(update(DeferredResult)
                              .where(DeferredResult.id_hash == id_hash, DeferredResult.status == row.status, fence)
                              .values(status="running", lease_owner=lease.owner, lease_until=lease.expires_at,
                                      attempts=row.attempts + 1)).rowcount
            if moved != 1:
                return None
            s.flush()
            s.refresh(row)
            s.expunge(row)
        if row.attempts > 1:
            log.info("deferred call %s resumed (run %d)", id_hash[:8], row.attempts)
        return row, lease.owner

    def _give_up(self, s: Any, row: DeferredResult) -> None:
        s.execute(update(DeferredResult).where(DeferredResult.id_hash == row.id_hash,
                                               DeferredResult.status == row.status)
                  .values(status="lost", lease_owner=None, lease_until=None, finished_at=_now()))
        log.warning("deferred call %s given up after %d cut-off runs", row.id_hash[:8], row.attempts)

    def due(self, limit: int = 100) -> list[str]:
        """Calls no run is working on: queued a while ago (their job lost with the in-memory
        queue, or never handed over), or running in a process that died."""
        now = _now()
        with self.db.session() as s:
            rows = s.execute(select(DeferredResult.id_hash, DeferredResult.status, DeferredResult.lease_owner,
                                    DeferredResult.lease_until, DeferredResult.created_at, DeferredResult.kind)
                             .where(DeferredResult.status.in_(("queued", "running")), DeferredResult.expires_at > now)
                             .limit(limit * 4)).all()
        out = []
        for r in rows:
            if r.kind is None:
                continue
            if r.status == "queued" and aware(r.created_at) <= now - timedelta(seconds=REQUEUE_AFTER_SECONDS):
                out.append(r.id_hash)
            elif r.status == "running" and abandoned(r.lease_owner, r.lease_until, now):
                out.append(r.id_hash)
        return out[:limit]

    def recover(self) -> int:
        """Queue again what no run is working on (the background leader, periodically)."""
        due = self.due()
        for id_hash in due:
            self._hand_over(id_hash)
        return len(due)

    def poll(self, tenant_id: str, user_id: str | None, response_id: str) -> Polled:
        """The answer of ``response_id`` for its owner (anyone else: unknown), given once."""
        id_hash = _hash(response_id)
        with self.db.session() as s:
            row = s.get(DeferredResult, id_hash)
            if row is not None:
                s.expunge(row)
        now = _now()
        if row is None or row.tenant_id != tenant_id or row.user_id != user_id or aware(row.expires_at) <= now:
            raise CoreError("invalid_request", "Invalid parameter responseID", 400)
        if row.status == "running" and row.kind is None:
            # run in a thread by an earlier version: nobody resumes it
            lease_end = aware(row.created_at) + timedelta(seconds=self.lease_seconds)
            if not abandoned(row.lease_owner, lease_end, now):
                return Polled(None)
            with self.db.session() as s:
                s.execute(update(DeferredResult).where(DeferredResult.id_hash == id_hash,
                                                       DeferredResult.status == "running").values(status="lost"))
            raise CoreError("interrupted", INTERRUPTED, 409)
        if row.status in ("queued", "running"):
            return Polled(None)
        if row.status == "lost":
            raise CoreError("interrupted", INTERRUPTED, 409)
        if row.status != "done":
            raise CoreError("invalid_request", "Invalid parameter responseID: the result was fetched already", 400)
        with self.db.session() as s:
            taken = s.execute(update(DeferredResult).where(DeferredResult.id_hash == id_hash,
                                                           DeferredResult.status == "done")
                              .values(status="fetched")).rowcount
        if taken != 1:
            raise CoreError("invalid_request", "Invalid parameter responseID: the result was fetched already", 400)
        stored = json.loads(self.blobs.read_bytes(NAMESPACE, id_hash))
        self.blobs.delete(NAMESPACE, id_hash)
        return Polled((int(stored["status"]), stored["payload"]))

    def sweep(self) -> int:
        """Forget expired calls and their answers."""
        now = _now()
        with self.db.session() as s:
            gone = list(s.scalars(select(DeferredResult.id_hash).where(DeferredResult.expires_at < now)))
            if gone:
                s.execute(delete(DeferredResult).where(DeferredResult.id_hash.in_(gone)))
        for id_hash in gone:
            self.blobs.delete(NAMESPACE, id_hash)
            self.blobs.delete(NAMESPACE, _call_blob(id_hash))
        return len(gone)
