"""The background side of asynchronous signature requests and of every webhook: executing the
authorized requests, and delivering the callbacks of every source (core/callbacks.py: signature
requests, finished batches), signed, retried with backoff until delivered or given up.

Each execution and each delivery is its own job, with a bounded number in flight, so a slow or
dead receiver holds up only its own delivery (for at most the delivery timeout) and a long
signature holds up nothing else. The background leader finds what is due and hands it to the job
queue (jobs/queue.py sets ``dispatch_execution`` / ``dispatch_callback``), so any node's worker
does it; without a queue the leader runs it itself. The state lives in the database
(core/signature_requests.py): a callback is claimed for one attempt with a lease, so after a crash
another process delivers it, and an execution whose process died is taken over when its lease
runs out -- the queue only carries the work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from remotesign.core.callbacks import Callback, CallbackSource
from remotesign.core.errors import CoreError
from remotesign.core.offload import off_loop
from remotesign.core.signature_requests import CALLBACK_SOURCE, SignatureRequestService
from remotesign.notify.webhooks import DeliveryFailed, WebhookSender

log = logging.getLogger("remotesign.requests")


class SignatureRequestRunner:
    def __init__(self, requests: SignatureRequestService, sender: WebhookSender,
                 callback_secret: Callable[[str], bytes], *, max_executions: int = 2,
                 max_deliveries: int = 16) -> None:
        self.requests = requests
        self.sender = sender
        self.callback_secret = callback_secret
        self.max_executions = max_executions
        self.max_deliveries = max_deliveries
        #: where callbacks come from, by Callback.source: the signature requests, and whatever
        #: registers with ``add_callback_source`` (batches)
        self.sources: dict[str, CallbackSource] = {CALLBACK_SOURCE: requests}
        self._executions: dict[str, asyncio.Task[None]] = {}
        self._deliveries: set[asyncio.Task[None]] = set()
        self.dispatch_execution: Callable[[str, str], Awaitable[None]] | None = None
        self.dispatch_callback: Callable[[Callback], Awaitable[None]] | None = None

    def add_callback_source(self, name: str, source: CallbackSource) -> None:
        self.sources[name] = source

    async def _claim_callbacks(self, limit: int) -> list[Callback]:
        """Due callbacks of every source, at most ``limit`` in all (each source gets its turn)."""
        claimed: list[Callback] = []
        for source in self.sources.values():
            if len(claimed) >= limit:
                break
            claimed += await asyncio.to_thread(source.claim_callbacks, limit - len(claimed))
        return claimed

    async def tick(self) -> None:
        """Start what is due and fits in the limits; returns without waiting for it."""
        if self.dispatch_execution is not None and self.dispatch_callback is not None:
            await self._hand_over(self.dispatch_execution, self.dispatch_callback)
            return
        free = self.max_executions - len(self._executions)
        if free > 0:
            for tenant_id, request_id in await asyncio.to_thread(self.requests.due_executions, free):
                if request_id not in self._executions:
                    task = asyncio.create_task(self._execute(tenant_id, request_id))
                    self._executions[request_id] = task
                    task.add_done_callback(lambda _t, rid=request_id: self._executions.pop(rid, None))
        free = self.max_deliveries - len(self._deliveries)
        if free > 0:
            for callback in await self._claim_callbacks(free):
                task = asyncio.create_task(self._deliver(callback))
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)

    async def _hand_over(self, execution: Callable[[str, str], Awaitable[None]],
                         callback: Callable[[Callback], Awaitable[None]]) -> None:
        """Queue what is due: executions (the queue keeps one job per request while it waits), and
        callbacks claimed for one attempt (a job lost with its process is claimed again when the
        attempt's lease runs out)."""
        for tenant_id, request_id in await asyncio.to_thread(self.requests.due_executions, self.max_executions * 4):
            await execution(tenant_id, request_id)
        for claimed in await self._claim_callbacks(self.max_deliveries):
            await callback(claimed)

    async def execute_job(self, tenant_id: str, request_id: str) -> None:
        """The queue's execution job."""
        await self._execute(tenant_id, request_id)

    async def deliver_job(self, callback: Callback) -> None:
        """The queue's delivery job: one attempt, recorded."""
        await self._deliver(callback)

    async def run(self, leader: Callable[[], bool], interval: float = 0.5) -> None:
        """``tick`` every ``interval`` seconds while ``leader()`` (one process of a group)."""
        while True:
            try:
                if leader():
                    await self.tick()
            except Exception:  # noqa: BLE001 - retried at the next tick; never kill the loop
                log.exception("signature request runner failed")
            await asyncio.sleep(interval)

    async def _execute(self, tenant_id: str, request_id: str) -> None:
        try:
            await off_loop(lambda: self.requests.execute(tenant_id, request_id))
        except CoreError as exc:  # recorded on the request; its callback tells the client (or: another
            log.info("asynchronous signature request %s: %s", request_id, exc.code)  # worker has it: in_progress)
        except Exception:  # noqa: BLE001
            log.exception("asynchronous signature request %s failed", request_id)

    async def _deliver(self, callback: Callback) -> None:
        source = self.sources.get(callback.source)
        if source is None:  # a job queued by a newer version; its lease runs out and it comes back
            log.warning("callback of %s: unknown source %r", callback.subject_id, callback.source)
            return
        error: str | None
        try:
            body = await asyncio.to_thread(source.callback_body, callback)
            secret = await asyncio.to_thread(self.callback_secret, callback.tenant_id)
            await self.sender.post(callback.url, body, secret, event=callback.source)
            error = None
        except DeliveryFailed as exc:
            error = str(exc)
        except CoreError as exc:  # the request went away meanwhile
            error = exc.message
        except Exception as exc:  # noqa: BLE001 - recorded and retried like a failed delivery
            log.exception("callback of %s failed", callback.subject_id)
            error = f"internal error: {type(exc).__name__}"
        try:
            status = await asyncio.to_thread(source.callback_outcome, callback, error)
        except Exception:  # noqa: BLE001 - the claim's lease runs out and the callback is retried
            log.exception("recording the callback of %s failed", callback.subject_id)
            return
        log.info("callback of %s attempt %d: %s%s", callback.subject_id, callback.attempt, status,
                 f" ({error})" if error else "")
