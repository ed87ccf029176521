"""Admission control: at most ``limit`` requests of this process are worked on at once; the others
wait their turn in arrival order, before any work is done for them.

Why: one service process runs on one core's worth of Python (the GIL). Without a gate, every
request that arrives starts at once and all of them share that core: under a burst, cheap calls
(a session start, a list) still answer in milliseconds while the signing calls, which queue for the
signing threads (core/offload.py), wait for the whole backlog -- seconds at the 99th percentile
(bench/load.py measured 3-5 s for CalculateDigest and finalizeSigning at 50 clients, 40-130 ms for
the rest). With a gate, every request waits in one first-come-first-served queue for about the
same time and is then worked on without dozens of others time-slicing the core with it: the
slowest calls' tail shrinks to about the mean, the memory in use is bounded by the limit, and the
total work is the same.

A request leaves the gate when its answer starts (a streamed download then goes on outside it) or
when it ends without one. Exempt: the health check (a balancer must see a busy node as alive), the
trust-service protocols under ``/pki/`` (time-stamps and OCSP answers requested while a signature
is being made, maybe by this very process: queueing them behind the signing calls that wait for
them would deadlock), and long polls, which mostly wait. A request that waited ``max_wait`` seconds
without its turn is answered 503 with Retry-After in its API's error shape, so a client learns the
node is overloaded instead of hanging until its own time-out.
"""

from __future__ import annotations

import asyncio
import collections
import time

from remotesign.api.limits import ASGIApp, Message, Receive, Scope, Send, send_response

#: Paths that never wait: the readiness check, the PKI protocols, long polls.
EXEMPT_PREFIXES = ("/health", "/pki/", "/v1/device/requests")


class AdmissionGate:
    """Pure ASGI middleware; ``limit`` 0 lets every request through at once (no gate)."""

    def __init__(self, app: ASGIApp, limit: int, max_wait: float = 30.0,
                 exempt_prefixes: tuple[str, ...] = EXEMPT_PREFIXES) -> None:
        self.app = app
        self.limit = limit
        self.max_wait = max_wait
        self.exempt_prefixes = exempt_prefixes
        self.active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def waiting(self) -> int:
        """Requests waiting for their turn (a cancelled one leaves the queue at once)."""
        return len(self._waiters)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or self.limit <= 0 or path.startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        began = time.monotonic()
        if not await self._acquire():
            waited = time.monotonic() - began
            from remotesign.api.errors import error_response

            await send_response(send, error_response(
                path, 503, "server_busy", f"the service is busy: no turn within {waited:.0f} s, try again",
                headers={"Retry-After": "5"}))
            return
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._release()

        async def releasing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self.app(scope, receive, releasing_send)
        finally:
            release()

    async def _acquire(self) -> bool:
        """Take a slot, waiting behind everyone who came first; False after ``max_wait``."""
        if self.active < self.limit and not self.waiting:
            self.active += 1
            return True
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        try:
            await asyncio.wait_for(asyncio.shield(turn), self.max_wait)
            return True
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            if turn.done() and not turn.cancelled():  # the slot was handed over meanwhile: pass it on
                self._release()
            else:
                turn.cancel()
                self._discard(turn)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return False

    def _discard(self, turn: asyncio.Future[None]) -> None:
        try:
            self._waiters.remove(turn)
        except ValueError:
            pass

    def _release(self) -> None:
        """Hand the slot to the first one still waiting, or free it."""
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.active -= 1
