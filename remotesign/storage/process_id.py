"""Which process owns something (a signing lease, a temporary blob), written so that other processes
sharing the database or the blob directory can tell whether that owner is provably gone.

An id is ``HOST.PID.START``: HOST hashes the host name, the kernel boot id and the pid namespace
(so two containers or two boots never look like one host), PID is the process id and START its
start time in clock ticks since boot (so a recycled pid is not mistaken for the old process).
A process is *known dead* when it ran under this very HOST and its pid is gone, a zombie, or
now belongs to a process started at another time -- or, on another host, when its heartbeat in
the shared database went silent (storage/liveness.py installs that check in serving processes).
Everything else (an unreadable /proc, a process without heartbeats) counts as possibly alive: a
lease of such an owner is only taken over when it expires.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_cache: tuple[int, "ProcessId"] | None = None
_remote_check: "Callable[[ProcessId], bool] | None" = None


@dataclass(frozen=True)
class ProcessId:
    host: str
    pid: int
    started: int

    def __str__(self) -> str:
        return f"{self.host}.{self.pid}.{self.started}"

    @classmethod
    def parse(cls, text: str | None) -> "ProcessId | None":
        """The id at the start of ``text`` (a lease owner may carry a ``#claim`` suffix); None if malformed."""
        if not text:
            return None
        parts = text.split("#", 1)[0].split(".")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            return None
        return cls(parts[0], int(parts[1]), int(parts[2]))


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def host_key() -> str:
    """12 hex characters naming this host, boot and pid namespace."""
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = ""
    # REMOTESIGN_TEST_HOST: testing aid, a name mixed in so that a test can run processes of
    # "other hosts" on one machine. Unset in production.
    raw = "\0".join((socket.gethostname(), _read("/proc/sys/kernel/random/boot_id"), pidns,
                      os.environ.get("REMOTESIGN_TEST_HOST", "")))
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of ``pid`` from /proc, or None when /proc does not list it."""
    raw = _read(f"/proc/{pid}/stat")
    if not raw or ")" not in raw:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    try:
        return fields[0], int(fields[19])  # fields 3 and 22 of proc(5), counted after the command name
    except (IndexError, ValueError):
        return None


def current() -> ProcessId:
    """This process's id (computed again after a fork)."""
    global _cache
    pid = os.getpid()
    if _cache is None or _cache[0] != pid:
        stat = _stat(pid)
        _cache = (pid, ProcessId(host_key(), pid, stat[1] if stat else 0))
    return _cache[1]


def set_remote_check(check: Callable[[ProcessId], bool] | None) -> None:
    """How to tell whether a process of another host is gone (None: it never is known to be)."""
    global _remote_check
    _remote_check = check


def known_dead(owner: ProcessId | None) -> bool:
    """True only when ``owner`` is provably no longer running: on this host by /proc, on another by
    its silent heartbeat."""
    if owner is None:
        return False
    if owner.host != current().host:
        check = _remote_check
        return check is not None and check(owner)
    if owner == current():
        return False
    stat = _stat(owner.pid)
    if stat is not None:
        state, started = stat
        return state in ("Z", "X") or (owner.started != 0 and started != owner.started)
    if Path("/proc/self/stat").exists():
        return True  # /proc works here and does not list the pid
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
