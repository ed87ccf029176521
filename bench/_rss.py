"""Shared by the benchmarks: resident memory of a process from /proc, and its peak reset, so a
run's peak growth is VmHWM after the run minus VmRSS at the reset."""

from __future__ import annotations

from pathlib import Path


def status(field: str, pid: int | str = "self") -> int:
    """A /proc/PID/status memory field (VmRSS, VmHWM, ...) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak(pid: int | str = "self") -> int:
    """Reset the process's peak RSS to its current RSS (clear_refs 5) and return that RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return status("VmRSS", pid)
