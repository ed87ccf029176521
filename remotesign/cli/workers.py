"""``remotesign serve --workers N``: N processes share one listening socket, and a worker that
holds more connections than the least-loaded live worker leaves new ones to it.

Each process has its own GIL, so a worker's share of keep-alive connections is its share of the
work. uvicorn's multi-process mode lets whichever worker wakes first accept everything pending
(measured: 40 of 50 clients on one worker, 10 on the other, one core busy and one idle); one
SO_REUSEPORT socket per worker spreads connections by a hash instead, which still gives 30/20
splits often enough to matter. Here every worker publishes its open-connection count in a small
shared array and accepts only while it is not ahead of the least-loaded live worker (least
connections, as a load balancer would). A connection left waiting longer than ``PATIENCE_SECONDS``
(the other workers busy or stuck) is accepted anyway: balancing never costs more than that.

The supervisor owns the socket for its whole life, restarts a worker that dies, and on SIGINT /
SIGTERM stops them all (SIGTERM: uvicorn finishes running requests; SIGKILL after a grace
period). A worker that dies right after its start stops the group with an error instead of
restarting in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import select
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn

log = logging.getLogger("remotesign.workers")

GRACE_SECONDS = 30.0           # a stopping worker finishes its requests (uvicorn's graceful shutdown)
STARTUP_FAILURE_WINDOW = 10.0  # a worker dying this soon after its start is a failure to start
SUPERVISOR_POLL_SECONDS = 0.2
POLL_SECONDS = 0.002           # how often a worker that is ahead looks at the accept queue
PATIENCE_SECONDS = 0.02        # how long it leaves a waiting connection to the others (default)
PATIENCE_ENV = "REMOTESIGN_WORKER_PATIENCE_MS"  # another bound, e.g. on a machine too busy to wake a worker in 20 ms
REEVALUATE_SECONDS = 0.05      # a worker blocked in accept re-checks whether it got ahead
ABSENT = -1                    # count of a slot whose worker is not serving


class BalancedServer(uvicorn.Server):
    """uvicorn's server with its own accept loop on the shared socket (least connections)."""

    def __init__(self, config: uvicorn.Config, listener: socket.socket, slot: int, counts: Any) -> None:
        super().__init__(config)
        self.listener = listener
        self.slot = slot
        self.counts = counts
        self._acceptor: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the application's start-up; no listener of uvicorn's own
        if self.should_exit:
            return
        self.listener.setblocking(False)
        self._acceptor = asyncio.create_task(self._accept_loop())

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.counts[self.slot] = ABSENT
        if self._acceptor is not None:
            self._acceptor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._acceptor
        await super().shutdown(sockets)

    def _ahead(self) -> bool:
        """Whether this worker holds more connections than some other live worker (publishing its own count)."""
        mine = len(self.server_state.connections)
        self.counts[self.slot] = mine
        others = [c for i, c in enumerate(self.counts) if i != self.slot and c != ABSENT]
        return bool(others) and mine > min(others)

    def _waiting(self) -> bool:
        """Whether a connection is waiting in the shared accept queue."""
        readable, _, _ = select.select([self.listener], [], [], 0)
        return bool(readable)

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(config=config, server_state=self.server_state,  # type: ignore[call-arg]
                                              app_state=self.lifespan.state, _loop=loop)

        patience = _patience()
        waited = 0.0
        while True:
            if self._ahead():
                waited = waited + POLL_SECONDS if self._waiting() else 0.0
                if waited < patience:
                    await asyncio.sleep(POLL_SECONDS)
                    continue
            try:
                conn, _ = await asyncio.wait_for(loop.sock_accept(self.listener), REEVALUATE_SECONDS)
            except TimeoutError:
                continue
            except OSError as exc:  # EMFILE and the like: wait, as uvicorn would, rather than spin
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            waited = 0.0
            try:
                await loop.connect_accepted_socket(protocol, conn, ssl=config.ssl)
            except OSError:
                conn.close()  # the client went away meanwhile
            self.counts[self.slot] = len(self.server_state.connections)


def _patience() -> float:
    """Seconds an ahead worker leaves a waiting connection to the others."""
    raw = os.environ.get(PATIENCE_ENV, "")
    try:
        return max(0.0, float(raw) / 1000) if raw else PATIENCE_SECONDS
    except ValueError:
        log.warning("%s=%r is not a number of milliseconds; using %d", PATIENCE_ENV, raw, PATIENCE_SECONDS * 1000)
        return PATIENCE_SECONDS


def _worker_main(listener: socket.socket, slot: int, counts: Any, host: str, port: int, log_level: str,
                 access_log: bool) -> None:
    config = uvicorn.Config("remotesign.cli.main:worker_app", factory=True, host=host, port=port,
                            log_level=log_level, access_log=access_log)
    BalancedServer(config, listener, slot, counts).run()


def _listener(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_workers(count: int, host: str, port: int, log_level: str, access_log: bool) -> int:
    """Run ``count`` workers until SIGINT / SIGTERM; returns the process exit status."""
    try:
        listener = _listener(host, port)  # fails here, once, if the port is taken
    except OSError as exc:
        print(f"remotesign serve: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    context = multiprocessing.get_context("spawn")
    counts = context.Array("i", [ABSENT] * count, lock=False)
    stopping: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start(slot: int) -> tuple[BaseProcess, float]:
        counts[slot] = ABSENT
        process = context.Process(target=_worker_main, daemon=False,
                                  args=(listener, slot, counts, host, port, log_level, access_log))
        process.start()
        return process, time.monotonic()

    workers = [start(slot) for slot in range(count)]
    status = 0
    try:
        while not stopping:
            time.sleep(SUPERVISOR_POLL_SECONDS)
            for slot, (process, started) in enumerate(workers):
                if process.is_alive():
                    continue
                counts[slot] = ABSENT
                if time.monotonic() - started < STARTUP_FAILURE_WINDOW:
                    print(f"remotesign serve: worker {process.pid} failed to start (exit status "
                          f"{process.exitcode})", file=sys.stderr)
                    status = 1
                    stopping.append(0)
                    break
                log.warning("worker %s exited with status %s; starting another", process.pid, process.exitcode)
                workers[slot] = start(slot)
    finally:
        for process, _ in workers:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + GRACE_SECONDS
        for process, _ in workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        listener.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
