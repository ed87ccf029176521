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
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

#: Same sizing as asyncio's default executor: the work is CPU-bound Python (one GIL) with waits for
#: time-stamps and revocation data in between, so a few more threads than cores.
WORKERS = min(32, (os.cpu_count() or 1) + 4)

_executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="remotesign-work")
_in_worker = threading.local()


def _run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await make()

    _in_worker.active = True
    try:
        return asyncio.run(main())
    finally:
        _in_worker.active = False


async def off_loop(make: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine that ``make()`` returns in a worker thread with its own event loop and
    return its result (or raise its exception). ``make`` is called in the worker, so no coroutine
    is created that might never be awaited; context variables (the request id of log records)
    are carried over. Called from work already off the loop, it just awaits (a worker waiting for
    another worker could exhaust the pool)."""
    if getattr(_in_worker, "active", False):
        return await make()
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_executor, context.run, _run, make)
