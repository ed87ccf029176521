"""Group commit of time-stamp records: every caller returns only once its own row is committed,
concurrent callers share transactions, and a serial clash fails only the clashing caller."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from remotesign.storage.db import Database
from remotesign.storage.migrate import upgrade_to_head
from remotesign.storage.models import TimestampRecord
from remotesign.trust.tsa_log import SerialClash, TokenLog

NOW = datetime(2026, 12, 5, tzinfo=timezone.utc)


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_to_head(url)
    return Database(url)


def _rows(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(TimestampRecord))


def test_concurrent_records_are_all_committed_before_return(db: Database) -> None:
    log = TokenLog(db)
    seen_committed: list[bool] = []
    lock = threading.Lock()

    def worker(base: int) -> None:
        for i in range(50):
            serial = base * 1000 + i + 1
            log.record(serial, NOW, "sha256", b"\x01" * 32)
            with db.session() as s:  # a fresh connection sees the row: it was committed
                found = s.get(TimestampRecord, format(serial, "x")) is not None
            with lock:
                seen_committed.append(found)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen_committed) == 400 and all(seen_committed)
    assert _rows(db) == 400


def test_a_clash_fails_only_the_clashing_caller(db: Database) -> None:
    log = TokenLog(db)
    log.record(42, NOW, "sha256", b"\x02" * 32)
    with pytest.raises(SerialClash):
        log.record(42, NOW, "sha256", b"\x03" * 32)
    outcomes: dict[int, str] = {}
    barrier = threading.Barrier(6)

    def worker(serial: int) -> None:
        barrier.wait()
        try:
            log.record(serial, NOW, "sha256", b"\x04" * 32)
            outcomes[serial] = "ok"
        except SerialClash:
            outcomes[serial] = "clash"

    threads = [threading.Thread(target=worker, args=(s,)) for s in (42, 100, 101, 102, 103, 104)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == {42: "clash", 100: "ok", 101: "ok", 102: "ok", 103: "ok", 104: "ok"}
    assert _rows(db) == 6
    with db.session() as s:
        assert s.get(TimestampRecord, format(42, "x")).message_imprint_hex == "02" * 32  # the first one kept


def test_a_database_failure_reaches_every_waiting_caller(db: Database, tmp_path: Path) -> None:
    log = TokenLog(db)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE timestamps")
    with pytest.raises(Exception):
        log.record(7, NOW, "sha256", b"\x05" * 32)
    assert not log._flushing and not log._queue  # nothing left stuck for the next caller
