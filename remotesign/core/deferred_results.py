"""Answers computed after the call that asked for them returned (the CSC API's asynchronous
``operationMode`` "A"): the caller gets an unguessable id at once, the work runs in the background
of this process, and its answer waits in the blob store until its owner fetches it, once.

The answer is opaque here: ``(HTTP status, JSON payload)`` as the facade rendered it, so a refusal
the work met is given back exactly as the synchronous call would have answered it. A row still
``running`` whose process is known dead, or whose lease ran out, is answered as interrupted; the
authorization the work spent stays spent, so nothing is ever signed twice.
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
from remotesign.core.operations import abandoned, new_lease
from remotesign.storage.blobs import BlobStore
from remotesign.storage.db import Database
from remotesign.storage.models import DeferredResult
from remotesign.storage.times import aware

log = logging.getLogger("remotesign")
NAMESPACE = "deferred"
Answer = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class Polled:
    """``answer`` once the work is done (fetched now, and gone); None while it runs."""

    answer: Answer | None


def _hash(response_id: str) -> str:
    return hashlib.sha256(f"deferred:{response_id}".encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


class DeferredResults:
    def __init__(self, db: Database, blobs: BlobStore, *, lease_seconds: int = 300) -> None:
        self.db = db
        self.blobs = blobs
        self.lease_seconds = lease_seconds

    def start(self, tenant_id: str, user_id: str | None, work: Callable[[], Answer], *, keep_seconds: int) -> str:
        """Run ``work`` in the background; returns the id its answer is fetched by."""
        response_id = secrets.token_urlsafe(32)
        id_hash = _hash(response_id)
        now = _now()
        lease = new_lease(self.lease_seconds, now)
        with self.db.session() as s:
            s.add(DeferredResult(id_hash=id_hash, tenant_id=tenant_id, user_id=user_id, status="running",
                                 lease_owner=lease.owner, created_at=now,
                                 expires_at=now + timedelta(seconds=max(keep_seconds, self.lease_seconds))))
        threading.Thread(target=self._run, args=(id_hash, work), name=f"deferred-{id_hash[:8]}", daemon=True).start()
        return response_id

    def _run(self, id_hash: str, work: Callable[[], Answer]) -> None:
        try:
            answer = work()
        except CoreError as exc:
            answer = (exc.status, {"error": exc.code, "error_description": exc.message})
        except Exception:  # noqa: BLE001 - the owner gets an answer, the log the traceback
            log.exception("deferred work failed")
            answer = (500, {"error": "server_error", "error_description": "internal error; see the service log"})
        self.blobs.put_bytes(NAMESPACE, id_hash, json.dumps({"status": answer[0], "payload": answer[1]}).encode())
        with self.db.session() as s:
            s.execute(update(DeferredResult).where(DeferredResult.id_hash == id_hash, DeferredResult.status == "running")
                      .values(status="done", finished_at=_now()))

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
        if row.status == "running":
            lease_end = aware(row.created_at) + timedelta(seconds=self.lease_seconds)
            if not abandoned(row.lease_owner, lease_end, now):
                return Polled(None)
            with self.db.session() as s:
                s.execute(update(DeferredResult).where(DeferredResult.id_hash == id_hash,
                                                       DeferredResult.status == "running").values(status="lost"))
            raise CoreError("interrupted", "the operation was interrupted; authorize and ask again", 409)
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
        """Forget expired results and their answers."""
        now = _now()
        with self.db.session() as s:
            gone = list(s.scalars(select(DeferredResult.id_hash).where(DeferredResult.expires_at < now)))
            if gone:
                s.execute(delete(DeferredResult).where(DeferredResult.id_hash.in_(gone)))
        for id_hash in gone:
            self.blobs.delete(NAMESPACE, id_hash)
        return len(gone)
