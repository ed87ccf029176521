"""The job queue: procrastinate, on PostgreSQL when the service runs on PostgreSQL (every node's
worker takes jobs from one table, woken by LISTEN/NOTIFY), and in this process's memory on the
embedded SQLite default (one node; procrastinate's in-memory connector).

Why procrastinate: a maintained, PostgreSQL-native queue with locks that keep one job to one
worker, queueing locks that keep one item from being queued twice, worker heartbeats and
stalled-job detection -- the parts one should not write oneself. What the queue loses (the
in-memory queue in a crash, a job whose worker died) is not lost work: the domain's tables say
what is still to be done and ``BatchService.recover`` queues it again (leader, periodically).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import anyio.to_thread
import procrastinate
from procrastinate import exceptions as pq_exceptions, jobs as pq_jobs
from sqlalchemy.engine import make_url

from remotesign.core.batches import BatchService
from remotesign.core.deferred_results import DeferredResults
from remotesign.core.request_runner import SignatureRequestRunner
from remotesign.core.callbacks import Callback
from remotesign.core.signature_requests import CALLBACK_SOURCE

log = logging.getLogger("remotesign.jobs")

QUEUE = "batches"
REQUESTS = "signature-requests"  # asynchronous signature requests' executions, callbacks, deferred calls
TASK = "remotesign.batch_item"
REQUEST_CONCURRENCY = 16
HEARTBEAT_SECONDS = 5.0
STALLED_SECONDS = 30.0


def postgres_conninfo(database_url: str) -> str | None:
    """libpq connection string of a SQLAlchemy PostgreSQL URL; None for another database."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _connector(database_url: str) -> Any:
    conninfo = postgres_conninfo(database_url)
    if conninfo is None:
        from procrastinate.testing import InMemoryConnector

        return InMemoryConnector()
    return procrastinate.PsycopgConnector(conninfo=conninfo, kwargs={"application_name": "remotesign-jobs"},
                                          min_size=1, max_size=4)


class JobQueue:
    """This process's side of the queue: defers batch items, the signature requests' executions
    and callbacks and the deferred (CSC asynchronous) calls, runs the workers, retires stalled jobs."""

    def __init__(self, database_url: str, batches: BatchService, requests: SignatureRequestRunner | None = None,
                 deferred: DeferredResults | None = None, *, concurrency: int = 2) -> None:
        self.batches = batches
        self.deferred = deferred
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self.concurrency = concurrency
        self.shared = postgres_conninfo(database_url) is not None
        self.app = procrastinate.App(connector=_connector(database_url))

        @self.app.task(name=TASK, queue=QUEUE, pass_context=False)
        async def batch_item(batch_id: str, position: int) -> None:
            await batches.process(batch_id, position)

        self._task = batch_item
        self._workers: list[asyncio.Task[None]] = []
        batches.dispatch = self.defer
        if requests is not None:
            @self.app.task(name="remotesign.signature_request", queue=REQUESTS, pass_context=False)
            async def signature_request(tenant_id: str, request_id: str) -> None:
                await requests.execute_job(tenant_id, request_id)

            @self.app.task(name="remotesign.callback", queue=REQUESTS, pass_context=False)
            async def callback(tenant_id: str, url: str, attempt: int, subject_id: str | None = None,
                               source: str = CALLBACK_SOURCE, request_id: str | None = None) -> None:
                # request_id: how jobs queued before batches had callbacks name their subject
                await requests.deliver_job(Callback(source, subject_id or request_id or "", tenant_id, url, attempt))

            async def execution(tenant_id: str, request_id: str) -> None:
                await self._defer(signature_request, f"execute.{request_id}", tenant_id=tenant_id,
                                  request_id=request_id)

            async def delivery(c: Callback) -> None:
                await self._defer(callback, f"callback.{c.source}.{c.subject_id}.{c.attempt}", source=c.source,
                                  subject_id=c.subject_id, tenant_id=c.tenant_id, url=c.url, attempt=c.attempt)

            requests.dispatch_execution, requests.dispatch_callback = execution, delivery
        if deferred is not None:
            @self.app.task(name="remotesign.deferred_call", queue=REQUESTS, pass_context=False)
            async def deferred_call(id_hash: str) -> None:
                # in the threads synchronous API calls run in (it is one, made later), not in the
                # loop's small default pool, which uploads and batch work share
                await anyio.to_thread.run_sync(deferred.run, id_hash)

            self._deferred_task = deferred_call

    def _defer_call(self, id_hash: str) -> None:
        """Queue one deferred call from any thread (the facades' calls run in worker threads)."""
        if self._loop is None:
            raise RuntimeError("the job queue is not running")
        if self._loop_thread == threading.get_ident():  # it would wait on itself
            raise RuntimeError("deferred calls are queued from worker threads, not from the event loop")
        job = self._defer(self._deferred_task, f"deferred.{id_hash}", id_hash=id_hash)
        asyncio.run_coroutine_threadsafe(job, self._loop).result(timeout=30)

    async def defer(self, batch_id: str, position: int) -> None:
        """Queue one batch item; already queued (and not yet taken) is fine."""
        await self._defer(self._task, f"{batch_id}.{position}", batch_id=batch_id, position=position)

    @staticmethod
    async def _defer(task: Any, lock: str, **arguments: Any) -> None:
        try:
            await task.configure(queueing_lock=lock).defer_async(**arguments)
        except pq_exceptions.AlreadyEnqueued:
            pass

    async def start(self) -> None:
        """Two workers: batch documents (``concurrency`` at once: CPU work) and the signature
        requests' jobs (many at once: a callback mostly waits on its receiver, and a dead receiver
        must hold up neither signatures nor batches)."""
        await self.app.open_async()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        if self.deferred is not None:
            self.deferred.dispatch = self._defer_call
        self._workers = [asyncio.create_task(self._work([QUEUE], self.concurrency, "batches"), name="job-worker"),
                         asyncio.create_task(self._work([REQUESTS], REQUEST_CONCURRENCY, "requests"),
                                             name="request-worker")]

    def _work(self, queues: list[str], concurrency: int, name: str) -> Any:
        return self.app.run_worker_async(
            queues=queues, name=name, concurrency=concurrency, wait=True, install_signal_handlers=False,
            listen_notify=self.shared, fetch_job_polling_interval=1.0 if self.shared else 0.2,
            delete_jobs="successful", update_heartbeat_interval=HEARTBEAT_SECONDS,
            stalled_worker_timeout=STALLED_SECONDS, shutdown_graceful_timeout=10.0)

    async def stop(self) -> None:
        if self.deferred is not None:
            self.deferred.dispatch = None
        self._loop = None
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            try:
                await worker
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping anyway
                pass
        await self.app.close_async()

    async def retire_stalled(self) -> int:
        """Jobs whose worker stopped sending heartbeats (its process died): marked failed, as the
        item they carried is queued again by ``BatchService.recover`` once its lease runs out."""
        if not self.shared:
            return 0
        count = 0
        for job in await self.app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_SECONDS):
            try:
                await self.app.job_manager.finish_job(job, status=pq_jobs.Status.FAILED, delete_job=True)
                count += 1
            except Exception:  # noqa: BLE001 - another node retired it first
                pass
        return count


async def run_recovery(queue: JobQueue, leader: Any, interval: float = 5.0) -> None:
    """The background leader's loop: queue again what no worker holds, retire stalled jobs,
    forget expired batches. The first round after becoming leader queues every queued item
    (an in-memory queue forgets them when its process dies)."""
    leading = False
    while True:
        try:
            if leader():
                await queue.batches.recover(everything=not leading)
                leading = True
                await queue.retire_stalled()
                if queue.deferred is not None:
                    await asyncio.to_thread(queue.deferred.recover)
                await asyncio.to_thread(queue.batches.sweep_expired)
            else:
                leading = False
        except Exception:  # noqa: BLE001 - retried at the next round; never kill the loop
            log.exception("job recovery failed")
        await asyncio.sleep(interval)
