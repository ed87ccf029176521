"""Running CPU-heavy coroutines off the event loop thread.

pyHanko and asn1crypto do their work (writing PDF revisions, building and serialising CMS, reading
the document back for the DSS) in plain Python inside ``async`` functions: awaited on the service's
event loop, every such stretch blocks all other requests until it ends. ``off_loop`` runs such a
coroutine to completion in a worker thread on an event loop of its own, so the service's loop only
waits for the result and keeps answering other requests meanwhile.

The work is not cancelled with the request that awaits it: it runs to its end (recording its
result or giving its claim back), exactly as a request that finished would. Worker threads are
joined at interpreter exit, so a graceful shutdown lets running work finish.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

#: Threads per process for CPU-heavy work. It holds the GIL, so more threads than this add no
#: throughput: they only make every other request of the process (a session start, a list) wait
#: for GIL slices behind them. Further work queues for its turn. Set from the service's settings
#: (``REMOTESIGN_HEAVY_THREADS``) by :func:`configure`.
DEFAULT_THREADS = 2

_lock = threading.Lock()
_threads = DEFAULT_THREADS
_executor: ThreadPoolExecutor | None = None
_in_worker = threading.local()


def configure(threads: int) -> None:
    """Size the pool (before first use; later calls replace it, letting running work finish)."""
    global _threads, _executor
    with _lock:
        _threads = max(1, threads)
        if _executor is not None and _executor._max_workers != _threads:  # noqa: SLF001
            _executor.shutdown(wait=False)
            _executor = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=_threads, thread_name_prefix="remotesign-work")
        return _executor


def _run(make: Callable[[], Awaitable[T]]) -> T:
    """In a pool thread: run the coroutine on the thread's own event loop, kept for the thread's
    life. A loop per call (``asyncio.run``) cost a new selector, self-pipe and default executor
    each time, and its ``to_thread`` calls a new thread started and joined every call."""
    async def main() -> T:
        return await make()

    loop = getattr(_in_worker, "loop", None)
    if loop is None or loop.is_closed():
        loop = _in_worker.loop = asyncio.new_event_loop()
    _in_worker.active = True
    try:
        return loop.run_until_complete(main())
    finally:
        _in_worker.active = False
        _cancel_leftovers(loop)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """What ``asyncio.run`` does at its end: no task of one call may run on into the next."""
    leftovers = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in leftovers:
        task.cancel()
    if leftovers:
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))


async def off_loop(make: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine that ``make()`` returns in a worker thread with its own event loop and
    return its result (or raise its exception). ``make`` is called in the worker, so no coroutine
    is created that might never be awaited; context variables (the request id of log records)
    are carried over. Called from work already off the loop, it just awaits (a worker waiting for
    another worker could exhaust the pool)."""
    if getattr(_in_worker, "active", False):
        return await make()
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_pool(), context.run, _run, make)
