"""Which process of an installation runs the background work, and start-up work one at a time.

Several processes share one database: the workers of ``serve --workers N`` on one host, and the
nodes of a scaled-out installation, each with its own home directory, on several hosts. Exactly
one of them, the *leader*, runs the background work (the sweeps, the audit sealer, the signature
request runner); the others serve requests only. Leadership is a lock that belongs to the
database, not to a home directory:

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock(LEADER_KEY)``) held on a
  connection of its own for the life of the process. It is confirmed every tick (a query on that
  connection that also checks the lock is still granted): when the connection died (the server
  restarted, the network failed, the server ended the session), leadership is lost at once and
  tried for again at the next tick. When the leader dies its session ends, the server releases
  the lock, and another node takes it at its next tick. The session asks the server to end it
  when it stays idle (``idle_session_timeout``) or its client's TCP keepalives stop, so a leader
  whose host vanished without closing the connection releases the lock within about half a
  minute; the leader itself stops believing it leads after ``STALE_AFTER_SECONDS`` without a
  confirmation, before the server can have given the lock to another node.
* SQLite (one host): an exclusive ``flock`` on a file beside the database, taken without
  waiting and kept for the process's life; the kernel releases it when the process dies.

A new leader may overlap an old one that is about to notice its loss for at most a tick; the
background work is safe under that (database leases, unique constraints, idempotent sweeps).

``startup_lock`` serialises start-up work that must run once (migrations, creating the PKI) over
all nodes: on PostgreSQL a blocking ``pg_advisory_lock(STARTUP_KEY)``, so a node starting while
another migrates waits for it and then finds nothing left to do. Advisory locks belong to one
database, so instances in other databases of the same server never contend.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from remotesign.storage import process_id
from remotesign.storage.private import sqlite_path

log = logging.getLogger("remotesign.leader")

LEADER_KEY = 0x72656D6F74657369       # "remotesi": the background leader's advisory lock
STARTUP_KEY = LEADER_KEY + 1          # migrations and instance initialisation, one node at a time
TICK_SECONDS = 1.0                    # how often leadership is confirmed or tried for
STALE_AFTER_SECONDS = 15.0            # a leader not confirmed for this long no longer leads
SESSION_IDLE_SECONDS = 30             # the server ends the leader's session when idle this long
KEEPALIVE = {"idle": 10, "interval": 5, "count": 3}   # dead peer noticed after ~25 s, either side
CONNECT_TIMEOUT_SECONDS = 10


def is_postgresql(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "postgresql"


def _engine(database_url: str) -> Engine:
    """An engine of single connections (no pool) with timeouts and keepalives where the driver
    takes libpq's options."""
    url = make_url(database_url)
    args: dict[str, object] = {}
    if url.get_driver_name() in ("psycopg", "psycopg2"):
        args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "keepalives": 1,
                "keepalives_idle": KEEPALIVE["idle"], "keepalives_interval": KEEPALIVE["interval"],
                "keepalives_count": KEEPALIVE["count"],
                # a query on a connection whose peer vanished fails instead of waiting for TCP's retries
                "tcp_user_timeout": int(STALE_AFTER_SECONDS * 1000)}
    return create_engine(url, poolclass=NullPool, connect_args=args)


@contextlib.contextmanager
def startup_lock(database_url: str) -> Iterator[None]:
    """Hold the start-up lock (PostgreSQL; a no-op on SQLite, whose single host runs one start at
    a time: ``serve --workers`` initialises in its parent)."""
    if not is_postgresql(database_url):
        yield
        return
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": STARTUP_KEY}).scalar():
                log.info("another node is migrating or initialising the database; waiting for it")
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": STARTUP_KEY})
            try:
                yield
            finally:
                with contextlib.suppress(SQLAlchemyError):
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": STARTUP_KEY})
    finally:
        engine.dispose()


class Leadership(abc.ABC):
    """One process's claim to leadership. ``check`` blocks (a database round trip): call it off
    the event loop (``LeaderKeeper`` runs it in a thread of its own)."""

    @abc.abstractmethod
    def check(self) -> bool:
        """Confirm leadership, or try to take it; True while this process leads. Never raises."""

    @abc.abstractmethod
    def release(self) -> None:
        """Give leadership up (at shutdown)."""


class FileLeadership(Leadership):
    """An exclusive flock on ``path``, kept for the process's life."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def check(self) -> bool:
        if self._fd is not None:
            return True
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            log.exception("cannot open the leader lock %s", self.path)
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


# The lock is granted to this very session: pg_locks shows a bigint key as (classid, objid) = its
# high and low 32 bits, objsubid 1.
_HELD = text("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
             "AND classid = :hi AND objid = :lo AND objsubid = 1 AND granted)")


class PostgresLeadership(Leadership):
    """A session-level advisory lock on a connection of its own. A follower keeps its connection
    too and tries for the lock on it every tick (no new connection a second per follower)."""

    def __init__(self, database_url: str, key: int = LEADER_KEY) -> None:
        self.key = key
        self._engine = _engine(database_url)
        self._conn: Connection | None = None
        self._leading = False

    def check(self) -> bool:
        try:
            conn = self._conn if self._conn is not None else self._connect()
            if self._leading:
                if conn.execute(_HELD, {"hi": self.key >> 32, "lo": self.key & 0xFFFFFFFF}).scalar():
                    return True
                log.warning("background leadership lost: the lock is no longer held by this session")
                self._leading = False
            self._leading = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
        except SQLAlchemyError as exc:
            if self._leading:
                log.warning("background leadership lost: its database connection failed (%s)",
                            (str(exc).splitlines() or [type(exc).__name__])[0])
            self._drop()
        return self._leading

    def _connect(self) -> Connection:
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            # named in pg_stat_activity; the server ends the session, releasing the lock, when the
            # process stops confirming it (idle) or its host stops answering keepalives
            conn.execute(text("SELECT set_config('application_name', :name, false)"),
                         {"name": f"remotesign background {process_id.current()}"[:63]})
            for name, value in (("tcp_keepalives_idle", KEEPALIVE["idle"]),
                                ("tcp_keepalives_interval", KEEPALIVE["interval"]),
                                ("tcp_keepalives_count", KEEPALIVE["count"])):
                conn.execute(text("SELECT set_config(:n, :v, false)"), {"n": name, "v": str(value)})
            if int(conn.execute(text("SHOW server_version_num")).scalar() or 0) >= 140000:
                conn.execute(text("SELECT set_config('idle_session_timeout', :v, false)"),
                             {"v": f"{SESSION_IDLE_SECONDS}s"})
        except SQLAlchemyError:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()
            raise
        self._conn = conn
        return conn

    def _drop(self) -> None:
        self._leading = False
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.invalidate()  # never reused: the session may be half-dead
            self._conn = None

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                if self._leading:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.close()
            self._conn = None
        self._leading = False
        self._engine.dispose()


def leadership_for(database_url: str, home: Path) -> Leadership:
    """The leadership of the installation sharing ``database_url``."""
    if is_postgresql(database_url):
        return PostgresLeadership(database_url)
    db = sqlite_path(database_url)
    return FileLeadership(db.with_name(db.name + "-leader") if db is not None else home / "background.lock")


class LeaderKeeper:
    """Confirms or tries for leadership every ``tick`` seconds in a thread of its own, so neither a
    busy event loop nor a busy thread pool delays it; ``leading`` is an in-memory read."""

    def __init__(self, leadership: Leadership, tick: float = TICK_SECONDS,
                 stale_after: float = STALE_AFTER_SECONDS) -> None:
        self.leadership = leadership
        self.tick = tick
        self.stale_after = stale_after
        self._held = False
        self._confirmed = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # check and release never run at once

    @property
    def leading(self) -> bool:
        return self._held and time.monotonic() - self._confirmed < self.stale_after

    def check_now(self) -> bool:
        with self._lock:
            if self._stop.is_set():
                return False
            try:
                held = self.leadership.check()
            except Exception:  # noqa: BLE001 - a failed check means not leading, retried next tick
                log.exception("leadership check failed")
                held = False
        if held != self._held:
            log.info("this process %s the background leader", "is now" if held else "is no longer")
        if held:
            self._confirmed = time.monotonic()
        self._held = held
        return held

    def start(self) -> "LeaderKeeper":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="remotesign-leader", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            self.check_now()

    def stop(self) -> None:
        """Stop confirming and give leadership up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.tick + CONNECT_TIMEOUT_SECONDS + 5)
        with self._lock:
            self._held = False
            with contextlib.suppress(Exception):
                self.leadership.release()
