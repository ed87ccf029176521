"""SQLite writers take turns on remotesign's writer lock (storage/sqlite_writers.py) instead of
SQLite's sleeping busy handler: writers of several processes and threads all get through with
SQLite's own busy timeout at zero (so any overlap would fail with "database is locked"), a rolled
back transaction gives the turn back, reads never take it, and a thread that would wait for
itself falls back to SQLite's answer instead of hanging."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from remotesign.storage import sqlite_writers
from remotesign.storage.db import Database

WRITER = r"""
import sys, threading
from sqlalchemy import event, text
from remotesign.storage.db import Database

db = Database(sys.argv[1])
tag = sys.argv[2]

@event.listens_for(db.engine, "connect")
def no_busy_wait(conn, _record):
    conn.execute("PRAGMA busy_timeout=0")   # SQLite would answer BUSY at once on any overlap

errors = []

def work(n):
    try:
        for i in range(60):
            with db.session() as s:
                s.execute(text("INSERT INTO t (who, n) VALUES (:who, :n)"), {"who": f"{tag}-{n}", "n": i})
                total = s.execute(text("SELECT count(*) FROM t")).scalar_one()
                s.execute(text("UPDATE c SET v = v + 1, seen = :seen WHERE id = 1"), {"seen": total})
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
for t in threads: t.start()
for t in threads: t.join()
print("\n".join(errors))
sys.exit(1 if errors else 0)
"""


def _database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    db = Database(url)
    with db.session() as s:
        s.execute(text("CREATE TABLE t (who TEXT, n INTEGER)"))
        s.execute(text("CREATE TABLE c (id INTEGER PRIMARY KEY, v INTEGER, seen INTEGER)"))
        s.execute(text("INSERT INTO c VALUES (1, 0, 0)"))
    db.dispose()
    return url


def test_writers_of_two_processes_and_their_threads_take_turns(tmp_path: Path) -> None:
    url = _database(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, tag], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) for tag in ("a", "b")]
    outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    db = Database(url)
    with db.session() as s:
        assert s.execute(text("SELECT count(*) FROM t")).scalar_one() == 2 * 3 * 60
        assert s.execute(text("SELECT v FROM c")).scalar_one() == 2 * 3 * 60  # no lost update
    db.dispose()


def _lock_of(db: Database) -> sqlite_writers.WriterLock:
    with db.engine.connect() as conn:
        return conn.connection.dbapi_connection._lock  # type: ignore[union-attr]


def test_rollback_gives_the_turn_back_and_reads_never_take_it(tmp_path: Path) -> None:
    db = Database(_database(tmp_path))
    lock = _lock_of(db)
    with pytest.raises(RuntimeError):
        with db.session() as s:
            s.execute(text("INSERT INTO t VALUES ('x', 1)"))
            assert lock.held
            raise RuntimeError("the caller failed")
    assert not lock.held
    with db.session() as s:
        s.execute(text("SELECT count(*) FROM t")).scalar_one()
        assert not lock.held  # a read, even in an open transaction, does not take the turn
        done = threading.Event()

        def writer() -> None:
            with db.session() as w:
                w.execute(text("INSERT INTO t VALUES ('y', 2)"))
            done.set()

        t = threading.Thread(target=writer)
        t.start()
        t.join(60)
        assert done.is_set()  # wrote while the reader stayed open
    with db.session() as s:
        assert s.execute(text("SELECT who FROM t")).scalars().all() == ["y"]
    db.dispose()


def test_a_thread_waiting_for_its_own_turn_gets_sqlites_answer_not_a_hang(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_writers, "WAIT_SECONDS", 0.2)
    db = Database(_database(tmp_path))

    @event.listens_for(db.engine, "connect")
    def short_busy(conn, _record):  # type: ignore[no-untyped-def]
        conn.execute("PRAGMA busy_timeout=100")

    outcome: list[BaseException | None] = []

    def nested() -> None:
        try:
            with db.session() as outer:
                outer.execute(text("INSERT INTO t VALUES ('outer', 1)"))
                with db.session() as inner:  # a second writer in the same thread: waits for itself
                    inner.execute(text("INSERT INTO t VALUES ('inner', 2)"))
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    t = threading.Thread(target=nested)
    t.start()
    t.join(120)
    assert not t.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], OperationalError)
    assert not _lock_of(db).held
    db.dispose()


def test_a_database_in_rollback_mode_is_switched_to_wal_even_while_another_writes(tmp_path: Path) -> None:
    """A fresh connection switching a rollback-journal database to WAL while another connection
    writes is refused by SQLite at once (a lock upgrade that could deadlock skips the busy
    handler); the switch is retried until the writer commits."""
    import sqlite3

    path = tmp_path / "rollback.db"
    seed = sqlite3.connect(path)
    seed.execute("CREATE TABLE t (x)")
    seed.commit()
    seed.close()
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (0)")
    committer = threading.Timer(0.3, lambda: writer.execute("COMMIT"))
    committer.start()
    db = Database(f"sqlite:///{path}")
    try:
        with db.session() as s:
            s.execute(text("INSERT INTO t VALUES (1)"))
        with db.read() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2
    finally:
        committer.join()
        writer.close()
        db.dispose()


def test_migrations_create_the_database_in_wal_mode(tmp_path: Path) -> None:
    import sqlite3

    from remotesign.storage.migrate import upgrade_to_head

    path = tmp_path / "fresh.db"
    upgrade_to_head(f"sqlite:///{path}")
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
