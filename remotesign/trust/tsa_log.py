"""The record of issued time-stamp tokens, written with group commit.

Every token's record (serial, genTime, imprint) must be committed before the token is signed: the
primary key on the serial makes serials unique across processes and restarts, and a token never
exists without its record. One transaction per token made the TSA wait on the database (and, on
SQLite, on the other workers' write lock). Here concurrent callers share transactions: the first
caller to find no flush in progress commits everything queued so far in one INSERT, the others wait
for that commit; nobody returns before its own row is committed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from remotesign.storage.db import Database
from remotesign.storage.models import TimestampRecord

MAX_BATCH = 256


@dataclass
class _Pending:
    row: dict
    done: bool = False
    error: BaseException | None = None
    clash: bool = False


class SerialClash(Exception):
    """Another token already has this serial number; draw a new one."""


class TokenLog:
    """Group-committed inserts into the ``timestamps`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._table = TimestampRecord.__table__
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._flushing = False

    def record(self, serial: int, gen_time: datetime, hash_algorithm: str, imprint: bytes) -> None:
        """Commit the record of token ``serial``; returns once it is durable in the database.
        Raises SerialClash when the serial is taken, or the database's error."""
        item = _Pending({"serial": format(serial, "x"), "gen_time": gen_time, "hash_algorithm": hash_algorithm,
                         "message_imprint_hex": imprint.hex()})
        with self._cond:
            self._queue.append(item)
        while True:
            with self._cond:
                while self._flushing and not item.done:
                    self._cond.wait()
                if item.done:
                    break
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                self._flushing = True
            try:
                self._write(batch)
            finally:
                with self._cond:
                    self._flushing = False
                    self._cond.notify_all()
        if item.clash:
            raise SerialClash(item.row["serial"])
        if item.error is not None:
            raise item.error

    def _write(self, batch: list[_Pending]) -> None:
        """Insert ``batch`` in one transaction; on a serial clash, row by row so only the clashing
        rows fail. Every item leaves marked done."""
        try:
            try:
                with self.db.engine.begin() as conn:
                    conn.execute(self._table.insert(), [p.row for p in batch])
            except IntegrityError:
                for p in batch:
                    try:
                        with self.db.engine.begin() as conn:
                            conn.execute(self._table.insert(), [p.row])
                    except IntegrityError:
                        p.clash = True
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
            for p in batch:
                if not p.clash:
                    p.error = exc
        with self._cond:
            for p in batch:
                p.done = True


__all__ = ["SerialClash", "TokenLog"]
