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
from typing import Any

import procrastinate
from procrastinate import exceptions as pq_exceptions, jobs as pq_jobs
from sqlalchemy.engine import make_url

from remotesign.core.batches import BatchService

log = logging.getLogger("remotesign.jobs")

QUEUE = "batches"
TASK = "remotesign.batch_item"
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
    """This process's side of the queue: defers batch items, runs a worker, retires stalled jobs."""

    def __init__(self, database_url: str, batches: BatchService, *, concurrency: int = 2) -> None:
        self.batches = batches
        self.concurrency = concurrency
        self.shared = postgres_conninfo(database_url) is not None
        self.app = procrastinate.App(connector=_connector(database_url))

        @self.app.task(name=TASK, queue=QUEUE, pass_context=False)
        async def batch_item(batch_id: str, position: int) -> None:
            await batches.process(batch_id, position)

        self._task = batch_item
        self._worker: asyncio.Task[None] | None = None
        batches.dispatch = self.defer

    async def defer(self, batch_id: str, position: int) -> None:
        """Queue one item; already queued (and not yet taken) is fine."""
        try:
            await self._task.configure(queueing_lock=f"{batch_id}.{position}").defer_async(
                batch_id=batch_id, position=position)
        except pq_exceptions.AlreadyEnqueued:
            pass

    async def start(self) -> None:
        await self.app.open_async()
        self._worker = asyncio.create_task(self.app.run_worker_async(
            queues=[QUEUE], concurrency=self.concurrency, wait=True, install_signal_handlers=False,
            listen_notify=self.shared, fetch_job_polling_interval=1.0 if self.shared else 0.2,
            delete_jobs="successful", update_heartbeat_interval=HEARTBEAT_SECONDS,
            stalled_worker_timeout=STALLED_SECONDS, shutdown_graceful_timeout=10.0), name="job-worker")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
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
                await asyncio.to_thread(queue.batches.sweep_expired)
            else:
                leading = False
        except Exception:  # noqa: BLE001 - retried at the next round; never kill the loop
            log.exception("job recovery failed")
        await asyncio.sleep(interval)
