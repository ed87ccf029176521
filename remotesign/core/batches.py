"""Batches: many signed documents validated, or extended to T / LT / LTA, in the background, with
progress the caller follows and results it fetches one by one.

An e-invoicing platform hands over a day's invoices at once; validating or re-time-stamping
them takes seconds each, far longer than one HTTP call should wait. ``submit`` stores every
document in the blob store, records one *item* per document (``queued``) and hands each to the
job queue (remotesign/jobs/); whichever process of the cluster takes the job ``process``-es the
item. The database is the truth, the queue only the messenger:

* an item is claimed (``queued`` → ``running``) with a lease the worker renews while it works, so
  a duplicate job does nothing and a worker that died (kill -9, a lost node) leaves an item that
  ``recover`` queues again once the lease runs out -- or at once when its process is known dead;
* a result is written under a name of its own attempt and recorded only while the lease is still
  the writer's, so a slow worker that lost its item cannot overwrite the result of the one that
  took it over;
* a transient failure (TSA down, validation time-out, storage outage) is retried with backoff up
  to ``max_attempts``; a refusal of the document itself (not a signature, wrong format) is the
  item's final answer;
* a batch submitted with a callback URL has its webhook made due in the transaction that records
  its end, and delivered like every other (core/callbacks.py: HMAC-signed, retried with backoff,
  claimed per attempt, so a crash delays it and never loses or repeats a recorded delivery).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, select, update

from remotesign.core.callbacks import Callback, CallbackSchedule, due_now, is_callback_url
from remotesign.core.errors import CoreError
from remotesign.core.operations import abandoned, crash_point, new_lease, pause_point
from remotesign.storage.audit import AuditLog
from remotesign.storage.blobs import BlobStore
from remotesign.storage.db import Database
from remotesign.storage.models import Batch, BatchItem
from remotesign.storage.times import aware

log = logging.getLogger("remotesign.batches")

NAMESPACE = "batches"
KINDS = ("validation", "extension")
LEVELS = ("T", "LT", "LTA")
STATES = ("queued", "running", "done", "failed")
Dispatch = Callable[[str, int], Awaitable[None]]
UPLOAD_GRACE_SECONDS = 3600  # a batch whose submission did not complete within this is swept
CALLBACK_SOURCE = "batch"  # its callbacks' name (core/callbacks.py), the event of their webhooks


class BatchError(CoreError):
    """A request about batches the caller must change (unknown batch, bad options, too many files)."""


class RetryLater(Exception):
    """The work met a passing condition (TSA or storage down, time-out): try the item again later."""


@dataclass(frozen=True)
class SubmittedDocument:
    name: str
    path: Path


@dataclass(frozen=True)
class BatchView:
    id: str
    kind: str
    options: dict[str, Any]
    total: int
    counts: dict[str, int]       # items per state (every state present)
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime
    callback_url: str | None = None
    callback_status: str = "none"  # none | pending | delivered | failed

    @property
    def status(self) -> str:
        """``running`` until every item is done or failed, then ``finished``."""
        return "finished" if self.finished_at is not None else "running"


@dataclass(frozen=True)
class ItemView:
    position: int
    name: str
    size: int
    sha256_hex: str
    state: str
    attempts: int
    outcome: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    started_at: datetime | None
    finished_at: datetime | None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _namespace(batch_id: str) -> str:
    """Each batch its own blob namespace, so that forgetting it is one bulk delete."""
    return f"{NAMESPACE}/{batch_id}"


def _input_blob(position: int) -> str:
    return f"{position}.in"


def _result_blob(position: int, attempt: int, suffix: str) -> str:
    return f"{position}.{attempt}.{suffix}"


def _item_view(row: BatchItem) -> ItemView:
    return ItemView(row.position, row.name, row.size, row.sha256_hex, row.state, row.attempts,
                    json.loads(row.outcome) if row.outcome else None, row.error_code, row.error_message,
                    aware(row.started_at) if row.started_at else None,
                    aware(row.finished_at) if row.finished_at else None)


class BatchService:
    """Batches of one relying party; ``process``/``recover`` are the job queue's side."""

    def __init__(self, db: Database, blobs: BlobStore, audit: AuditLog, validation: Any, extension: Any, *,
                 max_documents: int, keep_seconds: int, file_max_bytes: int, max_attempts: int = 4,
                 lease_seconds: int = 60, backoff_seconds: float = 5.0, callback_max_attempts: int = 8,
                 callback_backoff: float = 2.0, callback_lease: float = 60.0) -> None:
        self.db = db
        self.blobs = blobs
        self.audit = audit
        self.validation = validation
        self.extension = extension
        self.max_documents = max_documents
        self.keep_seconds = keep_seconds
        self.file_max_bytes = file_max_bytes
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds
        self.backoff_seconds = backoff_seconds
        self.dispatch: Dispatch | None = None  # set by the job queue of this process
        self.callbacks = CallbackSchedule(db, audit, Batch, CALLBACK_SOURCE, max_attempts=callback_max_attempts,
                                          backoff=callback_backoff, lease=callback_lease)

    # -- the caller's side -------------------------------------------------------------------------
    def check_options(self, kind: str, options: dict[str, Any]) -> dict[str, Any]:
        """The options of a new batch, checked and normalised (the facade's parsing ends here)."""
        if kind not in KINDS:
            raise BatchError("invalid_request", f"a batch is one of {', '.join(KINDS)}")
        if kind == "extension":
            level = str(options.get("level") or "").upper()
            if level not in LEVELS:
                raise BatchError("invalid_level", f"'level' must be one of {', '.join(LEVELS)}")
            return {"level": level}
        policy = options.get("policy") or None
        if policy is not None:
            from remotesign.validation.policy import PolicyError

            try:
                self.validation.named_policy(policy)
            except PolicyError as exc:
                raise BatchError("invalid_policy", str(exc)) from exc
        return {"policy": policy}

    async def submit(self, tenant_id: str, actor: str, kind: str, options: dict[str, Any],
                     documents: Sequence[SubmittedDocument], callback_url: str | None = None) -> BatchView:
        """Store the documents, record the batch and queue every item; ``callback_url`` gets a
        webhook when the last item ends."""
        view = await asyncio.to_thread(self._create, tenant_id, actor, kind, options, documents, callback_url)
        await self._dispatch_all([(view.id, n) for n in range(view.total)])
        return view

    def _create(self, tenant_id: str, actor: str, kind: str, options: dict[str, Any],
                documents: Sequence[SubmittedDocument], callback_url: str | None) -> BatchView:
        checked = self.check_options(kind, options)
        if callback_url is not None and not is_callback_url(callback_url):
            raise BatchError("invalid_request", "callback_url must be an absolute http(s) URL of at most 2000 characters")
        if not documents:
            raise BatchError("invalid_request", "send at least one 'file' part")
        if len(documents) > self.max_documents:
            raise BatchError("too_many_documents", f"a batch holds at most {self.max_documents} documents")
        batch_id = "b" + secrets.token_hex(16)
        now = _now()
        # The batch is recorded first, not yet submitted and due to expire soon: a crash while its
        # documents are being stored leaves a row that sweep_expired removes with whatever was
        # stored, never documents that nothing points to. It becomes visible once complete.
        with self.db.session() as s:
            s.add(Batch(id=batch_id, tenant_id=tenant_id, kind=kind, options=json.dumps(checked),
                        total=len(documents), created_by=actor[:200], created_at=now, submitted_at=None,
                        expires_at=now + timedelta(seconds=UPLOAD_GRACE_SECONDS), callback_url=callback_url,
                        callback_status="none", callback_attempts=0))
        items: list[BatchItem] = []
        try:
            for position, doc in enumerate(documents):
                with open(doc.path, "rb") as fh:
                    info = self.blobs.put(_namespace(batch_id), _input_blob(position),
                                          iter(lambda fh=fh: fh.read(1 << 20), b""), max_size=self.file_max_bytes)
                items.append(BatchItem(batch_id=batch_id, position=position, name=(doc.name or "document")[:255],
                                       size=info.size, sha256_hex=info.sha256.hex(), state="queued", attempts=0))
                crash_point("batch.storing")  # testing aid: a process dying with documents half stored
            now = _now()
            expires = now + timedelta(seconds=self.keep_seconds)
            with self.db.session() as s:
                s.add_all(items)
                s.execute(update(Batch).where(Batch.id == batch_id).values(submitted_at=now, expires_at=expires))
        except BaseException:
            self._forget(batch_id)  # nothing of a batch that was not submitted stays behind
            raise
        self.audit.append("batch.submitted", actor=actor, tenant_id=tenant_id, subject=batch_id,
                          details={"kind": kind, "documents": len(items), **checked})
        return BatchView(batch_id, kind, checked, len(items), {"queued": len(items), "running": 0, "done": 0,
                                                               "failed": 0}, now, None, expires, callback_url)

    def get(self, tenant_id: str, batch_id: str) -> BatchView:
        with self.db.session() as s:
            batch = self._owned(s, tenant_id, batch_id)
            rows = s.execute(select(BatchItem.state, func.count()).where(BatchItem.batch_id == batch_id)
                             .group_by(BatchItem.state)).all()
            return self._view(batch, {state: n for state, n in rows})

    def list(self, tenant_id: str, limit: int = 100) -> list[BatchView]:
        """The relying party's most recent batches, newest first."""
        with self.db.session() as s:
            batches = s.scalars(select(Batch).where(Batch.tenant_id == tenant_id, Batch.submitted_at.is_not(None))
                                .order_by(Batch.created_at.desc()).limit(limit)).all()
            counts: dict[str, dict[str, int]] = {b.id: {} for b in batches}
            if batches:
                for batch_id, state, n in s.execute(
                        select(BatchItem.batch_id, BatchItem.state, func.count())
                        .where(BatchItem.batch_id.in_(list(counts))).group_by(BatchItem.batch_id, BatchItem.state)):
                    counts[batch_id][state] = n
            return [self._view(b, counts[b.id]) for b in batches]

    def items(self, tenant_id: str, batch_id: str, offset: int = 0, limit: int = 1000) -> list[ItemView]:
        with self.db.session() as s:
            self._owned(s, tenant_id, batch_id)
            rows = s.scalars(select(BatchItem).where(BatchItem.batch_id == batch_id)
                             .order_by(BatchItem.position).offset(max(0, offset)).limit(max(1, min(limit, 1000))))
            return [_item_view(r) for r in rows]

    def item(self, tenant_id: str, batch_id: str, position: int) -> ItemView:
        with self.db.session() as s:
            self._owned(s, tenant_id, batch_id)
            row = s.get(BatchItem, (batch_id, position))
            if row is None:
                raise BatchError("unknown_item", f"batch {batch_id} has no document {position}", 404)
            return _item_view(row)

    def open_result(self, tenant_id: str, batch_id: str, position: int) -> tuple[BinaryIO, str, str]:
        """The result of a done item: (stream, media type, file name) -- the JSON validation report
        or the extended document."""
        item = self.item(tenant_id, batch_id, position)
        if item.state != "done" or not item.outcome:
            raise BatchError("not_ready", f"document {position} of batch {batch_id} is {item.state}", 409)
        blob = str(item.outcome["result"])
        if item.outcome.get("report") is not None:
            stem = item.name.rsplit(".", 1)[0] if "." in item.name else item.name
            return self.blobs.open(_namespace(batch_id), blob), "application/json", f"{stem}.report.json"
        return self.blobs.open(_namespace(batch_id), blob), "application/octet-stream", item.name

    def delete(self, tenant_id: str, batch_id: str, *, actor: str) -> None:
        """Forget a batch and its documents; a worker busy on one of its items drops its result."""
        with self.db.session() as s:
            self._owned(s, tenant_id, batch_id)
        self._forget(batch_id)
        self.audit.append("batch.deleted", actor=actor, tenant_id=tenant_id, subject=batch_id)

    def _owned(self, s: Any, tenant_id: str, batch_id: str) -> Batch:
        batch = s.get(Batch, batch_id) if isinstance(batch_id, str) and len(batch_id) <= 40 else None
        if batch is None or batch.tenant_id != tenant_id or batch.submitted_at is None:  # another tenant's: the same
            raise BatchError("unknown_batch", "no such batch", 404)
        return batch

    @staticmethod
    def _view(batch: Batch, counts: dict[str, int]) -> BatchView:
        return BatchView(batch.id, batch.kind, json.loads(batch.options), batch.total,
                         {state: counts.get(state, 0) for state in STATES}, aware(batch.created_at),
                         aware(batch.finished_at) if batch.finished_at else None, aware(batch.expires_at),
                         batch.callback_url, batch.callback_status)

    # -- webhooks (core/callbacks.py) ---------------------------------------------------------------
    def claim_callbacks(self, limit: int = 16) -> list[Callback]:
        return self.callbacks.claim(limit)

    def callback_body(self, c: Callback) -> bytes:
        """What the receiver gets: the batch's end and its counts; it fetches the results itself."""
        with self.db.session() as s:
            batch = s.get(Batch, c.subject_id)
            if batch is None or batch.tenant_id != c.tenant_id:
                raise BatchError("unknown_batch", "the batch was deleted", 404)
            rows = s.execute(select(BatchItem.state, func.count()).where(BatchItem.batch_id == batch.id)
                             .group_by(BatchItem.state)).all()
            view = self._view(batch, {state: n for state, n in rows})
        body = {"event": "batch.finished", "batch": {
            "id": view.id, "kind": view.kind, "status": view.status, "total": view.total, "items": view.counts,
            "created_at": view.created_at.isoformat(), "finished_at": view.finished_at.isoformat() if view.finished_at else None,
            "expires_at": view.expires_at.isoformat()}}
        return json.dumps(body, separators=(",", ":")).encode()

    def callback_outcome(self, c: Callback, error: str | None) -> str:
        return self.callbacks.record(c, error)

    # -- the queue's side --------------------------------------------------------------------------
    async def _dispatch_all(self, keys: Sequence[tuple[str, int]]) -> None:
        """Hand items to the queue; one that cannot be handed over now is picked up by ``recover``."""
        if self.dispatch is None:
            return
        for batch_id, position in keys:
            try:
                await self.dispatch(batch_id, position)
            except Exception:  # noqa: BLE001 - the item stays queued; recover() hands it over again
                log.warning("queueing %s.%d failed; it is retried by the recovery sweep", batch_id, position,
                            exc_info=True)
                await asyncio.to_thread(self._postpone, batch_id, position, self.backoff_seconds)
                return

    def _postpone(self, batch_id: str, position: int, seconds: float) -> None:
        with self.db.session() as s:
            s.execute(update(BatchItem).where(BatchItem.batch_id == batch_id, BatchItem.position >= position,
                                              BatchItem.state == "queued")
                      .values(not_before=_now() + timedelta(seconds=seconds)))

    async def recover(self, *, everything: bool = False, limit: int = 500) -> int:
        """Queue again what no worker holds: items whose worker died (lease run out, or its process
        known dead), items waiting out a retry backoff, and -- with ``everything``, at the start of
        a background leader -- every queued item (a queue kept in memory forgets them in a crash)."""
        keys = await asyncio.to_thread(self._orphans, everything, limit)
        await self._dispatch_all(keys)
        return len(keys)

    def _orphans(self, everything: bool, limit: int) -> list[tuple[str, int]]:
        now = _now()
        keys: list[tuple[str, int]] = []
        with self.db.session() as s:
            running = s.scalars(select(BatchItem).where(BatchItem.state == "running").limit(limit)).all()
            for item in running:
                if abandoned(item.lease_owner, item.lease_until, now):
                    item.state, item.lease_owner, item.lease_until = "queued", None, None
                    keys.append((item.batch_id, item.position))
            query = select(BatchItem).where(BatchItem.state == "queued")
            if not everything:
                query = query.where(BatchItem.not_before.is_not(None), BatchItem.not_before <= now)
            for item in s.scalars(query.order_by(BatchItem.batch_id, BatchItem.position).limit(limit)):
                item.not_before = None
                if (item.batch_id, item.position) not in keys:
                    keys.append((item.batch_id, item.position))
        return keys

    async def process(self, batch_id: str, position: int) -> None:
        """Work on one item if it is still to be done (a duplicate job, or one for a deleted batch, does nothing)."""
        claim = await asyncio.to_thread(self._claim, batch_id, position)
        if claim is None:
            return
        batch, item, owner = claim
        renewer = asyncio.create_task(self._keep_lease(batch_id, position, owner))
        try:
            await asyncio.to_thread(pause_point, "batch.item")  # testing aid: held while a test kills the process
            outcome = await self._work(batch, item)
        except RetryLater as exc:
            await asyncio.to_thread(self._retry_or_fail, batch_id, position, owner, item.attempts, "temporarily_unavailable",
                                    str(exc))
            return
        except CoreError as exc:  # a refusal of the document: the item's answer
            await asyncio.to_thread(self._finish, batch_id, position, owner, "failed", None, exc.code, exc.message)
            return
        except Exception as exc:  # noqa: BLE001 - a bug or an outage: retried, then failed with the log's word
            log.exception("batch item %s.%d failed", batch_id, position)
            await asyncio.to_thread(self._retry_or_fail, batch_id, position, owner, item.attempts, "internal_error",
                                    f"internal error ({type(exc).__name__}); see the service log")
            return
        finally:
            renewer.cancel()
        recorded = await asyncio.to_thread(self._finish, batch_id, position, owner, "done", outcome, None, None)
        if not recorded:  # taken over or deleted meanwhile: what this attempt wrote is nobody's
            await asyncio.to_thread(self.blobs.delete, _namespace(batch_id), str(outcome["result"]))
        log.info("batch %s document %d done (attempt %d%s)", batch_id, position, item.attempts,
                 "" if recorded else ", result dropped: the item was taken over or deleted")

    def _claim(self, batch_id: str, position: int) -> tuple[Batch, BatchItem, str] | None:
        now = _now()
        lease = new_lease(self.lease_seconds, now)
        with self.db.session() as s:
            item = s.get(BatchItem, (batch_id, position))
            if item is None or item.state in ("done", "failed"):
                return None
            if item.state == "running" and not abandoned(item.lease_owner, item.lease_until, now):
                return None
            if item.not_before is not None and aware(item.not_before) > now:
                return None  # waiting out a backoff: recover() queues it when due
            claimed = s.execute(update(BatchItem).where(BatchItem.batch_id == batch_id,
                                                        BatchItem.position == position,
                                                        BatchItem.state == item.state,
                                                        BatchItem.attempts == item.attempts)
                                .values(state="running", attempts=item.attempts + 1, lease_owner=lease.owner,
                                        lease_until=lease.expires_at, started_at=now, not_before=None))
            if claimed.rowcount != 1:  # another worker was faster
                return None
            batch = s.get(Batch, batch_id)
            if batch is None:
                return None
            s.expunge(batch)
            s.refresh(item)
            s.expunge(item)
            return batch, item, lease.owner

    async def _keep_lease(self, batch_id: str, position: int, owner: str) -> None:
        """Renew the lease while the work runs, so that only a dead worker's item is taken over."""
        while True:
            await asyncio.sleep(self.lease_seconds / 4)
            until = _now() + timedelta(seconds=self.lease_seconds)
            try:
                await asyncio.to_thread(self._renew, batch_id, position, owner, until)
            except Exception:  # noqa: BLE001 - the next renewal tries again; the lease is long enough
                log.warning("renewing the lease of %s.%d failed", batch_id, position, exc_info=True)

    def _renew(self, batch_id: str, position: int, owner: str, until: datetime) -> None:
        with self.db.session() as s:
            s.execute(update(BatchItem).where(BatchItem.batch_id == batch_id, BatchItem.position == position,
                                              BatchItem.lease_owner == owner).values(lease_until=until))

    def _finish(self, batch_id: str, position: int, owner: str, state: str, outcome: dict[str, Any] | None,
                code: str | None, message: str | None) -> bool:
        """Record the item's end while the lease is still ``owner``'s; then close the batch when it
        was the last. False when the item was taken over or deleted."""
        now = _now()
        with self.db.session() as s:
            done = s.execute(update(BatchItem).where(BatchItem.batch_id == batch_id, BatchItem.position == position,
                                                     BatchItem.lease_owner == owner, BatchItem.state == "running")
                             .values(state=state, outcome=json.dumps(outcome) if outcome else None,
                                     error_code=code, error_message=(message or "")[:2000] or None,
                                     lease_until=None, finished_at=now))  # lease_owner stays: who did it
            if done.rowcount != 1:
                return False
            # one finisher of a batch at a time (a row lock; SQLite serialises writers anyway): two
            # workers ending its last two items together would each still see the other's running
            s.execute(select(Batch.id).where(Batch.id == batch_id).with_for_update())
            open_items = s.scalar(select(func.count()).select_from(BatchItem).where(
                BatchItem.batch_id == batch_id, BatchItem.state.in_(("queued", "running"))))
            closed = 0
            if not open_items:
                closed = s.execute(update(Batch).where(Batch.id == batch_id, Batch.finished_at.is_(None))
                                   .values(finished_at=now)).rowcount
                if closed:  # the webhook is due with the end it announces, in one transaction
                    s.execute(update(Batch).where(Batch.id == batch_id, Batch.callback_url.is_not(None))
                              .values(**due_now()))
            batch = s.get(Batch, batch_id)
            tenant_id = batch.tenant_id if batch is not None else None
        if closed and tenant_id is not None:
            self.audit.append("batch.finished", actor="batch", tenant_id=tenant_id, subject=batch_id)
        return True

    def _retry_or_fail(self, batch_id: str, position: int, owner: str, attempts: int, code: str, message: str) -> None:
        if attempts >= self.max_attempts:
            self._finish(batch_id, position, owner, "failed", None, code,
                         f"{message} (gave up after {attempts} attempts)")
            return
        wait = self.backoff_seconds * 2 ** (attempts - 1)
        with self.db.session() as s:
            s.execute(update(BatchItem).where(BatchItem.batch_id == batch_id, BatchItem.position == position,
                                              BatchItem.lease_owner == owner, BatchItem.state == "running")
                      .values(state="queued", lease_owner=None, lease_until=None, error_code=code,
                              error_message=message[:2000], not_before=_now() + timedelta(seconds=wait)))
        log.info("batch item %s.%d: %s; attempt %d of %d again in %.0f s", batch_id, position, code, attempts + 1,
                 self.max_attempts, wait)

    async def _work(self, batch: Batch, item: BatchItem) -> dict[str, Any]:
        options = json.loads(batch.options)
        with self.validation.temporary_dir() as tmp:
            source = Path(tmp) / "input"
            await asyncio.to_thread(self._fetch, batch.id, _input_blob(item.position), source)
            if batch.kind == "validation":
                return await self._validate(batch, item, options, source)
            return await self._extend(batch, item, options, source, Path(tmp) / "output")

    def _fetch(self, batch_id: str, name: str, target: Path) -> None:
        from remotesign.storage.faults import StorageUnavailable

        try:
            with self.blobs.open(_namespace(batch_id), name) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        except StorageUnavailable as exc:
            raise RetryLater(f"the document store is unavailable ({exc})") from exc

    def _store(self, batch_id: str, name: str, path: Path) -> None:
        from remotesign.storage.faults import StorageUnavailable

        try:
            with open(path, "rb") as fh:
                self.blobs.put(_namespace(batch_id), name, iter(lambda: fh.read(1 << 20), b""))
        except StorageUnavailable as exc:
            raise RetryLater(f"the document store is unavailable ({exc})") from exc

    async def _validate(self, batch: Batch, item: BatchItem, options: dict[str, Any], source: Path) -> dict[str, Any]:
        from remotesign.validation.model import ValidationInputError
        from remotesign.validation.reports import detailed_report, report_v1

        chosen = await asyncio.to_thread(lambda: self.validation.options(
            batch.tenant_id, policy=self.validation.named_policy(options.get("policy"))))
        try:
            document = await self.validation.validate(source, chosen, filename=item.name, actor=f"batch {batch.id}",
                                                      tenant_id=batch.tenant_id)
        except ValidationInputError as exc:
            if exc.code == "validation_timeout":
                raise RetryLater(exc.message) from exc
            raise BatchError(exc.code, exc.message, 422) from exc
        report = {"simpleReport": report_v1(document), "detailedReport": detailed_report(document)}
        name = _result_blob(item.position, item.attempts, "report.json")
        path = source.with_name("report.json")
        path.write_bytes(json.dumps(report).encode())
        await asyncio.to_thread(self._store, batch.id, name, path)
        return {"result": name, "report": True, "signature_form": document.signature_form,
                "signatures": len(document.signatures), "passed": document.valid_count,
                "indications": [s.indication.value for s in document.signatures]}

    async def _extend(self, batch: Batch, item: BatchItem, options: dict[str, Any], source: Path,
                      output: Path) -> dict[str, Any]:
        from remotesign.core.extension import ExtensionError
        from remotesign.formats.interface import Level

        try:
            extended = await self.extension.extend(batch.tenant_id, source, item.name, Level[options["level"]], output)
        except ExtensionError as exc:
            if exc.status >= 500:  # the TSA or a revocation source is down
                raise RetryLater(exc.message) from exc
            raise BatchError(exc.code, exc.message, exc.status) from exc
        name = _result_blob(item.position, item.attempts, "out")
        await asyncio.to_thread(self._store, batch.id, name, output)
        return {"result": name, "report": None, "format": extended.format,
                "levels_before": [lv.name for lv in extended.levels_before],
                "levels_after": [lv.name for lv in extended.levels_after],
                "size": output.stat().st_size, "sha256": extended.output_sha256}

    # -- housekeeping --------------------------------------------------------------------------------
    def sweep_expired(self, limit: int = 100) -> int:
        """Delete batches past their keeping time, with their documents and results (and batches
        whose submission never completed: their process died while storing the documents)."""
        with self.db.session() as s:
            expired = s.scalars(select(Batch.id).where(Batch.expires_at <= _now()).limit(limit)).all()
        for batch_id in expired:
            self._forget(batch_id)
        return len(expired)

    def _forget(self, batch_id: str) -> None:
        """The batch's files first, then its rows: a crash in between leaves rows the next sweep finds."""
        self.blobs.delete_namespace(_namespace(batch_id))
        with self.db.session() as s:
            s.execute(BatchItem.__table__.delete().where(BatchItem.batch_id == batch_id))
            s.execute(Batch.__table__.delete().where(Batch.id == batch_id))
