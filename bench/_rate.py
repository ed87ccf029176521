"""Shared by the benchmarks: how many calls per second a function sustains from N threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def rate(call: Callable[[], object], threads: int = 1, seconds: float = 3.0) -> float:
    """Calls of ``call`` per second from ``threads`` threads started together, over ``seconds``."""
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)
    deadline = 0.0

    def loop(i: int) -> None:
        barrier.wait()
        n = 0
        while time.perf_counter() < deadline:
            call()
            n += 1
        counts[i] = n

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    barrier.wait()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - t0)
