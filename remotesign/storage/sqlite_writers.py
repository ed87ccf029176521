"""Writers to one SQLite file take turns on a lock that wakes the next one at once.

SQLite lets one writer in at a time and makes the others poll: its busy handler sleeps 1, 2, 5,
10, 15, 20, 25, 25, 25, 50, 50, 100 ms between tries, so under load a writer that lost the race
often sleeps far longer than the transaction it waited for (the tail latency of every call that
writes). Here a connection takes a process-wide lock and an ``flock`` on ``<database>-wlock``
just before its first INSERT / UPDATE / DELETE / REPLACE — the statement before which the
sqlite3 driver opens its write transaction — and gives both back when that transaction ends
(commit, rollback, close). Waiters block in the kernel and wake when the holder commits.

SQLite's own locking stays underneath, unchanged: a writer that does not come through here (the
sqlite3 shell, a migration tool) is still serialised by SQLite's busy handler, and a thread that
cannot get the process-wide lock within ``WAIT_SECONDS`` goes on to SQLite's handler rather than
wait for ever (a caller that writes in one session while holding another open is then refused by
SQLite as before, not deadlocked). Reads never take the lock (WAL readers do not block writers).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from typing import Any

WAIT_SECONDS = 30.0
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")


def _is_write(statement: str) -> bool:
    return statement.lstrip()[:6].upper() in _WRITES


class WriterLock:
    """One per database file and process: an in-process lock (threads of this process) in front
    of an ``flock`` (other processes); each is taken and given back by one connection at a time."""

    def __init__(self, path: str | None) -> None:
        self._threads = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600) if path else None
        self._pid = os.getpid()

    def acquire(self) -> bool:
        """True once held; False when the wait timed out (the caller then relies on SQLite)."""
        if not self._threads.acquire(timeout=WAIT_SECONDS):
            return False
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except OSError:
                self._threads.release()
                return False
        return True

    @property
    def held(self) -> bool:
        """Whether a connection of this process holds the turn."""
        return self._threads.locked()

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            except OSError:
                pass
        self._threads.release()


class _Cursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        if _is_write(sql):
            self.connection._writer_turn()  # type: ignore[attr-defined]
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:  # type: ignore[override]
        if _is_write(sql):
            self.connection._writer_turn()  # type: ignore[attr-defined]
        return super().executemany(sql, seq_of_parameters)


def connection_factory(lock: WriterLock) -> type[sqlite3.Connection]:
    """A sqlite3.Connection class whose write transactions hold ``lock`` (``factory=`` of connect)."""

    class TurnTakingConnection(sqlite3.Connection):
        _lock = lock
        _holding = False

        def cursor(self, factory: Any = _Cursor) -> sqlite3.Cursor:  # type: ignore[override]
            return super().cursor(factory)

        def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
            return self.cursor().execute(sql, parameters)

        def _writer_turn(self) -> None:
            if not self._holding and not self.in_transaction:
                self._holding = lock.acquire()

        def _turn_over(self) -> None:
            if self._holding:
                self._holding = False
                lock.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                if not self.in_transaction:
                    self._turn_over()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self._turn_over()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self._turn_over()

    return TurnTakingConnection
