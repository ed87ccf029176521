"""``remotesign serve --workers N``: N processes, each with its own listening socket on the same
port (SO_REUSEPORT), so the kernel spreads new connections evenly over them.

uvicorn's own multi-process mode shares one listening socket; whichever worker wakes first
accepts, so a burst of connections lands unevenly — measured 40 of 50 keep-alive clients on one
worker and 10 on the other, which left one process (one GIL) doing most of the work while the
other idled. With one socket per worker the kernel hashes each connection to a socket instead.

The supervisor holds the port bound (not listening) for its whole life so that no other program
takes it between worker restarts, restarts a worker that dies, and on SIGINT / SIGTERM stops
them all (SIGTERM, then SIGKILL after a grace period). A worker that cannot start (its port
taken, a broken configuration) stops the whole group with an error instead of restarting in a loop.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess

log = logging.getLogger("remotesign.workers")

GRACE_SECONDS = 30.0      # a stopping worker finishes its requests (uvicorn's graceful shutdown)
STARTUP_FAILURE_WINDOW = 10.0  # a worker dying this soon after its start is a failure to start
POLL_SECONDS = 0.2


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker_main(host: str, port: int, log_level: str, access_log: bool) -> None:
    """One worker: its own listening socket, then uvicorn on the service's worker app (which
    opens the listener only after the application's start-up has finished)."""
    import uvicorn

    sock = _socket(host, port)
    sock.listen(2048)
    sock.set_inheritable(True)
    config = uvicorn.Config("remotesign.cli.main:worker_app", factory=True, host=host, port=port,
                            log_level=log_level, access_log=access_log)
    uvicorn.Server(config).run(sockets=[sock])


def serve_workers(count: int, host: str, port: int, log_level: str, access_log: bool) -> int:
    """Run ``count`` workers until SIGINT / SIGTERM; returns the process exit status."""
    try:
        reservation = _socket(host, port)  # fails here, once, if the port is taken
    except OSError as exc:
        print(f"remotesign serve: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    context = multiprocessing.get_context("spawn")
    stopping: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start() -> tuple[BaseProcess, float]:
        process = context.Process(target=_worker_main, args=(host, port, log_level, access_log), daemon=False)
        process.start()
        return process, time.monotonic()

    workers = [start() for _ in range(count)]
    status = 0
    try:
        while not stopping:
            time.sleep(POLL_SECONDS)
            for i, (process, started) in enumerate(workers):
                if process.is_alive():
                    continue
                if time.monotonic() - started < STARTUP_FAILURE_WINDOW:
                    print(f"remotesign serve: worker {process.pid} failed to start (exit status "
                          f"{process.exitcode})", file=sys.stderr)
                    status = 1
                    stopping.append(0)
                    break
                log.warning("worker %s exited with status %s; starting another", process.pid, process.exitcode)
                workers[i] = start()
    finally:
        for process, _ in workers:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes running requests, then exits
        deadline = time.monotonic() + GRACE_SECONDS
        for process, _ in workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        reservation.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
