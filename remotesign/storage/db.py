"""Engine and session factory. SQLite gets WAL, foreign keys, a busy timeout and writers that take
turns (sqlite_writers) so that the embedded default behaves under the service's thread pools and
worker processes; PostgreSQL needs nothing special.

A database that cannot be reached or written (server down, disk full, read-only file) raises
SQLAlchemy's OperationalError; a unit of work turns it into StorageUnavailable('database') so every
facade answers ``storage_unavailable`` (503) instead of a 500."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from remotesign.storage.faults import StorageUnavailable
from remotesign.storage.sqlite_writers import WriterLock, connection_factory
from remotesign.storage.text_search import unicode_lower

DATABASE_RETRY_AFTER_SECONDS = 5


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = make_url(url).database
        lock_path = f"{database}-wlock" if database and database != ":memory:" and not database.startswith("file:") else None
        factory = connection_factory(WriterLock(lock_path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30, "factory": factory})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            use_wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
            # the operator's text searches fold case beyond ASCII (storage/text_search.py)
            dbapi_conn.create_function("unicode_lower", 1, unicode_lower, deterministic=True)

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=10)
    _ping_idle_connections(engine)
    return engine


#: A pooled connection unused for this long is checked (a round trip) before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's ``pool_pre_ping`` pings at every checkout: under load a round trip (and a
    statement for the server) before each of the ~20 units of work of a signing flow, on
    connections checked in milliseconds before. A connection is only found dead (a restarted or
    failed-over server) after it sat in the pool; so ping those idle for a second or more. A
    failed ping makes the pool drop it and connect afresh (DisconnectionError at checkout)."""

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_conn, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        if time.monotonic() - record.info.get("idle_since", 0.0) < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - whatever the driver raises, the connection is unusable
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc
        if not alive:
            raise DisconnectionError("pooled connection failed its ping")


def use_wal(cur: sqlite3.Cursor) -> None:
    """Put the database in WAL mode (a no-op once it is: the mode is stored in the file).

    The switch from a rollback journal upgrades a read lock to a write lock; when several fresh
    connections switch at once, SQLite refuses one of them at once with SQLITE_BUSY (a lock
    upgrade that could deadlock never waits for the busy handler), so the switch is retried."""
    for attempt in range(50):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 5) & 0xFF != 5 or attempt == 49:
                raise
            time.sleep(0.01 + 0.002 * attempt)


def is_contention(exc: OperationalError) -> bool:
    """A lock or serialization conflict with another writer (SQLite BUSY/LOCKED, PostgreSQL
    40001/40P01/55P03): callers such as the audit log retry those; they are not a storage fault."""
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (5, 6)
    return getattr(orig, "sqlstate", None) in ("40001", "40P01", "55P03")


class Database:
    """Owns the engine; ``session()`` is a unit of work that commits on success."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._factory()
        try:
            yield session
            session.commit()
        except BaseException as exc:
            try:
                session.rollback()
            except OperationalError:
                pass  # the connection is gone; the original error says why
            if isinstance(exc, OperationalError) and not is_contention(exc):
                reason = (str(exc.orig or exc).splitlines() or ["operational error"])[0]
                raise StorageUnavailable("database", reason, DATABASE_RETRY_AFTER_SECONDS) from exc
            raise
        finally:
            try:
                session.close()
            except OperationalError:
                pass

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only unit on a pooled Core connection: no ORM session, identity map or commit,
        for the per-request lookups (tokens, sessions) where those are most of the cost."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            if is_contention(exc):
                raise
            reason = (str(exc.orig or exc).splitlines() or ["operational error"])[0]
            raise StorageUnavailable("database", reason, DATABASE_RETRY_AFTER_SECONDS) from exc

    def ping(self) -> None:
        """Raise unless the database answers a trivial query (readiness checks)."""
        with self.session() as s:
            s.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
