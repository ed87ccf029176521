"""Shared by the benchmarks: one line of figures for a series of sequential call times."""

from __future__ import annotations

import statistics


def report(name: str, times: list[float]) -> None:
    """Print calls per second and the median / 95th percentile latency of ``times`` (seconds)."""
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(f"{name}: {len(times) / sum(times):.1f} calls/s, p50 {statistics.median(times) * 1000:.0f} ms, "
          f"p95 {p95 * 1000:.0f} ms ({len(times)} calls)")
